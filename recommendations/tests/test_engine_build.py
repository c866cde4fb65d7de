"""The index build's fast parts: vectorised TF-IDF (engine/text.py) and the approximate neighbour graph."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.engine.text import WORD_PATTERN, char_wb_tfidf, fit_tfidf, stem_text, word_tfidf

DOCS = [
    "Staples Blue Ballpoint Pens, 12 pack",
    "BIC blue ball-point pen  (pack of 10)",
    "Café crème\tespresso   cups",
    "",
    "   ",
    "a b c",
    "Envelopes #10 security tint, boxes of 500",
    "x\ny\u00a0z",
    "İstanbul ﬁsh batteries",
    "naïve résumé",
    "under_score and 42 numbers 3d",
]


def _same_vectors(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    """Equal up to the order of the columns: same shape, same nnz and the same cosines between every pair of rows."""
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.allclose((a @ a.T).toarray(), (b @ b.T).toarray(), atol=1e-6)
        and np.allclose(np.sort(a.data), np.sort(b.data), atol=1e-6)
    )


@pytest.mark.parametrize("idf", ["smooth", "bm25"])
@pytest.mark.parametrize("ngram_range", [(3, 5), (3, 3), (3, 7)])
def test_char_wb_tfidf_gives_scikit_learns_matrix(idf, ngram_range):
    want = fit_tfidf(DOCS, idf=idf, analyzer="char_wb", ngram_range=ngram_range)
    got = char_wb_tfidf(DOCS, idf=idf, ngram_range=ngram_range)

    assert _same_vectors(got, want)


@pytest.mark.parametrize("idf", ["smooth", "bm25"])
@pytest.mark.parametrize("stem", [False, True])
def test_word_tfidf_gives_scikit_learns_matrix(idf, stem):
    pattern = re.compile(WORD_PATTERN)
    words = [stem_text(doc, pattern) for doc in DOCS] if stem else DOCS
    want = fit_tfidf(words, idf=idf, token_pattern=WORD_PATTERN)
    got = word_tfidf(DOCS, idf=idf, stem=stem)

    assert _same_vectors(got, want)


def test_stemming_merges_plural_and_singular_columns():
    got = word_tfidf(["blue pens", "blue pen"], stem=True)

    assert got.shape == (2, 2)
    assert np.isclose((got[0] @ got[1].T).toarray()[0, 0], 1.0)


def test_max_features_keeps_the_most_frequent_terms():
    docs = ["red red red blue", "red green", "red blue"]
    got = word_tfidf(docs, max_features=2)  # red (5), blue (2) kept; green (1) dropped

    assert got.shape == (3, 2)
    assert _same_vectors(got, fit_tfidf(docs, max_features=2))
    assert got[1].nnz == 1


def test_empty_and_tiny_corpora():
    assert char_wb_tfidf([]).shape == (0, 0)
    assert char_wb_tfidf(["", " "]).shape == (2, 0)
    assert word_tfidf(["a", ""]).shape == (2, 0)  # no token of two characters
    one = char_wb_tfidf(["ab"])  # " ab", "ab ", " ab "
    assert one.shape == (1, 3)
    assert np.isclose(sp.linalg.norm(one), 1.0)


def test_a_wide_alphabet_falls_back_to_hashed_keys_and_still_matches():
    # More than 7130 distinct code points: 5-gram keys no longer fit 64 bits exactly.
    docs = ["".join(chr(0x4E00 + (i * 7 + j) % 9000) for j in range(40)) + " end" for i in range(300)]
    want = fit_tfidf(docs, analyzer="char_wb", ngram_range=(3, 5))

    assert _same_vectors(char_wb_tfidf(docs, ngram_range=(3, 5)), want)


@pytest.mark.parametrize("ngram_range", [(2, 4), (4, 5), (3, 2)])
def test_char_wb_tfidf_rejects_ranges_not_starting_at_three(ngram_range):
    with pytest.raises(ValueError):
        char_wb_tfidf(["abc"], ngram_range=ngram_range)


# ---------------------------------------------------------------- the neighbour graph


def _catalog_matrix() -> sp.csr_matrix:
    from recommendations.engine.core import CatalogItem, EngineConfig, text_matrix

    colours = ["red", "blue", "green", "black", "white", "yellow"]
    things = ["ballpoint pen", "stapler", "envelope", "notebook", "desk lamp", "paper clip", "marker", "binder"]
    brands = ["Acme", "Bic", "Staples", "Pilot", "Avery", "Sharpie"]
    items = [
        CatalogItem(id=f"{c}-{t}-{b}", title=f"{b} {c} {t} pack of {1 + i % 4}", vendor=b)
        for i, (c, t, b) in enumerate((c, t, b) for c in colours for t in things for b in brands)
    ]
    # A duplicate of the first item under another id (a variant): its nearest neighbour whatever the graph.
    items.append(CatalogItem(id="dup", title=items[0].title.upper(), vendor=items[0].vendor))
    return text_matrix(items, EngineConfig())


def test_clustered_graph_keeps_exact_cosines_best_first_and_finds_the_near_duplicate():
    from recommendations.engine.neighbours import clustered_graph, exact_graph

    matrix = _catalog_matrix()
    n = matrix.shape[0]
    exact_ids, _ = exact_graph(matrix, k=10, chunk=64)
    ids, sims = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=4)

    dense = (matrix @ matrix.T).toarray()
    assert (ids >= 0).all()
    assert np.allclose(sims, dense[np.arange(n)[:, None], ids], atol=1e-6)  # exact cosines
    assert (np.diff(sims, axis=1) <= 0).all()  # best first
    assert (ids != np.arange(n)[:, None]).all()
    assert ids[0, 0] == n - 1 and ids[n - 1, 0] == 0  # the near-duplicate pair
    assert np.isclose(sims[0, 0], 1.0)
    recall = np.mean([np.intersect1d(ids[i], exact_ids[i]).size / 10 for i in range(n)])
    assert recall > 0.9
    again = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=4)
    assert (again[0] == ids).all() and (again[1] == sims).all()  # deterministic


def test_probing_every_cluster_gives_the_exact_graph():
    from recommendations.engine.neighbours import clustered_graph, exact_graph

    matrix = _catalog_matrix()
    exact_ids, exact_sims = exact_graph(matrix, k=10, chunk=64)
    ids, sims = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=24)

    assert np.allclose(sims, exact_sims, atol=1e-6)
    assert (ids == exact_ids).mean() > 0.95  # (near-ties may order differently)


def test_a_probe_margin_compares_fewer_clusters():
    from recommendations.engine.neighbours import clustered_graph

    matrix = _catalog_matrix()
    n = matrix.shape[0]
    wide_ids, wide_sims = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=8)
    same = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=8, margin=2.0)  # every probe is within 2
    _, narrow_sims = clustered_graph(matrix, k=10, dims=64, n_clusters=24, probes=8, margin=0.0)

    assert (same[0] == wide_ids).all()
    # Only the nearest cluster: never a better neighbour than all eight, and strictly worse for some items.
    assert (narrow_sims <= wide_sims + 1e-6).all()
    assert (narrow_sims.sum(axis=1) < wide_sims.sum(axis=1) - 1e-6).sum() > n // 10


def test_spherical_kmeans_on_a_sample_labels_every_row_with_its_nearest_centre():
    from recommendations.engine.neighbours import sketch, spherical_kmeans

    dense = sketch(_catalog_matrix(), 32)
    labels = spherical_kmeans(dense, 12, sample=50)

    assert labels.shape == (dense.shape[0],)
    assert set(labels.tolist()) <= set(range(12))
    assert (spherical_kmeans(dense, 12, sample=50) == labels).all()
    assert (spherical_kmeans(dense, 12) == spherical_kmeans(dense, 12, sample=10**6)).all()  # sample >= n: all rows


@pytest.mark.parametrize("idf", ["smooth", "bm25"])
def test_split_tfidf_gives_scikit_learns_matrix(idf):
    from recommendations.engine.text import split_tfidf

    docs = ["office office>paper", "office office>paper", "", "home", "office office>ink", "Home x"]
    assert _same_vectors(split_tfidf(docs, idf=idf), fit_tfidf(docs, idf=idf, analyzer=str.split))
    assert split_tfidf(["", " "]).shape == (2, 0)


def test_category_text_keeps_every_prefix_with_non_word_characters_as_underscores():
    from recommendations.engine.core import CatalogItem, _category_text

    item = CatalogItem(id="1", title="t", category_path="Office & Home > Paper/Ink-Jet  > ")
    assert _category_text(item) == "office___home office___home_paper office___home_paper_ink_jet"


# ---------------------------------------------------------------- the sketched graph (large catalogs) and its loops


def test_sketched_graph_keeps_exact_cosines_best_first_and_finds_the_near_duplicate():
    from recommendations.engine.neighbours import exact_graph, sketched_graph

    matrix = _catalog_matrix()
    n = matrix.shape[0]
    exact_ids, _ = exact_graph(matrix, k=10, chunk=64)
    ids, sims = sketched_graph(matrix, k=10, dims=64, n_clusters=24, probes=4, candidates=20)

    dense = (matrix @ matrix.T).toarray()
    assert ids.dtype == np.int32 and sims.dtype == np.float32
    assert (ids >= 0).all()
    assert np.allclose(sims, dense[np.arange(n)[:, None], ids], atol=1e-6)  # exact cosines
    assert (np.diff(sims, axis=1) <= 0).all()  # best first
    assert (ids != np.arange(n)[:, None]).all()
    assert ids[0, 0] == n - 1 and ids[n - 1, 0] == 0  # the near-duplicate pair
    recall = np.mean([np.intersect1d(ids[i], exact_ids[i]).size / 10 for i in range(n)])
    assert recall > 0.85
    again = sketched_graph(matrix, k=10, dims=64, n_clusters=24, probes=4, candidates=20)
    assert (again[0] == ids).all() and (again[1] == sims).all()  # deterministic
    one_thread = sketched_graph(matrix, k=10, dims=64, n_clusters=24, probes=4, candidates=20, threads=1)
    assert (one_thread[0] == ids).all() and (one_thread[1] == sims).all()  # the row split changes nothing
    grown_ids, grown_sims = sketched_graph(matrix, k=10, dims=64, n_clusters=24, probes=4, candidates=20, expand=3)
    assert np.allclose(grown_sims, dense[np.arange(n)[:, None], grown_ids], atol=1e-6)
    assert (np.diff(grown_sims, axis=1) <= 0).all() and (grown_ids != np.arange(n)[:, None]).all()
    assert (grown_sims >= sims - 1e-6).all()  # the expansion only adds: each rank is at least as good
    assert all(np.unique(row).size == row.size for row in grown_ids)


def test_sketched_graph_probing_everything_with_every_candidate_is_the_exact_graph():
    from recommendations.engine.neighbours import exact_graph, sketched_graph

    matrix = _catalog_matrix()
    n = matrix.shape[0]
    exact_ids, exact_sims = exact_graph(matrix, k=10, chunk=64)
    ids, sims = sketched_graph(matrix, k=10, dims=64, n_clusters=24, probes=24, candidates=n)

    assert np.allclose(sims, exact_sims, atol=1e-6)
    assert (ids == exact_ids).mean() > 0.95  # (near-ties may order differently in the last float bit)


def test_neighbour_graph_takes_the_sketched_path_only_with_candidates_above_the_exact_threshold():
    from recommendations.engine.neighbours import clustered_graph, exact_graph, neighbour_graph, sketched_graph

    matrix = _catalog_matrix()
    args = {"k": 10, "chunk": 64, "dims": 64, "cluster_size": 12, "probes": 4}
    small = neighbour_graph(matrix, exact_max_items=10**6, candidates=20, **args)
    assert (small[0] == exact_graph(matrix, k=10, chunk=64)[0]).all()
    sketched = neighbour_graph(matrix, exact_max_items=0, candidates=20, **args)
    want = sketched_graph(matrix, k=10, dims=64, n_clusters=matrix.shape[0] // 12, probes=4, candidates=20)
    assert (sketched[0] == want[0]).all()
    clustered = neighbour_graph(matrix, exact_max_items=0, **args)
    assert (clustered[0] == clustered_graph(matrix, k=10, dims=64, n_clusters=matrix.shape[0] // 12, probes=4)[0]).all()
    # Fewer candidates than neighbours asked for: k of them are kept all the same.
    assert (neighbour_graph(matrix, exact_max_items=0, candidates=3, **args)[0] >= 0).all()


def test_sketch_is_the_count_sketch_projection():
    from recommendations.engine.neighbours import sketch

    matrix = _catalog_matrix()
    features, dims, hashes = matrix.shape[1], 16, 2
    rng = np.random.default_rng(0)  # the sketch's own draws, in its order
    cols = rng.integers(0, dims, size=features * hashes)
    signs = rng.choice(np.array([-1.0, 1.0]), size=features * hashes) / np.sqrt(hashes)
    projection = sp.csr_matrix((signs, (np.repeat(np.arange(features), hashes), cols)), shape=(features, dims))
    want = (matrix @ projection).toarray()
    want /= np.linalg.norm(want, axis=1, keepdims=True)

    got = sketch(matrix, dims, hashes=hashes)
    assert got.dtype == np.float32 and got.shape == (matrix.shape[0], dims)
    assert np.allclose(got, want, atol=1e-6)
    assert (sketch(sp.csr_matrix((2, features), dtype=np.float32), dims) == 0).all()  # empty rows stay zero


def test_top_columns_gives_the_p_best_columns_and_the_argmax_with_ties_by_lower_column():
    from recommendations.engine.graph_kernels import top_columns

    scores = np.array([[0.1, 0.9, 0.3, 0.9, 0.5], [0.2, 0.2, 0.2, 0.2, 0.2], [5.0, 4.0, 3.0, 2.0, 1.0]], np.float32)
    out = np.empty((3, 2), dtype=np.int64)
    best = np.empty(3, dtype=np.int64)
    top_columns(scores, 2, out, best)

    assert best.tolist() == [1, 0, 0]
    assert [sorted(row) for row in out.tolist()] == [[1, 3], [0, 1], [0, 1]]


def test_push_block_keeps_each_rows_best_scores_with_ties_by_lower_id_and_never_the_row_itself():
    from recommendations.engine.graph_kernels import push_block

    heap_vals = np.full((2, 3), -np.inf, dtype=np.float32)
    heap_ids = np.full((2, 3), np.iinfo(np.int32).max, dtype=np.int32)
    rows, slots = np.array([7, 3]), np.array([0, 1])
    # Two blocks (two clusters) for the same two items 7 and 3.
    first = np.array([[0.5, 0.9, 0.1], [0.4, 0.4, 0.8]], np.float32)
    push_block(first, rows, slots, np.array([1, 7, 2], np.int32), heap_vals, heap_ids)
    second = np.array([[0.5, 0.95], [0.4, 0.99]], np.float32)
    push_block(second, rows, slots, np.array([0, 3], np.int32), heap_vals, heap_ids)

    kept = [zip(v.tolist(), i.tolist(), strict=True) for v, i in zip(heap_vals, heap_ids, strict=True)]
    best = [sorted(pairs, key=lambda x: (-x[0], x[1])) for pairs in kept]
    # Item 7: 0.95 (3), 0.5 (0) and 0.5 (1) beat 0.1 (2); itself (0.9) is skipped.
    assert [i for _, i in best[0]] == [3, 0, 1]
    # Item 3: 0.8 (2), then 0.4 (1) and 0.4 (7) against 0.4 (0) later: the lower ids 0 and 1 stay; itself skipped.
    assert [i for _, i in best[1]] == [2, 0, 1]
    assert np.isclose(best[1][0][0], 0.8)


def test_exact_top_scores_candidates_exactly_best_first_ties_by_lower_id():
    from recommendations.engine.graph_kernels import exact_top

    matrix = sp.csr_matrix(
        np.array([[1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=np.float32)
    )
    matrix = sp.csr_matrix(matrix.multiply(1 / np.sqrt(matrix.multiply(matrix).sum(axis=1))), dtype=np.float32)
    dense = (matrix @ matrix.T).toarray()
    candidates = np.array([[4, 3, 1, -1], [2, -1, -1, -1]], dtype=np.int32)  # for rows 0 and 2
    ids = np.full((5, 3), 9, dtype=np.int32)
    sims = np.full((5, 3), 9.0, dtype=np.float32)
    exact_top(matrix.indptr, matrix.indices, matrix.data, candidates, 4, np.array([0, 2]), ids, sims)

    assert ids[0].tolist() == [1, 3, 4]  # cosines 1, 0.816, 0.707
    assert np.allclose(sims[0], dense[0, [1, 3, 4]])
    assert ids[2].tolist() == [2, -1, -1] and np.allclose(sims[2], [1.0, 0.0, 0.0])  # (the row itself if asked)
    assert (ids[[1, 3, 4]] == 9).all()  # rows not visited are untouched
    ties = np.array([[4, 3, 1, 0]], dtype=np.int32)  # row 2 against 0, 1, 3 (all 0) and 4 (0.5)
    exact_top(matrix.indptr, matrix.indices, matrix.data, ties, 4, np.array([2]), ids, sims)
    assert ids[2].tolist() == [4, 0, 1] and np.allclose(sims[2], [0.5, 0.0, 0.0])


def test_add_reverse_offers_each_pair_to_its_other_side_keeping_the_best_k_ties_by_lower_id():
    from recommendations.engine.graph_kernels import add_reverse

    ids = np.array([[1, -1], [-1, -1], [0, 1], [0, -1]], dtype=np.int32)
    sims = np.array([[0.5, 0.0], [0.0, 0.0], [0.9, 0.2], [0.5, 0.0]], dtype=np.float32)
    got_ids, got_sims = add_reverse(ids, sims)

    # Row 0 is offered 2 (0.9) and 3 (0.5): 2 first, then 1 and 3 tie at 0.5 and the lower id 1 stays.
    assert got_ids[0].tolist() == [2, 1] and np.allclose(got_sims[0], [0.9, 0.5])
    assert got_ids[1].tolist() == [0, 2] and np.allclose(got_sims[1], [0.5, 0.2])  # from rows 0 and 2
    assert got_ids[2].tolist() == [0, 1]  # nobody offers 2 anything better
    assert got_ids[3].tolist() == [0, -1]  # 0 already held: not twice
    assert (ids[1] == -1).all()  # the inputs are not changed


def test_expand_adds_the_neighbours_of_neighbours_exactly():
    from recommendations.engine.graph_kernels import expand

    # A chain 0 - 1 - 2 - 3 of overlapping vectors: 0's true second neighbour 2 is only reachable through 1.
    dense = np.array([[2, 1, 0, 0, 0], [1, 2, 1, 0, 0], [0, 1, 2, 1, 0], [0, 0, 1, 2, 1]], dtype=np.float32)
    matrix = sp.csr_matrix(dense / np.linalg.norm(dense, axis=1, keepdims=True))
    cosines = (matrix @ matrix.T).toarray()
    ids = np.array([[1, -1], [0, 2], [1, 3], [2, -1]], dtype=np.int32)
    sims = np.array([[cosines[i, j] if j >= 0 else 0.0 for j in row] for i, row in enumerate(ids)], dtype=np.float32)
    out_ids, out_sims = np.empty_like(ids), np.empty_like(sims)
    expand(matrix.indptr, matrix.indices, matrix.data, ids, sims, 2, 5, np.arange(4), out_ids, out_sims)

    assert out_ids[0].tolist() == [1, 2] and np.allclose(out_sims[0], cosines[0, [1, 2]], atol=1e-6)
    assert out_ids[3].tolist() == [2, 1] and np.allclose(out_sims[3], cosines[3, [2, 1]], atol=1e-6)
    assert out_ids[1].tolist() == [0, 2] or out_ids[1].tolist() == [2, 0]  # already full with its best two
    assert np.allclose(out_sims[1], np.sort(cosines[1, [0, 2]])[::-1], atol=1e-6)

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

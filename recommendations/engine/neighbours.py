"""The recommender's item-item neighbour graph (exact, or clustered over random sketches when large), top-k helpers.

numpy/scipy, with numba loops (engine/graph_kernels.py) for the large-catalog graph: the build's quadratic part
(recommendations.engine.core explains where each is used).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits


def top_k_desc(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, highest first, ties broken by the lower index (fully deterministic)."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        # Everything strictly above the k-th value, plus the lowest-index items equal to it.
        above = np.flatnonzero(scores > threshold)
        equal = np.flatnonzero(scores == threshold)[: k - above.size]
        candidates = np.concatenate([above, equal])
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:k]


def neighbour_graph(
    matrix: sp.csr_matrix,
    *,
    k: int,
    chunk: int,
    exact_max_items: int = 20000,
    dims: int = 512,
    cluster_size: int = 100,
    probes: int = 24,
    margin: float | None = None,
    kmeans_sample: int | None = None,
    candidates: int | None = None,
    kmeans_iterations: int = 6,
    expand: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours of every row (self excluded): ids (-1 = none) and exact cosines, best first.

    Up to exact_max_items rows every pair is compared (sparse products in row chunks, memory O(chunk * n)).
    Above that the search is restricted (an inverted-file index): items are clustered on dense random
    sketches of their vectors (see sketch) and each item is compared, with exact sparse cosines, only to
    the items of the `probes` clusters whose centres are nearest to it (with a margin, only those within
    `margin` of the nearest centre's similarity). Similarities stay exact (hubness and the near-duplicate
    thresholds read them); a true neighbour is missed only when it lies outside those clusters (with the
    build's 16 probes about 15% of the true top 10 on the synthetic 30k catalog and 20% at 100k;
    bench/build_bench.py measures it). With `candidates`, the probed pairs are scored on the sketches and only
    each item's best `candidates` exactly, then the pairs made symmetric and `expand` neighbours'
    neighbours added (sketched_graph, its k-means run kmeans_iterations; the margin is not used).
    """
    n = matrix.shape[0]
    k = max(0, min(k, n - 1))
    if k == 0:
        return np.full((n, 0), -1, dtype=np.int32), np.zeros((n, 0), dtype=np.float32)
    n_clusters = n // max(cluster_size, 1)
    if n <= exact_max_items or n_clusters <= probes:
        return exact_graph(matrix, k=k, chunk=chunk)
    if candidates is not None:
        return sketched_graph(
            matrix,
            k=k,
            dims=dims,
            n_clusters=n_clusters,
            probes=probes,
            candidates=max(candidates, k),
            kmeans_sample=kmeans_sample,
            kmeans_iterations=kmeans_iterations,
            expand=expand,
        )
    return clustered_graph(
        matrix, k=k, dims=dims, n_clusters=n_clusters, probes=probes, margin=margin, kmeans_sample=kmeans_sample
    )


def block_top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k column positions of a dense block and their values, highest first, ties by lower column."""
    k = min(k, block.shape[1])
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(block, part, axis=1)
    order = np.lexsort((part, -values), axis=-1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def exact_graph(matrix: sp.csr_matrix, *, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    n = matrix.shape[0]
    ids = np.full((n, k), -1, dtype=np.int32)
    sims = np.zeros((n, k), dtype=np.float32)
    transposed = matrix.T.tocsr()
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = np.asarray((matrix[start:stop] @ transposed).todense(), dtype=np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top, values = block_top_k(block, k)
        ids[start:stop], sims[start:stop] = top, values
    return ids, sims


def spherical_kmeans(
    vectors: np.ndarray, n_clusters: int, *, iterations: int = 6, sample: int | None = None
) -> np.ndarray:
    """Cluster id (nearest centre) of every row of L2-normalised vectors; the centres are fitted on a seeded
    sample of at most max(sample, n_clusters) rows (deterministic: seeded initial centres)."""
    return _nearest(vectors, kmeans_centres(vectors, n_clusters, iterations=iterations, sample=sample))


def kmeans_centres(
    vectors: np.ndarray, n_clusters: int, *, iterations: int = 6, sample: int | None = None
) -> np.ndarray:
    """The spherical k-means centres (float32, L2-normalised) of spherical_kmeans."""
    n = vectors.shape[0]
    rng = np.random.default_rng(0)
    fit = vectors
    if sample is not None and n > max(sample, n_clusters):
        fit = vectors[np.sort(rng.choice(n, size=max(sample, n_clusters), replace=False))]
    centres = fit[np.sort(rng.choice(fit.shape[0], size=n_clusters, replace=False))]
    rows = np.arange(fit.shape[0] + 1)
    ones = np.ones(fit.shape[0], dtype=np.float32)
    for _ in range(iterations):
        labels = _nearest(fit, centres)
        # The members' sums by one sparse product (np.add.at over rows is many times slower).
        sums = np.asarray(sp.csr_matrix((ones, labels, rows), shape=(fit.shape[0], n_clusters)).T @ fit)
        empty = ~sums.any(axis=1)
        sums[empty] = centres[empty]  # an emptied cluster keeps its centre
        centres = normalize(sums).astype(np.float32)
    return np.asarray(centres, dtype=np.float32)


def _nearest(vectors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.concatenate([np.argmax(vectors[s : s + 8192] @ centres.T, axis=1) for s in range(0, len(vectors), 8192)])


def sketch(matrix: sp.csr_matrix, dims: int, *, hashes: int = 2, threads: int = 2) -> np.ndarray:
    """L2-normalised random sparse projection (a count sketch: each feature adds +-1/sqrt(hashes) to `hashes`
    seeded coordinates). Inner products are preserved up to ~1/sqrt(dims) noise, including the long tail of
    rare character n-grams that a truncated SVD drops, and the cost is one pass over the non-zeros (the rows
    split in `threads` parallel parts)."""
    from recommendations.engine import graph_kernels

    n, features = matrix.shape
    rng = np.random.default_rng(0)
    cols = rng.integers(0, dims, size=features * hashes).reshape(features, hashes).astype(np.int32)
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=features * hashes) / np.sqrt(hashes)
    signs = signs.reshape(features, hashes).astype(np.float32)
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    out = np.zeros((n, dims), dtype=np.float32)
    cuts = np.linspace(0, n, threads + 1).astype(np.int64)

    def run(part: int) -> None:
        graph_kernels.sketch_rows(
            matrix.indptr, matrix.indices, matrix.data, cols, signs, cuts[part], cuts[part + 1], out
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, range(threads)))
    return out


def clustered_graph(
    matrix: sp.csr_matrix,
    *,
    k: int,
    dims: int,
    n_clusters: int,
    probes: int,
    margin: float | None = None,
    kmeans_sample: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    n = matrix.shape[0]
    dense = sketch(matrix, dims)
    labels = spherical_kmeans(dense, n_clusters, sample=kmeans_sample)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(n_clusters)]
    centres = normalize(np.stack([dense[m].sum(axis=0) if m.size else np.zeros(dims) for m in members]))
    centres = centres.astype(np.float32)
    # Every item probes the clusters of its `probes` nearest centres (with a margin, only those whose centre is
    # within `margin` of its nearest centre's similarity); invert that into cluster -> items.
    item_parts, cluster_parts = [], []
    for s in range(0, n, 8192):
        scores = dense[s : s + 8192] @ centres.T
        part = np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
        if margin is None:
            keep = np.ones(part.shape, dtype=bool)
        else:
            near = np.take_along_axis(scores, part, axis=1)
            keep = near >= near.max(axis=1, keepdims=True) - margin
        item_parts.append(np.nonzero(keep)[0] + s)
        cluster_parts.append(part[keep])
    items, probed = np.concatenate(item_parts), np.concatenate(cluster_parts)
    by_cluster = np.argsort(probed, kind="stable")
    probe_bounds = np.searchsorted(probed[by_cluster], np.arange(n_clusters + 1))
    item_of = items[by_cluster]
    ids = np.full((n, k), -1, dtype=np.int32)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    for c in range(n_clusters):
        cols = members[c]
        rows = item_of[probe_bounds[c] : probe_bounds[c + 1]]
        if cols.size == 0 or rows.size == 0:
            continue
        block = np.asarray((matrix[rows] @ matrix[cols].T).todense(), dtype=np.float32)
        block[rows[:, None] == cols[None, :]] = -np.inf
        # Merge with what earlier clusters found for these rows (each pair is seen once: an item has one cluster).
        # The running top k is kept unordered (one partition per block); it is sorted once at the end.
        merged_sims = np.concatenate([sims[rows], block], axis=1)
        merged_ids = np.concatenate([ids[rows], np.broadcast_to(cols.astype(np.int32), block.shape)], axis=1)
        top = np.argpartition(-merged_sims, k - 1, axis=1)[:, :k]
        ids[rows] = np.take_along_axis(merged_ids, top, axis=1)
        sims[rows] = np.take_along_axis(merged_sims, top, axis=1)
    order = np.lexsort((ids, -sims), axis=-1)  # best first, ties by lower id
    ids, sims = np.take_along_axis(ids, order, axis=1), np.take_along_axis(sims, order, axis=1)
    missing = ~np.isfinite(sims)
    ids[missing] = -1
    sims[missing] = 0.0
    return ids, sims


def sketched_graph(
    matrix: sp.csr_matrix,
    *,
    k: int,
    dims: int,
    n_clusters: int,
    probes: int,
    candidates: int,
    kmeans_sample: int | None = None,
    kmeans_iterations: int = 6,
    expand: int = 0,
    threads: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """The clustered search with cheap candidates: each item's pairs with the items of its `probes` nearest
    clusters are scored on the dense sketches (one BLAS product per cluster, not a sparse product per pair),
    the best `candidates` per item kept, and only those scored exactly; the best k of them, best first. Then
    every kept pair is offered to its other side too (j found in i's probed clusters, i not in j's), and with
    `expand`, each item's `expand` nearest neighbours' `expand` nearest are scored exactly and merged (one round
    of neighbour descent: it reaches the neighbours the clusters split off, such as variants whose sketches lie
    far from every centre).

    The clusters and probes are those of clustered_graph (k-means on the sketches); the sketch ranking loses
    little (at 512 dims, on the synthetic 100k catalog, the sketch's top 50 over all items hold 98% of the exact
    top 10), the reverse pairs and the expansion gain much (bench/build_bench.py). The rows are split in
    `threads` parts that run in parallel (each row's result does not depend on the split)."""
    from recommendations.engine import graph_kernels

    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    n = matrix.shape[0]
    probes = min(probes, n_clusters)
    width = min(candidates, n - 1)
    dense = sketch(matrix, dims, threads=threads)
    centres = kmeans_centres(dense, n_clusters, iterations=kmeans_iterations, sample=kmeans_sample)
    probed = np.empty((n, probes), dtype=np.int64)
    labels = np.empty(n, dtype=np.int64)

    def assign(start: int) -> None:
        scores = dense[start : start + 8192] @ centres.T
        graph_kernels.top_columns(scores, probes, probed[start : start + 8192], labels[start : start + 8192])

    # One BLAS thread per task: the tasks are the parallelism (and BLAS's own threads would compete with them).
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(assign, range(0, n, 8192)))
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    members = [order[bounds[c] : bounds[c + 1]].astype(np.int32) for c in range(n_clusters)]
    ids = np.full((n, k), -1, dtype=np.int32)
    sims = np.zeros((n, k), dtype=np.float32)
    # Each part in cluster order: consecutive rows share candidates (their rows stay in the caches).
    parts = [order[p::threads] for p in range(threads)]

    def run(part: np.ndarray) -> None:
        flat = probed[part].ravel()
        by_cluster = np.argsort(flat, kind="stable")
        cuts = np.searchsorted(flat[by_cluster], np.arange(n_clusters + 1))
        slot_of = np.repeat(np.arange(part.size), probes)[by_cluster]
        row_of = part[slot_of]
        heap_vals = np.full((part.size, width), -np.inf, dtype=np.float32)
        heap_ids = np.full((part.size, width), np.iinfo(np.int32).max, dtype=np.int32)
        for c in range(n_clusters):
            cols, lo, hi = members[c], cuts[c], cuts[c + 1]
            if cols.size and hi > lo:
                block = dense[row_of[lo:hi]] @ dense[cols].T
                graph_kernels.push_block(block, row_of[lo:hi], slot_of[lo:hi], cols, heap_vals, heap_ids)
        found = np.where(np.isfinite(heap_vals), heap_ids, -1).astype(np.int32)
        graph_kernels.exact_top(matrix.indptr, matrix.indices, matrix.data, found, matrix.shape[1], part, ids, sims)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, parts))
    # A pair found from one side only (j in i's probed clusters, not i in j's) is offered to the other side too.
    ids, sims = graph_kernels.add_reverse(ids, sims)
    if expand:
        grown_ids, grown_sims = np.empty_like(ids), np.empty_like(sims)

        def grow(part: np.ndarray) -> None:
            graph_kernels.expand(
                matrix.indptr,
                matrix.indices,
                matrix.data,
                ids,
                sims,
                expand,
                matrix.shape[1],
                part,
                grown_ids,
                grown_sims,
            )

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(grow, parts))
        ids, sims = grown_ids, grown_sims
    return ids, sims


def prune_rows(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties by lower column)."""
    matrix = matrix.tocsr()
    matrix.sort_indices()
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        cols, vals = matrix.indices[lo:hi], matrix.data[lo:hi]
        if cols.size > k:
            top = top_k_desc(vals, k)
            cols, vals = cols[top], vals[top]
            order = np.argsort(cols, kind="stable")
            cols, vals = cols[order], vals[order]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + cols.size)
    return sp.csr_matrix(
        (np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr),
        shape=matrix.shape,
    )

"""Recall of the recommender's approximate neighbour graph against the exact one, and its build time.

    .venv/bin/python -m bench.graph_recall [--size 30000] [--sample 500]

The catalog is recommender_bench's synthetic one; the text vectors are the build's (engine.core.text_matrix). The
approximate graph (engine.neighbours.clustered_graph, which the build uses above exact_graph_max_items) is built
for all items; the exact top-k is computed for a seeded sample of rows only. Printed: recall@10 and @50 (share of
the exact top-k ids found in the approximate top-k), the mean absolute error of the hubness (mean similarity to
the 10 nearest), the share of exact near-duplicates (cosine >= 0.9) found, and the seconds of each graph.
"""

import argparse
import time

import numpy as np

from bench.recommender_bench import real_items, synthetic_catalog
from recommendations.engine.core import EngineConfig, text_matrix
from recommendations.engine.neighbours import block_top_k, clustered_graph


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=30000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args(argv)
    config = EngineConfig()
    matrix = text_matrix(synthetic_catalog(args.size, real_items()), config)
    n, k = matrix.shape[0], args.k
    start = time.perf_counter()
    ids, sims = clustered_graph(
        matrix,
        k=k,
        dims=config.graph_dims,
        n_clusters=n // config.graph_cluster_size,
        probes=config.graph_probes,
    )
    approximate_s = time.perf_counter() - start
    rows = np.sort(np.random.default_rng(0).choice(n, size=min(args.sample, n), replace=False))
    start = time.perf_counter()
    block = np.asarray((matrix[rows] @ matrix.T).todense(), dtype=np.float32)
    block[np.arange(rows.size), rows] = -np.inf
    exact_ids, exact_sims = block_top_k(block, k)
    exact_s = (time.perf_counter() - start) * n / rows.size
    for top in (10, k):
        found = [np.intersect1d(exact_ids[r, :top], ids[row, :top]).size / top for r, row in enumerate(rows)]
        print(f"recall@{top}: {np.mean(found):.4f}")
    hub_error = np.abs(exact_sims[:, :10].mean(axis=1) - sims[rows, :10].mean(axis=1))
    print(f"hubness mean abs error: {hub_error.mean():.4f}")
    duplicates = [
        (set(exact_ids[r][exact_sims[r] >= 0.9]), set(ids[row][sims[row] >= 0.9])) for r, row in enumerate(rows)
    ]
    total = sum(len(e) for e, _ in duplicates)
    print(f"near-duplicates (>= 0.9) found: {sum(len(e & a) for e, a in duplicates) / max(total, 1):.4f} of {total}")
    print(f"items {n}: approximate graph {approximate_s:.2f} s; exact graph (extrapolated) {exact_s:.2f} s")


if __name__ == "__main__":
    main()

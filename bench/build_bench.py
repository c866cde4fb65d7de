"""Recommender index build: where the time goes, and the approximate neighbour graph's recall against the exact one.

    .venv/bin/python -m bench.build_bench [--size 30000] [--sample 500] [--no-recall] [--candidates N]

The catalog is recommender_bench's synthetic one. Timed, beside the reference of recommender_bench (scikit-learn's
char_wb 3-5-gram TF-IDF fit of the same texts): the build's text vectors (engine.core.text_matrix) and its
neighbour graph (engine.neighbours.neighbour_graph, clustered above exact_graph_max_items items). Recall: the
large-catalog graph (the build's settings, built for all items whatever the size; --candidates overrides
EngineConfig.graph_candidates, 0 = every probed pair scored exactly) against the exact top-k of a seeded sample
of rows: recall@10 and @k (share of the exact top ids found), the mean absolute error of the hubness (mean
similarity to the 10 nearest) and the share of exact near-duplicates (cosine >= 0.9) found.
"""

import argparse
import dataclasses
import time

import numpy as np

from bench.recommender_bench import real_items, synthetic_catalog
from recommendations.engine.core import EngineConfig, _item_text, text_graph, text_matrix
from recommendations.engine.neighbours import block_top_k, neighbour_graph
from recommendations.engine.text import fit_tfidf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=30000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--no-recall", action="store_true", help="Time the build's parts only.")
    parser.add_argument("--candidates", type=int, default=None, help="graph_candidates (0: None).")
    args = parser.parse_args(argv)
    config = EngineConfig()
    if args.candidates is not None:
        config = dataclasses.replace(config, graph_candidates=args.candidates or None)
    items = synthetic_catalog(args.size, real_items())
    texts = [_item_text(item) for item in items]
    start = time.perf_counter()
    fit_tfidf(texts, analyzer="char_wb", ngram_range=(3, 5), max_features=config.max_char_features)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    matrix = text_matrix(items, config)
    text_s = time.perf_counter() - start
    n, k = matrix.shape[0], args.k
    start = time.perf_counter()
    text_graph(matrix, config)
    graph_s = time.perf_counter() - start
    print(
        f"items {n}: reference vectorise {reference_s:.2f} s; text vectors {text_s:.2f} s "
        f"({text_s / reference_s:.2f}x); neighbour graph {graph_s:.2f} s ({graph_s / reference_s:.2f}x)",
        flush=True,
    )
    if args.no_recall:
        return
    start = time.perf_counter()
    ids, sims = neighbour_graph(
        matrix,
        k=k,
        chunk=config.chunk_size,
        exact_max_items=0,
        dims=config.graph_dims,
        cluster_size=config.graph_cluster_size,
        probes=config.graph_probes,
        margin=config.graph_probe_margin,
        kmeans_sample=config.graph_kmeans_sample,
        candidates=config.graph_candidates,
        kmeans_iterations=config.graph_kmeans_iterations,
        expand=config.graph_expand,
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
    print(f"large-catalog graph {approximate_s:.2f} s; exact graph (extrapolated from the sample) {exact_s:.2f} s")


if __name__ == "__main__":
    main()

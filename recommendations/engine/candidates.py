"""Candidate pools: the items a query (and a self-tuning case) is scored on.

A pool is the union of each history item's stored text neighbours (the sparse graph), its row neighbours in every
order-signal matrix, and a fixed set (the bestsellers and trending items). Serving (core.Recommender.recommend)
and self-tuning (tuning._build_pools) both score exactly the items of such a pool: an item outside it has no
order-signal score for the history and lies outside every history item's text neighbourhood, so it rarely
reaches a top 10. Serving takes every stored neighbour; tuning a narrower pool per source (its cost is per case).

Pure numpy/scipy (no Django).
"""

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["SERVING_FIXED", "candidate_pool", "row_entries"]

# Serving's fixed candidates: this many bestsellers and this many trending items (core.Recommender).
SERVING_FIXED = 50


def row_entries(matrix: sp.csr_matrix, row: int, k: int | None = None) -> np.ndarray:
    """Column ids of the stored entries of one CSR row; with k, only its k largest (all of them when it has <= k)."""
    start, end = int(matrix.indptr[row]), int(matrix.indptr[row + 1])
    indices = matrix.indices[start:end]
    if k is None or end - start <= k:
        return indices
    return indices[np.argpartition(-matrix.data[start:end], k - 1)[:k]]


def candidate_pool(
    history: Sequence[int],
    *,
    neighbour_ids: np.ndarray,
    behaviour: Iterable[sp.csr_matrix],
    fixed: np.ndarray,
    text_per_item: int | None = None,
    behaviour_per_item: int | None = None,
    extra: Sequence[int] = (),
) -> np.ndarray:
    """Sorted unique item ids: the history items' text neighbours (the first text_per_item of each; None: all stored),
    their row entries in each behaviour matrix (the behaviour_per_item largest; None: all), fixed and extra.

    The history items themselves are included only when another source names them (callers exclude them)."""
    rows = np.asarray(history, dtype=np.int64)
    text = neighbour_ids[rows] if text_per_item is None else neighbour_ids[rows, :text_per_item]
    text = text.ravel()
    parts = [np.asarray(fixed, dtype=np.int64), text[text >= 0].astype(np.int64), np.asarray(extra, dtype=np.int64)]
    for matrix in behaviour:
        for h in rows.tolist():
            parts.append(row_entries(matrix, h, behaviour_per_item).astype(np.int64))
    return np.unique(np.concatenate(parts))

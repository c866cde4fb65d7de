"""Compiled loops of the large-catalog neighbour graph (recommendations.engine.neighbours.sketched_graph).

numba-jitted (cached beside this file after the first compilation); each releases the GIL, so the graph's row
halves run in two threads. Imported lazily: only a build above EngineConfig.exact_graph_max_items items needs them.
Every loop is deterministic: the results depend only on the inputs (not on threads or timing).
"""

import numba
import numpy as np


def _jit(function):
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # no writable cache location (numba's own error): compiled in each process instead
        return numba.njit(nogil=True)(function)


@_jit
def _spread_row(indptr, indices, data, i, work, fill):
    """Write CSR row i into the dense vector work (fill) or put its entries back to zero (not fill)."""
    for p in range(indptr[i], indptr[i + 1]):
        work[indices[p]] = data[p] if fill else np.float32(0.0)


@_jit
def _row_dot(indices, data, work, lo, hi):
    """The dot product of the CSR row data[lo:hi] (columns indices[lo:hi]) with the dense vector work, in float32,
    summed in four lanes then ((0 + 1) + (2 + 3)): the same order on every CPU, so results never depend on it."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    p = lo
    while p + 4 <= hi:
        s0 += data[p] * work[indices[p]]
        s1 += data[p + 1] * work[indices[p + 1]]
        s2 += data[p + 2] * work[indices[p + 2]]
        s3 += data[p + 3] * work[indices[p + 3]]
        p += 4
    while p < hi:
        s0 += data[p] * work[indices[p]]
        p += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def sketch_rows(indptr, indices, data, cols, signs, start, stop, out):
    """out[i] for rows start <= i < stop: the sum over row i's non-zeros (f, w) of w * signs[f, h] at column
    cols[f, h] for each h, L2-normalised (all-zero rows stay zero); out starts zeroed."""
    hashes = cols.shape[1]
    dims = out.shape[1]
    for i in range(start, stop):
        row = out[i]
        for p in range(indptr[i], indptr[i + 1]):
            f = indices[p]
            w = data[p]
            for h in range(hashes):
                row[cols[f, h]] += w * signs[f, h]
        norm = np.float32(0.0)
        for d in range(dims):
            norm += row[d] * row[d]
        if norm > 0:
            inv = np.float32(1.0) / np.sqrt(norm)
            for d in range(dims):
                row[d] *= inv


@_jit
def top_columns(scores, p, out, best):
    """out[i] = the columns of the p highest scores of row i (in no order; ties by lower column) and best[i]
    the column of the highest (lowest column on ties, as numpy's argmax)."""
    n, m = scores.shape
    vals = np.empty(p, dtype=scores.dtype)
    for i in range(n):
        b = 0
        for c in range(p):
            vals[c] = scores[i, c]
            out[i, c] = c
            if vals[c] > vals[b]:
                b = c
        lo = 0
        for c in range(1, p):
            if vals[c] < vals[lo] or (vals[c] == vals[lo] and out[i, c] > out[i, lo]):
                lo = c
        top = vals[b]
        for c in range(p, m):
            v = scores[i, c]
            if v > vals[lo]:
                if v > top:
                    top = v
                    b = c
                vals[lo] = v
                out[i, lo] = c
                lo = 0
                for t in range(1, p):
                    if vals[t] < vals[lo] or (vals[t] == vals[lo] and out[i, t] > out[i, lo]):
                        lo = t
        best[i] = b


@_jit
def push_block(block, rows, slots, cols, heap_vals, heap_ids):
    """Offer block[a, b] (the score of item cols[b] for item rows[a]; an item never scores itself) to the running
    best C of rows[a], kept in heap row slots[a] as a min-heap of (value, id) in heap_vals/heap_ids (the root is the
    worst kept: the lowest value, the highest id among equal values). The slots of one block are distinct."""
    size = heap_vals.shape[1]
    for a in range(block.shape[0]):
        r = rows[a]
        hv = heap_vals[slots[a]]
        hi = heap_ids[slots[a]]
        for b in range(block.shape[1]):
            v = block[a, b]
            j = cols[b]
            if v < hv[0] or (v == hv[0] and j >= hi[0]) or j == r:
                continue
            pos = 0
            while True:
                child = 2 * pos + 1
                if child >= size:
                    break
                right = child + 1
                if right < size and (hv[right] < hv[child] or (hv[right] == hv[child] and hi[right] > hi[child])):
                    child = right
                if hv[child] < v or (hv[child] == v and hi[child] > j):
                    hv[pos] = hv[child]
                    hi[pos] = hi[child]
                    pos = child
                else:
                    break
            hv[pos] = v
            hi[pos] = j


@_jit
def exact_top(indptr, indices, data, candidates, n_features, visit, ids, sims):
    """For each t, row i = visit[t] of the CSR matrix (sorted indices not needed): the exact dot products of row i
    with the rows candidates[t] (ids, -1 = none); the best ids.shape[1] written to ids[i]/sims[i], best first, ties
    by the lower id (-1 and 0.0 past the last candidate)."""
    width = candidates.shape[1]
    k = ids.shape[1]
    work = np.zeros(n_features, dtype=np.float32)
    vals = np.empty(width, dtype=np.float32)
    row = np.empty(width, dtype=np.int32)
    for t in range(visit.shape[0]):
        i = visit[t]
        row[:] = candidates[t]
        row.sort()
        _spread_row(indptr, indices, data, i, work, True)
        m = 0
        for c in range(width):
            j = row[c]
            if j < 0:
                continue
            row[m] = j
            vals[m] = -_row_dot(indices, data, work, indptr[j], indptr[j + 1])
            m += 1
        _spread_row(indptr, indices, data, i, work, False)
        order = np.argsort(vals[:m], kind="mergesort")  # stable: equal values keep the ascending ids
        for q in range(k):
            if q < m:
                ids[i, q] = row[order[q]]
                sims[i, q] = -vals[order[q]]
            else:
                ids[i, q] = -1
                sims[i, q] = 0.0


@_jit
def add_reverse(ids, sims):
    """Every kept pair in both directions: row j also offered (i, sims[i, t]) for each ids[i, t] = j. Returns the new
    lists: for each row the best ids.shape[1] of its own and its offered neighbours (an id once, its own value kept),
    best first, ties by the lower id; the result does not depend on the order of the offers."""
    n, k = ids.shape
    out_ids = ids.copy()
    out_sims = sims.copy()
    for i in range(n):
        for t in range(k):
            j = ids[i, t]
            if j < 0:
                break
            v = sims[i, t]
            row_ids = out_ids[j]
            row_sims = out_sims[j]
            last = row_ids[k - 1]
            if last >= 0 and (v < row_sims[k - 1] or (v == row_sims[k - 1] and i > last)):
                continue
            present = False
            for q in range(k):
                if row_ids[q] == i:
                    present = True
                    break
                if row_ids[q] < 0:
                    break
            if present:
                continue
            pos = k - 1
            while pos > 0:
                prev = row_ids[pos - 1]
                if prev >= 0 and (row_sims[pos - 1] > v or (row_sims[pos - 1] == v and prev < i)):
                    break
                row_ids[pos] = prev
                row_sims[pos] = row_sims[pos - 1]
                pos -= 1
            row_ids[pos] = i
            row_sims[pos] = v
    return out_ids, out_sims


@_jit
def expand(indptr, indices, data, ids, sims, t, n_features, visit, out_ids, out_sims):
    """One round of neighbours' neighbours: for each row i in visit, the top-t neighbours of its top-t neighbours
    that it does not hold yet are scored exactly (as exact_top) and merged; the best ids.shape[1] of the union
    written to out_ids[i]/out_sims[i], best first, ties by the lower id. Reads ids/sims only."""
    n, k = ids.shape
    t = min(t, k)
    work = np.zeros(n_features, dtype=np.float32)
    mark = np.full(n, -1, dtype=np.int64)
    pool_ids = np.empty(k + t * t, dtype=np.int32)
    pool_vals = np.empty(k + t * t, dtype=np.float32)
    for q in range(visit.shape[0]):
        i = visit[q]
        m = 0
        mark[i] = i
        for a in range(k):
            j = ids[i, a]
            if j < 0:
                break
            mark[j] = i
            pool_ids[m] = j
            pool_vals[m] = -sims[i, a]
            m += 1
        own = m
        for a in range(min(t, own)):
            j = ids[i, a]
            for b in range(t):
                c = ids[j, b]
                if c < 0:
                    break
                if mark[c] != i:
                    mark[c] = i
                    pool_ids[m] = c
                    m += 1
        if m > own:
            _spread_row(indptr, indices, data, i, work, True)
            for e in range(own, m):
                j = pool_ids[e]
                pool_vals[e] = -_row_dot(indices, data, work, indptr[j], indptr[j + 1])
            _spread_row(indptr, indices, data, i, work, False)
        if m == own:  # nothing new: the row stays as it was
            out_ids[i] = ids[i]
            out_sims[i] = sims[i]
            continue
        by_id = np.argsort(pool_ids[:m], kind="mergesort")
        sorted_ids = pool_ids[:m][by_id]
        sorted_vals = pool_vals[:m][by_id]
        order = np.argsort(sorted_vals, kind="mergesort")  # stable: equal values keep the ascending ids
        for r in range(k):
            if r < m:
                out_ids[i, r] = sorted_ids[order[r]]
                out_sims[i, r] = -sorted_vals[order[r]]
            else:
                out_ids[i, r] = -1
                out_sims[i, r] = 0.0

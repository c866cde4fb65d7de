"""What a store's orders say about its items: bought together, bought by one customer, bought next, popular, trending.

Pure numpy/scipy (no Django). The input is the store's orders (an anonymous customer key, a time, item ids in
line order); the output is three item-item matrices and two item vectors, all over the engine's item index:

- basket(a, b): a and b in one order (co-purchase);
- customer(a, b): a and b bought by one customer, in any of their orders;
- sequence(a, b): b bought after a by one customer, within SEQUENCE_WINDOW of their later items (directed);
- linear(a, b): EASE (Steck 2019), the ridge regression of each item's column of the customer x item matrix on
  every other item's, in closed form: where the others explain a purchase, the one that explains it gets the weight
  (two items bought by the same people get one share, not two, as co-occurrence gives them);
- popularity: distinct orders per item; trending: the same, each order weighted 0.5 ** (age / half-life).

Every matrix is normalised by the asymmetric cosine of Aiolli (2013), c(a, b) / (n_a ** alpha * n_b ** (1 - alpha))
for the row (query) item a: alpha = 0.5 is the cosine, alpha = 1 the conditional probability P(b | a) of
Deshpande & Karypis (2004), which lets a popular companion keep its popularity. Each order (customer) is weighted
1 / log2(1 + its size) so a 40-item order says less about any one pair than a 2-item order (the IUF weighting of
Breese et al. 1998, per basket). The diagonal is zero. Self-tuning picks alpha per store (tuning.py).
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommendations.engine.neighbours import prune_rows

__all__ = [
    "Behaviour",
    "Order",
    "build_behaviour",
    "customer_sequences",
    "hold_out_last_items",
    "scaled_popularity",
    "scaled_trending",
]

# A later item counts as "bought next" after an earlier one when at most this many new items lie between them
# (gap g weighs 0.5 ** g): an a-priori window, the same for every store.
SEQUENCE_WINDOW = 5
# EASE is solved over at most this many items (the most bought; the others get no linear row or column): one dense
# inverse of that size (about 0.3 s at 2,000 on the 2-core dev machine; self-tuning solves it five times). Its ridge
# penalty is LINEAR_L2 times the mean diagonal of the Gram matrix (the mean purchase count), so it scales with how
# much each item was bought.
LINEAR_MAX_ITEMS = 2000
LINEAR_L2 = 10.0
TRENDING_HALF_LIFE_DAYS = 14.0


@dataclass(frozen=True)
class Order:
    """One order as the engine sees it: the anonymous customer key ("" for a guest), epoch seconds, item ids."""

    customer: str
    when: float
    items: tuple[str, ...]


@dataclass(frozen=True)
class Behaviour:
    """Order signals over an item index of size n (see the module docstring)."""

    popularity: np.ndarray
    trending: np.ndarray
    basket: sp.csr_matrix
    customer: sp.csr_matrix
    sequence: sp.csr_matrix
    linear: sp.csr_matrix

    @property
    def has_orders(self) -> bool:
        return bool(self.popularity.any())


@dataclass(frozen=True)
class _IndexedOrder:
    customer: str
    when: float
    items: tuple[int, ...]


def index_orders(orders: Iterable[Order], index: Mapping[str, int]) -> list[_IndexedOrder]:
    """Orders with known items only (first occurrence in an order kept), in time order (stable)."""
    out: list[_IndexedOrder] = []
    for order in orders:
        items = tuple(dict.fromkeys(index[x] for x in order.items if x in index))
        if items:
            out.append(_IndexedOrder(customer=order.customer, when=float(order.when), items=items))
    out.sort(key=lambda o: o.when)
    return out


def customer_sequences(orders: Sequence[_IndexedOrder]) -> dict[str, list[int]]:
    """Each keyed customer's distinct items in the order they were first bought (orders in time, lines in order).

    Guests (no key) have no sequence beyond their one order.
    """
    sequences: dict[str, list[int]] = {}
    seen: dict[str, set[int]] = defaultdict(set)
    for order in orders:
        if not order.customer:
            continue
        sequence = sequences.setdefault(order.customer, [])
        known = seen[order.customer]
        for item in order.items:
            if item not in known:
                known.add(item)
                sequence.append(item)
    return sequences


def hold_out_last_items(orders: Sequence[_IndexedOrder], held_out: Mapping[str, set[int]]) -> list[_IndexedOrder]:
    """The orders without each customer's held-out items (customer -> items): what the store knew before them."""
    out: list[_IndexedOrder] = []
    for order in orders:
        items_out = held_out.get(order.customer) if order.customer else None
        items = order.items if not items_out else tuple(x for x in order.items if x not in items_out)
        if items:
            out.append(_IndexedOrder(customer=order.customer, when=order.when, items=items))
    return out


def _cosine(groups: Sequence[Sequence[int]], n: int, alpha: float = 0.5) -> sp.csr_matrix:
    """Asymmetric-cosine co-occurrence over groups of item ids (each group weighted 1 / log2(1 + size))."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    count = 0
    for group in groups:
        if len(group) < 2:
            continue
        weight = 1.0 / math.log2(1 + len(group))
        rows.extend([count] * len(group))
        cols.extend(group)
        vals.extend([weight] * len(group))
        count += 1
    if not count:
        return sp.csr_matrix((n, n))
    weighted = sp.csr_matrix((vals, (rows, cols)), shape=(count, n), dtype=np.float64)
    binary = weighted.copy()
    binary.data[:] = 1.0
    counts = np.asarray(binary.sum(axis=0)).ravel()
    co = sp.csr_matrix(binary.T @ weighted)
    co.setdiag(0)
    co.eliminate_zeros()
    return _scale(co, counts, alpha)


def _scale(co: sp.csr_matrix, counts: np.ndarray, alpha: float = 0.5) -> sp.csr_matrix:
    """co(a, b) / (n_a ** alpha * n_b ** (1 - alpha)): alpha 0.5 is the cosine, 1.0 the conditional P(b | a)."""
    coo = co.tocoo()
    denom = np.maximum(counts[coo.row], 1) ** alpha * np.maximum(counts[coo.col], 1) ** (1.0 - alpha)
    return sp.csr_matrix((coo.data / denom, (coo.row, coo.col)), shape=co.shape)


def _sequence(sequences: Iterable[Sequence[int]], n: int, alpha: float = 0.5) -> sp.csr_matrix:
    """Directed "bought next": a -> b when b comes within SEQUENCE_WINDOW places after a in a sequence."""
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    counts = np.zeros(n)
    for sequence in sequences:
        s = np.asarray(sequence, dtype=np.int64)
        if s.size < 2:
            continue
        counts[s] += 1.0
        weight = 1.0 / math.log2(1 + s.size)
        for gap in range(1, min(SEQUENCE_WINDOW, s.size - 1) + 1):
            rows.append(s[:-gap])
            cols.append(s[gap:])
            vals.append(np.full(s.size - gap, weight * 0.5 ** (gap - 1)))
    if not rows:
        return sp.csr_matrix((n, n))
    co = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    co.sum_duplicates()
    return _scale(co, counts, alpha)


def build_behaviour(
    orders: Sequence[_IndexedOrder], *, n: int, now: float | None = None, alpha: float = 0.5
) -> Behaviour:
    """Every order signal over n items, item-item ones normalised with exponent alpha (see the module docstring);
    trending ages are taken from now (default: the latest order)."""
    popularity = np.zeros(n)
    trending = np.zeros(n)
    if orders:
        latest = max(o.when for o in orders) if now is None else now
        for order in orders:
            age_days = max(latest - order.when, 0.0) / 86400.0
            items = np.asarray(order.items, dtype=np.int64)
            popularity[items] += 1.0
            trending[items] += math.pow(0.5, age_days / TRENDING_HALF_LIFE_DAYS)
    sequences = customer_sequences(orders)
    return Behaviour(
        popularity=popularity,
        trending=trending,
        basket=_cosine([o.items for o in orders], n, alpha),
        customer=_cosine(list(sequences.values()), n, alpha),
        sequence=_sequence(sequences.values(), n, alpha),
        linear=_linear([*sequences.values(), *(o.items for o in orders if not o.customer)], n),
    )


def _linear(groups: Sequence[Sequence[int]], n: int) -> sp.csr_matrix:
    """EASE item-item weights (Steck 2019) over the rows of groups (one per customer, or guest order):
    B = I - P / diag(P) with P = (X'X + l2 I)^-1, i.e. B(a, b) = -P(a, b) / P(b, b), the diagonal zero; solved over
    the LINEAR_MAX_ITEMS most bought items, positive weights only (a negative one says "not this", which the blend
    leaves to the other signals)."""
    rows = [np.asarray(g, dtype=np.int64) for g in groups if len(g)]
    if not rows:
        return sp.csr_matrix((n, n))
    cols = np.concatenate(rows)
    counts = np.bincount(cols, minlength=n).astype(np.float64)
    active = np.flatnonzero(counts)
    if active.size > LINEAR_MAX_ITEMS:
        active = np.sort(active[np.lexsort((active, -counts[active]))[:LINEAR_MAX_ITEMS]])
    if active.size < 2:
        return sp.csr_matrix((n, n))
    local = np.full(n, -1, dtype=np.int64)
    local[active] = np.arange(active.size)
    row_ids = np.repeat(np.arange(len(rows)), [r.size for r in rows])
    keep = local[cols] >= 0
    x = sp.csr_matrix((np.ones(int(keep.sum())), (row_ids[keep], local[cols[keep]])), shape=(len(rows), active.size))
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    diagonal = np.diag(gram).copy()
    gram[np.diag_indices_from(gram)] += LINEAR_L2 * float(diagonal.mean())
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    weights[weights < 1e-6] = 0.0
    dense = sp.csr_matrix(weights)
    coo = dense.tocoo()
    return sp.csr_matrix((coo.data, (active[coo.row], active[coo.col])), shape=(n, n))


def scaled_popularity(raw: np.ndarray) -> np.ndarray:
    """log1p of order counts scaled to [0, 1]."""
    pop = np.log1p(raw)
    return pop / pop.max() if raw.any() else pop


def scaled_trending(raw: np.ndarray) -> np.ndarray:
    """Recency-weighted order counts scaled to [0, 1]."""
    return raw / raw.max() if raw.any() else raw


@dataclass
class Signals:
    """What the engine knows from the store's orders: popularity, trending and the item-item order signals."""

    popularity: np.ndarray  # log-scaled order counts in [0, 1]
    raw_popularity: np.ndarray
    trending: np.ndarray  # in [0, 1]
    copurchase: sp.csr_matrix  # n x n, cosine-normalised, top-k per row
    customer: sp.csr_matrix  # bought by one customer, likewise
    sequence: sp.csr_matrix  # bought next (directed), likewise
    linear: sp.csr_matrix  # EASE weights, likewise
    has_popularity: bool = False
    has_trending: bool = False
    has_copurchase: bool = False

    def behaviour(self) -> tuple[tuple[str, sp.csr_matrix], ...]:
        """The item-item order signals with at least one entry, by EngineConfig weight name."""
        pairs = (
            ("copurchase_weight", self.copurchase),
            ("customer_weight", self.customer),
            ("sequence_weight", self.sequence),
            ("linear_weight", self.linear),
        )
        return tuple((name, m) for name, m in pairs if m.nnz)


def build_signals(
    *,
    n: int,
    index: Mapping[str, int],
    behaviour: Behaviour | None,
    popularity: Mapping[str, float] | None,
    trending: Mapping[str, float] | None,
    neighbours: int,
) -> Signals:
    """The order signals over the n catalog items: each item-item signal kept to its `neighbours` largest per row."""

    def vector(values: Mapping[str, float] | None) -> np.ndarray:
        out = np.zeros(n)
        for item_id, value in (values or {}).items():
            i = index.get(item_id)
            if i is not None and value > 0:
                out[i] = float(value)
        return out

    # Counts given directly win; else the orders' own.
    raw_pop = behaviour.popularity if popularity is None and behaviour is not None else vector(popularity)
    raw_trend = behaviour.trending if trending is None and behaviour is not None else vector(trending)
    pop, trend = scaled_popularity(raw_pop), scaled_trending(raw_trend)
    empty = sp.csr_matrix((n, n))
    k = neighbours
    return Signals(
        popularity=pop,
        raw_popularity=raw_pop,
        trending=trend,
        copurchase=prune_rows(behaviour.basket, k) if behaviour is not None else empty,
        customer=prune_rows(behaviour.customer, k) if behaviour is not None else empty,
        sequence=prune_rows(behaviour.sequence, k) if behaviour is not None else empty,
        linear=prune_rows(behaviour.linear, k) if behaviour is not None else empty,
        has_popularity=bool(raw_pop.any()),
        has_trending=bool(raw_trend.any()),
        has_copurchase=behaviour is not None and behaviour.basket.nnz > 0,
    )

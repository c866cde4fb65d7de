"""The local recommender: a per-store index over catalog text, co-purchase and popularity.

Pure Python + numpy/scipy/scikit-learn, no Django, so it is fast to test and safe to build in a worker.

Scoring (placement ``product``), for the query item q and the session s_1..s_m (most recent first):

    score(c) = sum_h w_h * cos(x_h, x_c)          text similarity, w = decay**position, normalised to sum 1
             - hub_penalty * hub(c)                hubness correction: hub(c) = mean cos of c to its k nearest items
             + sum_s weight_s * sum_h v_h * S_s(h, c)  order signals s (bought together / by one customer / next /
                                                   linear, EASE),
                                                   v = behaviour_decay**position, normalised to sum 1
             + popularity_weight * pop(c)          a tie-breaker a priori; tuned up where bestsellers sell

x is a TF-IDF vector over title, brand, type, category path and tags (word unigrams + character 3-5-grams,
sublinear tf), plus the description at a lower weight. The title/brand blocks weight terms by the BM25 idf
log(1 + (N - df + 0.5) / (df + 0.5)) (Lucene's non-negative form), which discounts words much of the catalog
shares more than scikit-learn's smooth idf does; the word block conflates plurals (Harman's S-stemmer).
The hubness correction (CSLS, Conneau et al. 2018) stops items that are close to everything (generic,
keyword-stuffed titles; items with many near-identical siblings) from crowding every list; offline it is the
largest single gain (see recommendations/evaluation.py).
S_s is item-item co-occurrence (behaviour.py), normalised by Aiolli's asymmetric cosine (alpha 0.5: cosine; 1.0:
P(c | h)) with a down-weight for large orders, and added at its absolute value: a pair seen once in a big order
adds little, so weak evidence never outranks a strong text match, and a store without orders is ranked by text.
The linear signal is EASE's item-item weights (Steck 2019; behaviour._linear): what explains a customer's purchases
once the other items are accounted for, so two items always bought by the same people share one weight.

A product/cart query scores a candidate pool exactly (engine/candidates.py, the pool self-tuning validates on):
the history items' stored text neighbours and order-signal rows, the bestsellers and trending items; the whole
catalog only when the pool runs out of showable items. Home scores its base order's prefix plus the session's
neighbours, grown until nothing outside can beat the last pick. The build's quadratic part is the sparse
neighbour graph (hubness, near-duplicates, precompute): exact up to EngineConfig.exact_graph_max_items
items, above that an inverted-file search over random sketches with exact cosines for the pairs it compares
(100k items: ~8 s on the 2-core dev machine, 1.6x the TF-IDF vectorisation; bench/recommender_bench.py).
"""

import copy
import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommendations.engine.behaviour import (
    Behaviour,
    Order,
    Signals,
    build_behaviour,
    build_signals,
    customer_sequences,
    hold_out_last_items,
    index_orders,
)
from recommendations.engine.candidates import SERVING_FIXED, candidate_pool
from recommendations.engine.neighbours import neighbour_graph, top_k_desc
from recommendations.engine.text import WORD_PATTERN, char_wb_tfidf, fit_tfidf, split_tfidf, stem_text, word_tfidf
from recommendations.engine.tuning import TUNING_ALPHAS, Case, TuningReport, significantly_better, tune

__all__ = [
    "CatalogItem",
    "EngineConfig",
    "Order",
    "Placement",
    "Reason",
    "Recommender",
    "ScoredItem",
]


class Placement(StrEnum):
    PRODUCT = "product"
    CART = "cart"
    HOME = "home"


class Reason(StrEnum):
    SIMILAR = "similar"
    BOUGHT_TOGETHER = "bought_together"
    POPULAR = "popular"
    TRENDING = "trending"
    PINNED = "pinned"


@dataclass(frozen=True)
class CatalogItem:
    """One recommendable product, as the engine sees it (built from a Product row by the loader)."""

    id: str
    sku: str = ""
    title: str = ""
    vendor: str = ""
    product_type: str = ""
    category_path: str = ""
    tags: tuple[str, ...] = ()
    description: str = ""
    price: float | None = None
    in_stock: bool = True
    is_published: bool = True
    # Items sharing a group id are variants/siblings of one product; "" means the item is its own group.
    group_id: str = ""


@dataclass(frozen=True)
class ScoredItem:
    id: str
    score: float
    reason: Reason


@dataclass(frozen=True)
class EngineConfig:
    """Model settings. The text defaults were chosen on amazon_office_sample_5000 and checked on the 1000 sample; the
    order-signal defaults are a-priori starting points that self-tuning moves per store (tuning.py)."""

    # Weight of the session item at position p (0 = the query, or the most recent session item).
    recency_decay: float = 0.7
    char_weight: float = 1.0
    description_weight: float = 0.3
    category_weight: float = 0.1
    word_regex: str = WORD_PATTERN
    # Term weighting of the title/brand blocks: "bm25" (BM25 idf, Lucene's form) or "smooth" (scikit-learn's).
    text_idf: str = "bm25"
    # Conflate plural and singular words (Harman's S-stemmer) in the word block.
    stem_plurals: bool = True
    # Near-duplicates of the query/session items are blocked from this cosine up (users do buy another
    # size or pack of what they just bought, so only practically identical items are held back).
    history_near_duplicate: float = 0.97
    max_word_features: int = 1 << 18
    max_char_features: int = 1 << 18
    max_description_features: int = 1 << 17
    # Hubness correction: hub(c) = mean similarity of c to its hub_k nearest neighbours.
    hub_k: int = 10
    hub_penalty: float = 0.3
    # The blend (product placement): text cosine + w * each order signal at its absolute value (behaviour_scale
    # "none"; "max" divides it by its best value for the query), + the popularity and trending priors (in [0, 1]).
    # These are a-priori starting points; with self_tune the build picks them per store (engine/tuning.py).
    copurchase_weight: float = 1.0  # bought together (one order)
    customer_weight: float = 0.1  # bought by one customer (any of their orders)
    sequence_weight: float = 0.1  # bought next by one customer
    linear_weight: float = 0.3  # EASE: the items that explain a customer's purchases (behaviour.py)
    # Weight of the session item at position p in the order signals (text keeps recency_decay): a shopper's older
    # items still say what they buy with (item-kNN scores sum over the whole profile) while text follows the query.
    behaviour_decay: float = 0.7
    # Normalisation of the item-item order signals (behaviour.py): 0.5 the cosine, 1.0 the conditional P(b | a).
    behaviour_alpha: float = 0.5
    # Scale of the popularity prior (log-scaled to [0, 1]). A priori a tie-breaker only (it must not reorder text
    # matches that differ by a thousandth): a store whose own history shows its bestsellers sell raises it (tuning).
    popularity_weight: float = 0.001
    product_trending_weight: float = 0.0
    behaviour_scale: str = "none"
    # Choose the settings of tuning.TUNING_GRID on the store's own recent history at every build (needs orders
    # with customer keys from at least tune_min_cases customers; about tune_max_cases cases, up to
    # tune_holdouts from each of the most recent customers).
    self_tune: bool = True
    tune_min_cases: int = 20
    tune_max_cases: int = 3000
    tune_holdouts: int = 3
    # The query and at most this many session items (most recent first) shape a product/cart answer.
    max_history: int = 10
    # Cosine at or above which two items count as the same product (variants under different ids).
    near_duplicate: float = 0.9
    # Neighbours kept per item in the sparse graph (precompute, hubness, near-duplicates).
    neighbours: int = 50
    copurchase_neighbours: int = 100
    chunk_size: int = 512
    # Above this many items the neighbour graph is searched through an inverted-file index: items are
    # clustered (about graph_cluster_size per cluster) on graph_dims-dimensional random sketches of their
    # vectors and compared to the items of the graph_probes nearest clusters only (on the sketches; the best
    # graph_candidates then with exact cosines: engine.neighbours.sketched_graph).
    exact_graph_max_items: int = 20000
    graph_dims: int = 512
    # 50: 2,000 clusters at 100k (with the sketched candidates below the probed pairs are cheap, so smaller
    # clusters, better centred, pay; exact probes were at 100).
    graph_cluster_size: int = 50
    # Probes per item. Sketched (below), at 100k: 8 probes find 86-87% of the exact top 10 and 75% of the top 50
    # (12 probes and 4 k-means rounds: 89% / 77% for ~20% more CPU); the exact probes found 80% / 76% with 16
    # probes of clusters of 100. bench/build_bench.py measures recall and time.
    graph_probes: int = 8
    # An item probes only those of its graph_probes nearest centres whose sketch similarity is within this margin
    # of its nearest centre's (None: all of them). Without graph_candidates only; there a margin of 0.15 halved
    # the graph time at 72% recall@10.
    graph_probe_margin: float | None = None
    # The k-means centres are fitted on a seeded sample of this many items (None: all) in graph_kmeans_iterations
    # rounds (without graph_candidates: 6); every item is assigned.
    graph_kmeans_sample: int | None = 25000
    graph_kmeans_iterations: int = 2
    # The probed pairs are scored on the sketches (dense products, cheap) and only each item's best
    # graph_candidates (at least `neighbours`) exactly (None: every probed pair exactly, the graph before, ~4x
    # the CPU time at 100k). Then each found pair is kept on both sides and graph_expand nearest neighbours'
    # graph_expand nearest are scored too (one round of neighbour descent; 0: none): at 100k +3 points of
    # recall@10 for ~5% of the graph time, and the near-duplicate variants that k-means splits apart.
    graph_candidates: int | None = 64
    graph_expand: int = 6
    # Cart placement: similarity above this to a cart item means a substitute, not a complement.
    substitute_similarity: float = 0.5
    cheaper_bonus: float = 0.05
    # Home placement: weight of trending (recent orders) against all-time bestsellers.
    trending_weight: float = 0.5


def _item_text(item: CatalogItem) -> str:
    return " ".join(part for part in (item.title, item.vendor, item.product_type, " ".join(item.tags)) if part)


def _category_text(item: CatalogItem) -> str:
    """Every prefix of the path as one token, so "A > B > C" shares "A" and "A > B" with its cousins."""
    return _category_path_text(item.category_path)


_NOT_WORD = re.compile(r"\W")


@functools.lru_cache(maxsize=1 << 14)
def _category_path_text(path: str) -> str:
    parts = [p.strip().lower() for p in path.replace("/", ">").split(">") if p.strip()]
    # \W is every character but str.isalnum() ones and "_": each such character becomes "_".
    return " ".join("_".join(_NOT_WORD.sub("_", p) for p in parts[: i + 1]) for i in range(len(parts)))


def text_matrix(catalog: Sequence[CatalogItem], config: EngineConfig) -> sp.csr_matrix:
    """The items' text vectors: TF-IDF blocks (words, character n-grams, category, description), weighted, hstacked
    and L2-normalised (float32 CSR, one row per item)."""
    texts = [_item_text(item) for item in catalog]
    # The title/brand blocks are counted by numpy passes over the whole corpus (text.py), which give
    # scikit-learn's matrices for the default word pattern; another pattern keeps scikit-learn's vectoriser.
    if config.word_regex == WORD_PATTERN:
        word_block = word_tfidf(
            texts, idf=config.text_idf, stem=config.stem_plurals, max_features=config.max_word_features
        )
    else:
        pattern = re.compile(config.word_regex)
        words = [stem_text(text, pattern) for text in texts] if config.stem_plurals else texts
        word_block = fit_tfidf(
            words, idf=config.text_idf, max_features=config.max_word_features, token_pattern=config.word_regex
        )
    blocks = [
        word_block,
        char_wb_tfidf(texts, idf=config.text_idf, ngram_range=(3, 5), max_features=config.max_char_features)
        * config.char_weight,
    ]
    categories = [_category_text(item) for item in catalog]
    if config.category_weight > 0 and any(categories):
        blocks.append(split_tfidf(categories) * config.category_weight)
    descriptions = [item.description for item in catalog]
    if config.description_weight > 0 and any(descriptions):
        blocks.append(
            fit_tfidf(descriptions, max_features=config.max_description_features, stop_words="english")
            * config.description_weight
        )
    return sp.csr_matrix(normalize(sp.hstack(blocks, format="csr")), dtype=np.float32)


def text_graph(matrix: sp.csr_matrix, config: EngineConfig) -> tuple[np.ndarray, np.ndarray]:
    """The sparse neighbour graph of the text vectors with the config's graph settings: (ids, cosines), k per row."""
    return neighbour_graph(
        matrix,
        k=config.neighbours,
        chunk=config.chunk_size,
        exact_max_items=config.exact_graph_max_items,
        dims=config.graph_dims,
        cluster_size=config.graph_cluster_size,
        probes=config.graph_probes,
        margin=config.graph_probe_margin,
        kmeans_sample=config.graph_kmeans_sample,
        candidates=config.graph_candidates,
        kmeans_iterations=config.graph_kmeans_iterations,
        expand=config.graph_expand,
    )


class Recommender:
    """A built per-store index. Build with ``Recommender.build(items, ...)``; thread-safe to query."""

    def __init__(
        self,
        *,
        items: list[CatalogItem],
        matrix: sp.csr_matrix,
        neighbour_ids: np.ndarray,
        neighbour_sims: np.ndarray,
        hub: np.ndarray,
        signals: Signals,
        config: EngineConfig,
        tuning: TuningReport | None = None,
    ) -> None:
        self.items = items
        self.config = config
        # What self-tuning chose at build (None: not tuned, e.g. no customer history).
        self.tuning = tuning
        self._index = {item.id: i for i, item in enumerate(items)}
        self._matrix = matrix
        # Precomputed lists also offer the top bestsellers, so no list is short for an isolated item.
        self._bestsellers = top_k_desc(signals.popularity, SERVING_FIXED)
        # Every product/cart pool holds the bestsellers and the trending items (the priors' own candidates).
        self._fixed = np.union1d(
            self._bestsellers if signals.has_popularity else np.zeros(0, dtype=np.int64),
            top_k_desc(signals.trending, SERVING_FIXED) if signals.has_trending else np.zeros(0, dtype=np.int64),
        ).astype(np.int64)
        self._neighbour_ids = neighbour_ids
        self._neighbour_sims = neighbour_sims
        self._hub = hub
        self._signals = signals
        groups: dict[str, int] = {}
        self._group = np.array([groups.setdefault(item.group_id or f"\0{item.id}", len(groups)) for item in items])
        self._price = np.array([math.nan if item.price is None else float(item.price) for item in items])
        self._prior = self._prior_for(config)
        self._home_base, self._home_order, self._home_reasons, self._home_descending = self._home_for(config)
        self._near_indptr, self._near_ids = self._near_for(config)

    # ------------------------------------------------------------------ build

    @classmethod
    def build(
        cls,
        items: Iterable[CatalogItem],
        *,
        orders: Iterable[Order] = (),
        now: float | None = None,
        baskets: Iterable[Sequence[str]] = (),
        popularity: Mapping[str, float] | None = None,
        trending: Mapping[str, float] | None = None,
        config: EngineConfig | None = None,
    ) -> "Recommender":
        """Build the index: text vectors, the sparse neighbour graph, the order signals; then self-tune.

        items: the catalog (duplicates by id keep the first). orders: the store's orders (customer key, epoch
        seconds, item ids); every order signal comes from them, trending aged from now (default: the last order).
        baskets / popularity / trending: the same signals given directly (item ids per order; item id -> order
        count / recency-weighted count; unknown ids ignored), used when orders is empty.
        """
        config = config or EngineConfig()
        unique: dict[str, CatalogItem] = {}
        for item in items:
            unique.setdefault(item.id, item)
        catalog = list(unique.values())
        index = {item.id: i for i, item in enumerate(catalog)}
        n = len(catalog)

        if n == 0:
            empty = np.zeros((0, 0))
            return cls(
                items=[],
                matrix=sp.csr_matrix((0, 0), dtype=np.float32),
                neighbour_ids=empty.astype(np.int32),
                neighbour_sims=empty.astype(np.float32),
                hub=np.zeros(0),
                signals=build_signals(
                    n=0,
                    index={},
                    behaviour=None,
                    popularity=None,
                    trending=None,
                    neighbours=int(config.copurchase_neighbours),
                ),
                config=config,
            )
        matrix = text_matrix(catalog, config)

        neighbour_ids, neighbour_sims = text_graph(matrix, config)
        hub_k = min(config.hub_k, neighbour_sims.shape[1])
        hub = np.asarray(
            neighbour_sims[:, :hub_k].mean(axis=1) if hub_k else np.zeros(n, dtype=np.float32), dtype=np.float64
        )
        indexed = index_orders(orders, index)
        if not indexed:  # the signals given directly: each basket one guest order
            indexed = index_orders((Order(customer="", when=0.0, items=tuple(b)) for b in baskets), index)
        tuning: TuningReport | None = None
        if indexed and config.self_tune:
            config, tuning = _self_tune(
                catalog=catalog,
                orders=indexed,
                now=now,
                matrix=matrix,
                neighbour_ids=neighbour_ids,
                neighbour_sims=neighbour_sims,
                hub=hub,
                config=config,
            )
        behaviour = build_behaviour(indexed, n=n, now=now, alpha=config.behaviour_alpha) if indexed else None
        signals = build_signals(
            n=n,
            index=index,
            behaviour=behaviour,
            popularity=popularity,
            trending=trending,
            neighbours=int(config.copurchase_neighbours),
        )
        return cls(
            items=catalog,
            matrix=matrix,
            neighbour_ids=neighbour_ids,
            neighbour_sims=neighbour_sims,
            hub=hub,
            signals=signals,
            config=config,
            tuning=tuning,
        )

    def with_config(self, config: EngineConfig) -> "Recommender":
        """A view of this index with other query-time settings (decay, penalties, weights, thresholds).

        Build-time settings (vectoriser, neighbour graph) stay as built; the index arrays are shared.
        """
        clone = copy.copy(self)
        clone.config = config
        clone._prior = clone._prior_for(config)
        (clone._home_base, clone._home_order, clone._home_reasons, clone._home_descending) = clone._home_for(config)
        clone._near_indptr, clone._near_ids = clone._near_for(config)
        return clone

    def _prior_for(self, config: EngineConfig) -> np.ndarray:
        """The prior every placement shares: hubness correction plus the popularity and trending priors."""
        signals = self._signals
        prior = -config.hub_penalty * self._hub + config.popularity_weight * signals.popularity
        if config.product_trending_weight:
            prior = prior + config.product_trending_weight * signals.trending
        return np.asarray(prior, dtype=np.float64)

    def _home_for(self, config: EngineConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The home placement's base score, the items in its order (best first, ties by lower index), its reasons,
        and the negated bases in that order."""
        signals = self._signals
        base = signals.popularity + config.trending_weight * signals.trending
        if not signals.has_popularity and not signals.has_trending:
            # No orders yet: the most typical items of the catalog (high similarity to their neighbours).
            base = base + 1e-2 * self._hub
        base = np.asarray(base, dtype=np.float64)
        order = np.lexsort((np.arange(base.size), -base))
        reasons = np.where(config.trending_weight * signals.trending > signals.popularity, 3, 2)
        return base, order, reasons, -base[order]  # the last ascending, for searchsorted

    def _near_for(self, config: EngineConfig) -> tuple[np.ndarray, np.ndarray]:
        """Each item's near-duplicates (stored neighbours at config.near_duplicate or above) as CSR arrays."""
        ids, sims = self._neighbour_ids, self._neighbour_sims
        mask = (sims >= config.near_duplicate) & (ids >= 0)
        indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
        return indptr, ids[mask].astype(np.int64)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def item(self, item_id: str) -> CatalogItem | None:
        i = self._index.get(item_id)
        return None if i is None else self.items[i]

    def recommend(
        self,
        *,
        query_id: str | None,
        placement: str,
        session_ids: Sequence[str] = (),
        exclude_ids: Iterable[str] = (),
        limit: int = 10,
    ) -> list[ScoredItem]:
        """Return up to limit items for the placement, best first; deterministic.

        session_ids: the shopper's cart and recently viewed items, most recent first (unknown ids ignored).
        Never returns the query, a session item, an excluded id, a variant (same group) or near-duplicate of
        any of them, nor two items of one group or two near-duplicates.
        """
        placement = Placement(placement)
        if limit <= 0 or not self.items:
            return []
        history = self._history(query_id, session_ids)
        excluded = set(history)
        excluded.update(i for i in (self._index.get(x) for x in exclude_ids) if i is not None)
        if placement is Placement.HOME or not history:
            return self._home(history, excluded=excluded, limit=limit)
        pool = self._pool(history)
        picked = self._answer(placement, history, excluded=excluded, limit=limit, pool=pool)
        if len(picked) < limit and pool.size < len(self.items):
            # Rare: the pool ran out of showable items (a large limit, or a neighbourhood of near-duplicates).
            picked = self._answer(placement, history, excluded=excluded, limit=limit, pool=None)
        return picked

    def precompute(self, *, limit: int = 10, ids: Iterable[str] | None = None) -> dict[str, list[ScoredItem]]:
        """Return the product-placement list of every item (or of ids), from the sparse graph only.

        Candidates are each item's text neighbours and co-purchase neighbours, so the cost is
        O(n * (neighbours + copurchase_neighbours)) with no n x n matrix, and the lists match recommend()
        for a query without a session (whose pool adds only the trending items) unless the pool runs short.
        """
        config = self.config
        signals = self._signals
        behaviour = [(float(getattr(config, name)), m) for name, m in signals.behaviour()]
        behaviour = [(w, m) for w, m in behaviour if w]
        wanted = range(len(self.items)) if ids is None else [self._index[x] for x in ids if x in self._index]
        result: dict[str, list[ScoredItem]] = {}
        for i in wanted:
            neighbours = self._neighbour_ids[i]
            sims = self._neighbour_sims[i].astype(np.float64)
            valid = neighbours >= 0
            cand = neighbours[valid]
            text = sims[valid]
            rows = [(w, m.getrow(i)) for w, m in behaviour]
            rows = [(w, row) for w, row in rows if row.nnz]
            if rows:
                merged = np.union1d(cand, np.concatenate([row.indices for _, row in rows]))
                text_full = np.zeros(merged.size)
                text_full[np.searchsorted(merged, cand)] = text
                co = np.zeros(merged.size)
                for w, row in rows:
                    top = row.data.max() if config.behaviour_scale == "max" else 1.0
                    co[np.searchsorted(merged, row.indices)] += (w / top) * row.data
                cand, text = merged, text_full
            else:
                co = np.zeros(cand.size)
            scores = text + co + self._prior[cand]
            reasons = np.where(co > text, 1, 0)
            if signals.has_popularity:
                pop_ids = self._bestsellers
                extra = np.setdiff1d(pop_ids, cand)
                if extra.size:
                    cand = np.concatenate([cand, extra])
                    scores = np.concatenate([scores, self._prior[extra]])
                    reasons = np.concatenate([reasons, np.full(extra.size, 2)])
            result[self.items[i].id] = self._select_from(cand, scores, reasons, history=[i], excluded={i}, limit=limit)
        return result

    # ------------------------------------------------------------------ scoring

    def _history(self, query_id: str | None, session_ids: Sequence[str]) -> list[int]:
        history: list[int] = []
        for item_id in (query_id, *session_ids):
            i = self._index.get(item_id) if item_id is not None else None
            if i is not None and i not in history:
                history.append(i)
        return history[: self.config.max_history + 1]

    def _weights(self, history: Sequence[int], decay: float | None = None) -> np.ndarray:
        """Weights of the history items (most recent first): decay (default recency_decay) ** position, sum 1."""
        decay = self.config.recency_decay if decay is None else decay
        weights = decay ** np.arange(len(history), dtype=np.float64)
        return weights / weights.sum()

    def _pool(self, history: Sequence[int]) -> np.ndarray:
        """The candidates a product/cart answer scores (candidates.py): every stored text neighbour and every
        weighted order-signal row entry of the history items, the bestsellers and the trending items."""
        return candidate_pool(
            history,
            neighbour_ids=self._neighbour_ids,
            behaviour=[m for name, m in self._signals.behaviour() if float(getattr(self.config, name))],
            fixed=self._fixed,
        )

    def _text_block(self, history: Sequence[int], pool: np.ndarray | None) -> np.ndarray:
        """Cosines of the pool's items (None: every item) to each history item: pool x history, float64."""
        matrix = self._matrix
        dense = np.zeros((matrix.shape[1], len(history)), dtype=np.float32)
        for column, h in enumerate(history):
            start, end = matrix.indptr[h], matrix.indptr[h + 1]
            dense[matrix.indices[start:end], column] = matrix.data[start:end]
        rows = matrix if pool is None else matrix[pool]
        return np.asarray(rows @ dense, dtype=np.float64)

    def _text_scores(self, history: Sequence[int], weights: np.ndarray, pool: np.ndarray | None) -> np.ndarray:
        """Weighted cosine of the pool's items (None: every item) to the history items."""
        return self._dot(pool, self._query_vector(history, weights))

    def _query_vector(self, history: Sequence[int], weights: np.ndarray) -> np.ndarray:
        """The weighted sum of the history items' vectors, dense over the features (cosine is linear)."""
        matrix = self._matrix
        dense = np.zeros(matrix.shape[1], dtype=np.float32)
        for h, w in zip(history, weights.astype(np.float32).tolist(), strict=True):
            start, end = matrix.indptr[h], matrix.indptr[h + 1]
            dense[matrix.indices[start:end]] += np.float32(w) * matrix.data[start:end]
        return dense

    def _dot(self, pool: np.ndarray | None, dense: np.ndarray) -> np.ndarray:
        rows = self._matrix if pool is None else self._matrix[pool]
        return np.asarray(rows @ dense, dtype=np.float64)

    def _behaviour_scores(self, history: Sequence[int], pool: np.ndarray | None) -> np.ndarray:
        """The blend's order part over the pool: each signal's weighted history row (behaviour_decay) times its
        weight. Every entry of those rows is in the pool (_pool), so the pool loses nothing here."""
        out = np.zeros(len(self.items) if pool is None else pool.size)
        weights = self._weights(history, self.config.behaviour_decay)
        own = np.asarray(history, dtype=np.int64)
        for name, matrix in self._signals.behaviour():
            weight = float(getattr(self.config, name))
            if weight == 0.0:
                continue
            row = sp.csr_matrix(weights) @ matrix[list(history)]
            cols, values = row.indices.astype(np.int64), np.asarray(row.data, dtype=np.float64)
            keep = ~np.isin(cols, own)
            cols, values = cols[keep], values[keep]
            top = max(float(values.max()), 0.0) if values.size else 0.0
            if self.config.behaviour_scale != "max":
                top = 1.0
            if top > 0 and cols.size:
                out[cols if pool is None else np.searchsorted(pool, cols)] += (weight / top) * values
        return out

    def _answer(
        self, placement: Placement, history: list[int], *, excluded: set[int], limit: int, pool: np.ndarray | None
    ) -> list[ScoredItem]:
        """A product or cart answer scored on the pool (sorted item ids; None: the whole catalog)."""
        if placement is Placement.CART:
            scores, reasons = self._cart_scores(history, pool)
        else:
            scores, reasons = self._product_scores(history, pool)
        cand = np.arange(len(self.items)) if pool is None else pool
        return self._select(cand, scores, reasons, history=history, excluded=excluded, limit=limit)

    def _product_scores(self, history: list[int], pool: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        text = self._text_scores(history, self._weights(history), pool)
        co = self._behaviour_scores(history, pool)
        scores = text + co + (self._prior if pool is None else self._prior[pool])
        reasons = np.where(co > text, 1, 0)
        return scores, reasons

    def _cart_scores(self, history: list[int], pool: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Complements of the cart: bought-together first, related but not substitutes, cheaper add-ons."""
        config = self.config
        # One similarity column per cart item; the weighted text score is their weighted sum (cosine is linear).
        per_item = self._text_block(history, pool)
        text = per_item @ self._weights(history)
        co = 2.0 * self._behaviour_scores(history, pool)
        # The highest similarity to any single cart item: a second phone is a substitute, a case is not.
        nearest = np.maximum(per_item.max(axis=1), 0.0)
        substitute = np.maximum(nearest - config.substitute_similarity, 0.0)
        prior, price = (self._prior, self._price) if pool is None else (self._prior[pool], self._price[pool])
        scores = 0.5 * text - substitute + co + prior
        cart_prices = self._price[history]
        if not np.all(np.isnan(cart_prices)):
            cheaper = np.nan_to_num(price <= np.nanmax(cart_prices), nan=0.0)
            scores = scores + config.cheaper_bonus * cheaper
        reasons = np.where(co > 0.5 * text, 1, 0)
        return scores, reasons

    def _home(self, history: list[int], *, excluded: set[int], limit: int) -> list[ScoredItem]:
        """Bestsellers and trending items; a session, when there is one, only breaks ties between them.

        score = home base (popularity + trending_weight * trending; with no orders 1e-2 * hub, the catalog's most
        typical items) + 1e-3 * the session's text score. Scored on a prefix of the items by base plus the
        session's text neighbours, grown until no item outside can beat the last pick: its base is at most the
        prefix's next one and its text score at most the history's weakest stored neighbour (an exact graph)."""
        order, base = self._home_order, self._home_base
        n = len(self.items)
        size = min(4 * (limit * 4 + 20) + len(excluded), n)
        if not history:  # the base order itself: its prefix holds the answer once it offers limit picks
            while True:
                prefix = order[:size]
                picked = self._select(
                    prefix, base[prefix], self._home_reasons[prefix], history=history, excluded=excluded, limit=limit
                )
                if len(picked) >= limit or size >= n:
                    return picked
                size = min(size * 4, n)
        weights = self._weights(history)
        query = self._query_vector(history, weights)
        ids = self._neighbour_ids[history]
        cand = np.unique(np.concatenate([ids[ids >= 0].astype(np.int64), order[:size]]))
        text = self._dot(cand, query)
        bound = 0.0
        if ids.shape[1]:
            full = ids[:, -1] >= 0  # a list with room to spare holds every item with a positive cosine
            bound = float(weights @ np.where(full, np.maximum(self._neighbour_sims[history, -1], 0.0), 0.0))
        while True:
            picked = self._select(
                cand,
                base[cand] + 1e-3 * text,
                self._home_reasons[cand],
                history=history,
                excluded=excluded,
                limit=limit,
            )
            if size >= n:
                return picked
            if len(picked) >= limit:
                # Nothing outside can beat the last pick once the next base is below this (scores are rounded
                # to 6 decimals: 1e-6 keeps the test on the safe side).
                threshold = picked[-1].score - 1e-6 - 1e-3 * bound
                if base[order[size]] < threshold:
                    return picked
                # Grow to every item whose base exceeds it (a later pick can only raise it), at most 4x.
                grown = min(size * 4, max(int(np.searchsorted(self._home_descending, -threshold)) + 1, size + 1), n)
            else:
                grown = min(size * 4, n)
            new = np.setdiff1d(order[size:grown], cand)
            size = grown
            if new.size:
                merged = np.concatenate([cand, new])
                text = np.concatenate([text, self._dot(new, query)])
                by_id = np.argsort(merged, kind="stable")
                cand, text = merged[by_id], text[by_id]

    # ------------------------------------------------------------------ selection

    def _select(
        self,
        cand: np.ndarray,
        scores: np.ndarray,
        reasons: np.ndarray,
        *,
        history: list[int],
        excluded: set[int],
        limit: int,
    ) -> list[ScoredItem]:
        """The diversified top of the candidates (item ids in ascending order, so ties go to the lower id)."""
        if excluded:
            scores = np.where(
                np.isin(cand, np.fromiter(excluded, dtype=np.int64, count=len(excluded))), -np.inf, scores
            )
        pool = limit * 4 + 20
        while True:
            top = top_k_desc(scores, min(pool, len(scores)))
            top = top[np.isfinite(scores[top])]
            picked = self._diversify(cand[top], scores[top], reasons[top], history=history, limit=limit)
            if len(picked) >= limit or pool >= len(scores):
                return picked
            pool *= 4

    def _select_from(
        self,
        cand: np.ndarray,
        scores: np.ndarray,
        reasons: np.ndarray,
        *,
        history: list[int],
        excluded: set[int],
        limit: int,
    ) -> list[ScoredItem]:
        keep = np.array([c not in excluded for c in cand.tolist()], dtype=bool) if cand.size else cand.astype(bool)
        cand, scores, reasons = cand[keep], scores[keep], reasons[keep]
        order = np.lexsort((cand, -scores))
        return self._diversify(cand[order], scores[order], reasons[order], history=history, limit=limit)

    def _near_duplicates(self, i: int, threshold: float | None = None) -> set[int]:
        threshold = self.config.near_duplicate if threshold is None else threshold
        sims = self._neighbour_sims[i]
        ids = self._neighbour_ids[i]
        return set(ids[(sims >= threshold) & (ids >= 0)].tolist())

    def _diversify(
        self, cand: np.ndarray, scores: np.ndarray, reasons: np.ndarray, *, history: list[int], limit: int
    ) -> list[ScoredItem]:
        """Walk the candidates best first, skipping siblings and near-duplicates of history and earlier picks."""
        blocked_groups = {int(self._group[h]) for h in history}
        blocked: set[int] = set()
        for h in history:
            blocked |= self._near_duplicates(h, self.config.history_near_duplicate)
        picked: list[ScoredItem] = []
        items, indptr, near = self.items, self._near_indptr, self._near_ids
        groups = self._group[cand].tolist()
        for c, group, score, reason in zip(cand.tolist(), groups, scores.tolist(), reasons.tolist(), strict=True):
            if group in blocked_groups or c in blocked:
                continue
            picked.append(ScoredItem(id=items[c].id, score=round(score, 6), reason=_REASONS[reason]))
            if len(picked) >= limit:
                break
            blocked_groups.add(group)
            blocked.update(near[indptr[c] : indptr[c + 1]].tolist())
        return picked


_REASONS = (Reason.SIMILAR, Reason.BOUGHT_TOGETHER, Reason.POPULAR, Reason.TRENDING)


def blocked_by_history(
    catalog: Sequence[CatalogItem],
    cases: Iterable[Case],
    *,
    neighbour_ids: np.ndarray,
    neighbour_sims: np.ndarray,
    threshold: float,
) -> dict[int, set[int]]:
    """What serving never shows after each history item of the cases: its variants (one group) and its stored
    neighbours at threshold or above (history_near_duplicate). Item index -> item indexes."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(catalog):
        groups.setdefault(item.group_id or f"\0{item.id}", []).append(i)
    blocked: dict[int, set[int]] = {}
    for case in cases:
        for h in case.history:
            if h not in blocked:
                item = catalog[h]
                near = neighbour_ids[h][(neighbour_sims[h] >= threshold) & (neighbour_ids[h] >= 0)]
                blocked[h] = set(groups[item.group_id or f"\0{item.id}"]) | set(near.tolist())
    return blocked


def validation_folds(
    orders: Sequence, *, n: int, now: float | None, config: EngineConfig
) -> tuple[list[tuple[list[Case], Behaviour]], list[tuple[list[Case], list]], list[Case]] | None:
    """Self-tuning's validation cases on the store's history (None: fewer than tune_min_cases customers with two or
    more items): (each fold's cases with its order signals, each fold's cases with the orders those signals were
    built from, every case)."""
    fold_alpha = config.behaviour_alpha
    sequences = customer_sequences(orders)
    last_seen: dict[str, float] = {}
    for order in orders:
        if order.customer:
            last_seen[order.customer] = order.when
    eligible = [c for c, seq in sequences.items() if len(seq) >= 2]
    if len(eligible) < config.tune_min_cases:
        return None
    # The most recent customers (latest order first; ties by first appearance), as a shop's next visitors; each
    # gives up to tune_holdouts cases, its last new items in turn, each with the items before it as the history.
    position = {c: p for p, c in enumerate(eligible)}
    recent: list[str] = []
    total = 0
    for c in sorted(eligible, key=lambda c: (-last_seen[c], position[c])):
        if total >= config.tune_max_cases:
            break
        recent.append(c)
        total += min(config.tune_holdouts, len(sequences[c]) - 1)
    recent.sort(key=position.__getitem__)
    rank = {c: r for r, c in enumerate(recent)}
    # Two folds of customers (alternating): each fold's cases are scored on signals without that fold's held-out
    # items but with the other fold's full histories, so a shop whose customers buy two items each still shows the
    # validation what its customers buy together.
    folds: list[tuple[list[Case], Behaviour]] = []
    fold_orders: list[tuple[list[Case], list]] = []
    cases: list[Case] = []
    for fold in (recent[0::2], recent[1::2]):
        held_out: dict[str, set[int]] = {}
        fold_cases: list[Case] = []
        for c in fold:
            sequence = sequences[c]
            first = len(sequence) - min(config.tune_holdouts, len(sequence) - 1)
            held_out[c] = set(sequence[first:])
            for t in range(first, len(sequence)):
                history = tuple(sequence[t - 1 :: -1][: config.max_history + 1])
                fold_cases.append(Case(history=history, target=sequence[t], customer=rank[c]))
        before_orders = hold_out_last_items(orders, held_out)
        before = build_behaviour(before_orders, n=n, now=now, alpha=fold_alpha)
        folds.append((fold_cases, before))
        fold_orders.append((fold_cases, before_orders))
        cases.extend(fold_cases)
    return folds, fold_orders, cases


def _self_tune(
    *,
    catalog: Sequence[CatalogItem],
    orders: Sequence,
    now: float | None,
    matrix: sp.csr_matrix,
    neighbour_ids: np.ndarray,
    neighbour_sims: np.ndarray,
    hub: np.ndarray,
    config: EngineConfig,
) -> tuple[EngineConfig, TuningReport | None]:
    """Choose the blend on the store's own history: each recent customer's last new item held out (tuning.py)."""
    validation = validation_folds(orders, n=len(catalog), now=now, config=config)
    if validation is None:
        return config, None
    folds, fold_orders, cases = validation
    fold_alpha = config.behaviour_alpha
    blocked = blocked_by_history(
        catalog,
        cases,
        neighbour_ids=neighbour_ids,
        neighbour_sims=neighbour_sims,
        threshold=config.history_near_duplicate,
    )
    # One search per normalisation of the order signals (each needs its own signals); another normalisation than
    # the configured one wins only when its tuned blend is significantly better on the same cases.
    alphas = (config.behaviour_alpha, *(a for a in TUNING_ALPHAS if a != config.behaviour_alpha))
    best: tuple[EngineConfig, TuningReport] = (
        config,
        TuningReport(cases=0, chosen={}, default_ndcg=0.0, tuned_ndcg=0.0, evaluated=0),
    )
    for alpha in alphas:
        alpha_folds = folds
        if alpha != fold_alpha:
            alpha_folds = [
                (fold_cases, build_behaviour(before, n=len(catalog), now=now, alpha=alpha))
                for fold_cases, before in fold_orders
            ]
        tuned, report = tune(
            config=dataclasses.replace(config, behaviour_alpha=alpha),
            folds=alpha_folds,
            matrix=matrix,
            neighbour_ids=neighbour_ids,
            blocked=blocked,
            hub=hub,
        )
        report = dataclasses.replace(report, chosen={**report.chosen, "behaviour_alpha": alpha})
        if alpha == alphas[0]:
            best = (tuned, report)
        elif significantly_better(np.asarray(report.per_case), np.asarray(best[1].per_case)):
            best = (tuned, dataclasses.replace(report, default_ndcg=best[1].default_ndcg))
    return best

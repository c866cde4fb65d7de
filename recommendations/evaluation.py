"""Offline evaluation of the recommender (leave-last-out next item, full ranking), as in EVALUATION.md.

Protocol: item id = parent_asin; per user, records sorted by timestamp then file order; a repeated
(user, item) keeps the first; users with >= 2 distinct items are evaluated; the last item is the target,
the earlier ones the history (the query is the last history item, the others the session, most recent
first); the catalog is every item in the file, imported through catalog_sync's importer into a throwaway
store (rolled back) and loaded through the same loader serving uses; the whole catalog minus the history
is ranked.

What the models may see: item metadata (title, store/brand, main category, price) through the importer,
never review text. The production engine gets no co-purchase or popularity here, because the imported
store has no orders. The popularity baseline counts every interaction except the held-out targets, so the
answer never contributes to its own score (it shows how much the protocol penalises popularity: most
targets are items nobody else interacted with).

Serving (``evaluate_recs --serving``): "engine" asks the engine built from the store directly, as a web worker's
live engine answers a shopper with a session; "stored-lists" writes the store's lists with the production list
rebuild (services.lists.rebuild_store_lists, from that same engine) and answers each case through the widget's
selector (selectors.serving.get_recommendations, query SKU + viewed session, live engine off): the path of stores
above RECS_LIVE_ENGINE_MAX_PRODUCTS and of a worker whose engine is still being built. The store's merchant rules
stay at their defaults (in stock, published).

run_heldout_evaluation (``evaluate_recs --heldout``) checks that the engine's settings are not fitted to
the file: users are split in two fixed halves (CRC32 of the id); query-time settings are chosen from a small
grid on one half and reported on the other, and the other way round.
"""

import dataclasses
import json
import math
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from django.db import transaction
from django.test import override_settings
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from catalog_sync.importers.amazon import BrokenJson, iter_json_records
from catalog_sync.models import Product, customer_key
from catalog_sync.services import import_catalog_file, upsert_order_lines
from catalog_sync.types import OrderLinePayload
from merchants.models import Store
from merchants.services.stores import create_store
from recommendations.engine import CatalogItem, EngineConfig, Placement, Recommender
from recommendations.engine.core import top_k_desc
from recommendations.engine.loader import build_recommender_for_store
from recommendations.selectors.serving import get_recommendations
from recommendations.selectors.stores import ServingStore, build_serving_store
from recommendations.services.lists import rebuild_store_lists

SEED = 20240501
BASELINE_RECENCY_DECAY = 0.7
# The robustness check (run_evaluation(robustness=True)): this many resamples of the users, and the time split's
# early part (the first EARLY_SHARE of the users by their first interaction).
BOOTSTRAP_RESAMPLES = 2
EARLY_SHARE = 0.7


class Serving(StrEnum):
    ENGINE = "engine"
    STORED_LISTS = "stored-lists"


class Model(StrEnum):
    ENGINE = "engine"
    POPULARITY = "popularity"
    TFIDF = "tfidf"
    TFIDF_HISTORY = "tfidf-history"


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    timestamp: float
    position: int


@dataclass(frozen=True)
class EvalCase:
    user_id: str
    history: tuple[str, ...]  # oldest first; history[-1] is the query product
    target: str


@dataclass(frozen=True)
class TrainingOrder:
    user_id: str
    timestamp: float  # the file's timestamp (milliseconds)
    items: tuple[str, ...]


@dataclass(frozen=True)
class Robustness:
    """Whether a figure is more than one file's noise: NDCG@k on resamples of the users (drawn with replacement from
    SEED, so two models scored on one file see the same resamples: a paired check) and on a time split (the users in
    order of their first interaction: the first EARLY_SHARE of them, and the rest)."""

    bootstrap: tuple[float, ...]
    early: float
    late: float
    early_users: int
    late_users: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "bootstrap_ndcg": [round(x, 4) for x in self.bootstrap],
            "early_ndcg": round(self.early, 4),
            "late_ndcg": round(self.late, 4),
            "early_users": self.early_users,
            "late_users": self.late_users,
        }


@dataclass(frozen=True)
class EvalResult:
    k: int
    hit_rate: float
    ndcg: float
    coverage: float
    users: int
    # The engine's self-tuning report (what it chose on the training history), when it tuned.
    tuning: dict[str, Any] | None = None
    # Each case's NDCG@k, in case order (for robustness checks and paired comparisons).
    gains: tuple[float, ...] = dataclasses.field(default=(), repr=False, compare=False)
    robustness: Robustness | None = None
    # The path that answered the engine's cases (Serving); None for a baseline.
    serving: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"hit_rate@{self.k}": round(self.hit_rate, 4),
            f"ndcg@{self.k}": round(self.ndcg, 4),
            f"coverage@{self.k}": round(self.coverage, 4),
            "users": self.users,
        }
        if self.serving is not None:
            out["serving"] = self.serving
        if self.tuning is not None:
            out["tuning"] = self.tuning
        if self.robustness is not None:
            out["robustness"] = self.robustness.as_dict()
        return out


Ranker = Callable[[EvalCase], Sequence[str]]


# ---------------------------------------------------------------- protocol


def read_interactions(path: str | Path) -> list[Interaction]:
    """Read (user, parent_asin, timestamp) records in file order; records without a user or item are skipped."""
    out: list[Interaction] = []
    with open(path, encoding="utf-8") as handle:
        for position, record in iter_json_records(handle):
            if isinstance(record, BrokenJson) or not isinstance(record, dict):
                continue
            user_id = str(record.get("user_id") or "").strip()
            item_id = str(record.get("parent_asin") or record.get("asin") or "").strip()
            if not user_id or not item_id:
                continue
            timestamp = record.get("timestamp")
            out.append(
                Interaction(
                    user_id=user_id,
                    item_id=item_id,
                    timestamp=float(timestamp) if isinstance(timestamp, int | float) else math.inf,
                    position=position,
                )
            )
    return out


def build_cases(interactions: Iterable[Interaction]) -> list[EvalCase]:
    """Return one case per user with >= 2 distinct items, users in order of first appearance."""
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for interaction in interactions:
        by_user[interaction.user_id].append(interaction)
    cases: list[EvalCase] = []
    for user_id, rows in by_user.items():
        items: list[str] = []
        for row in sorted(rows, key=lambda r: (r.timestamp, r.position)):
            if row.item_id not in items:
                items.append(row.item_id)
        if len(items) >= 2:
            cases.append(EvalCase(user_id=user_id, history=tuple(items[:-1]), target=items[-1]))
    return cases


def training_counts(interactions: Iterable[Interaction], cases: Iterable[EvalCase]) -> Counter[str]:
    """Distinct users per item over every (user, item) pair except the held-out (user, target) pairs."""
    held_out = {(case.user_id, case.target) for case in cases}
    pairs = {(i.user_id, i.item_id) for i in interactions} - held_out
    return Counter(item for _, item in pairs)


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 when the target is in the top k (rank is 0-based; None means not ranked)."""
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG with one relevant item: 1 / log2(rank + 2) inside the top k, else 0."""
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def evaluate_rankings(
    cases: Sequence[EvalCase], rankings: Iterable[Sequence[str]], *, catalog_size: int, k: int
) -> EvalResult:
    """Score each case's ranked list (only its first k count) against its target."""
    hits = 0.0
    gains: list[float] = []
    shown: set[str] = set()
    for case, ranking in zip(cases, rankings, strict=True):
        top = list(ranking)[:k]
        shown.update(top)
        rank = top.index(case.target) if case.target in top else None
        hits += hit_at_k(rank, k)
        gains.append(ndcg_at_k(rank, k))
    users = len(gains)
    if not users:
        return EvalResult(k=k, hit_rate=0.0, ndcg=0.0, coverage=0.0, users=0)
    return EvalResult(
        k=k,
        hit_rate=hits / users,
        ndcg=sum(gains) / users,
        coverage=len(shown) / catalog_size if catalog_size else 0.0,
        users=users,
        gains=tuple(gains),
    )


def first_seen(interactions: Iterable[Interaction]) -> dict[str, tuple[float, int]]:
    """Each user's first interaction as (timestamp, file position): the order of the time split."""
    out: dict[str, tuple[float, int]] = {}
    for row in interactions:
        key = (row.timestamp, row.position)
        if row.user_id not in out or key < out[row.user_id]:
            out[row.user_id] = key
    return out


def robustness_check(
    cases: Sequence[EvalCase],
    gains: Sequence[float],
    first: Mapping[str, tuple[float, int]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    early_share: float = EARLY_SHARE,
    seed: int = SEED,
) -> Robustness:
    """NDCG on `resamples` bootstrap resamples of the cases and on the time split by the users' first interaction."""
    values = np.asarray(gains, dtype=np.float64)
    n = values.size
    if n != len(cases):
        raise ValueError("one gain per case")
    rng = np.random.default_rng(seed)
    bootstrap = tuple(float(values[rng.integers(0, n, n)].mean()) if n else 0.0 for _ in range(resamples))
    order = sorted(range(n), key=lambda i: (*first.get(cases[i].user_id, (math.inf, 0)), i))
    cut = round(early_share * n)
    early, late = values[order[:cut]], values[order[cut:]]
    return Robustness(
        bootstrap=bootstrap,
        early=float(early.mean()) if early.size else 0.0,
        late=float(late.mean()) if late.size else 0.0,
        early_users=int(early.size),
        late_users=int(late.size),
    )


# ---------------------------------------------------------------- models


def engine_ranker(recommender: Recommender, *, k: int) -> Ranker:
    """The production engine, product placement: query = last history item, session = the rest."""

    def rank(case: EvalCase) -> list[str]:
        results = recommender.recommend(
            query_id=case.history[-1],
            placement=Placement.PRODUCT,
            session_ids=case.history[-2::-1],
            exclude_ids=case.history,
            limit=k,
        )
        return [r.id for r in results]

    return rank


def stored_lists_ranker(store: ServingStore, *, skus: Mapping[str, str], k: int) -> Ranker:
    """The widget's selector on stored lists, product placement: the query's SKU, the rest of the history as the
    viewed session (most recent first); the answer's SKUs mapped back to item ids (skus: item id -> SKU)."""
    ids = {sku: item_id for item_id, sku in skus.items()}

    def rank(case: EvalCase) -> list[str]:
        answer = get_recommendations(
            store=store,
            placement=Placement.PRODUCT,
            sku=skus.get(case.history[-1], case.history[-1]),
            viewed=[skus.get(x, x) for x in case.history[-2::-1]],
            limit=k,
        )
        return [ids.get(item.sku, item.sku) for item in answer.items]

    return rank


def popularity_ranker(items: Sequence[CatalogItem], counts: Counter[str], *, k: int) -> Ranker:
    """Most interacted-with items (training interactions only), ties by catalog order."""
    scores = np.array([float(counts.get(item.id, 0)) for item in items])
    order = [items[i].id for i in top_k_desc(scores, len(items))]

    def rank(case: EvalCase) -> list[str]:
        history = set(case.history)
        out: list[str] = []
        for item_id in order:
            if item_id not in history:
                out.append(item_id)
                if len(out) == k:
                    break
        return out

    return rank


def tfidf_ranker(items: Sequence[CatalogItem], *, k: int, history_decay: float | None) -> Ranker:
    """TF-IDF over title + brand (scikit-learn defaults), cosine to the query product, or (history_decay set)
    to the whole history weighted history_decay**age, newest first."""
    ids = [item.id for item in items]
    index = {item_id: i for i, item_id in enumerate(ids)}
    matrix = sp.csr_matrix(normalize(TfidfVectorizer().fit_transform([f"{i.title} {i.vendor}" for i in items])))

    def rank(case: EvalCase) -> list[str]:
        known = [index[x] for x in case.history if x in index]
        if not known:
            return []
        if history_decay is None:
            rows, weights = [known[-1]], np.ones(1)
        else:
            rows = known
            weights = history_decay ** np.arange(len(known) - 1, -1, -1, dtype=np.float64)
        query = sp.csr_matrix(weights) @ matrix[rows]
        scores = np.asarray((matrix @ query.T).todense()).ravel()
        scores[known] = -np.inf
        return [ids[i] for i in top_k_desc(scores, k) if np.isfinite(scores[i])]

    return rank


# ---------------------------------------------------------------- the run


class _Rollback(Exception):
    pass


def training_orders(interactions: Iterable[Interaction], cases: Iterable[EvalCase]) -> list[TrainingOrder]:
    """The training part as the store's orders: one per (user, timestamp), items in file order, without the
    evaluated users' targets; a user's repeat of an item they bought before is dropped (as build_cases does)."""
    held_out = {(case.user_id, case.target) for case in cases}
    seen: set[tuple[str, str]] = set()
    orders: dict[tuple[str, float], list[str]] = {}
    for row in sorted(interactions, key=lambda r: (r.user_id, r.timestamp, r.position)):
        pair = (row.user_id, row.item_id)
        if pair in seen or pair in held_out or not math.isfinite(row.timestamp):
            seen.add(pair)
            continue
        seen.add(pair)
        orders.setdefault((row.user_id, row.timestamp), []).append(row.item_id)
    first: dict[tuple[str, float], int] = {}
    for row in interactions:
        first.setdefault((row.user_id, row.timestamp), row.position)
    ordered = sorted(orders.items(), key=lambda kv: (kv[0][1], first[kv[0]]))
    return [TrainingOrder(user_id=u, timestamp=t, items=tuple(items)) for (u, t), items in ordered]


def _write_orders(*, store: Store, orders: Sequence[TrainingOrder]) -> datetime | None:
    """Write the orders through the order sync's own write path (upsert_order_lines); return the latest time."""
    payloads = [
        OrderLinePayload(
            order_id=f"eval-{n}",
            line_id=str(line),
            ordered_at=datetime.fromtimestamp(order.timestamp / 1000.0, tz=UTC),
            product_external_id=item_id,
            customer_key=customer_key(store_id=store.id, customer_id=order.user_id),
        )
        for n, order in enumerate(orders)
        for line, item_id in enumerate(order.items)
    ]
    upsert_order_lines(store=store, payloads=payloads)
    return max((p.ordered_at for p in payloads), default=None)


@contextmanager
def imported_store(
    path: str | Path, *, config: EngineConfig | None = None, orders: Sequence[TrainingOrder] = ()
) -> Iterator[tuple[Store, Recommender]]:
    """Import the file into a throwaway store, write orders as its order history, build the engine from its Product
    and OrderLine rows, as serving does (trending aged from the last order); everything is rolled back on exit."""
    try:
        with transaction.atomic():
            store = create_store(platform="custom", domain=f"evaluate-recs-{uuid.uuid4().hex[:12]}.invalid")
            import_catalog_file(store=store, path=path, fmt="amazon")
            latest = _write_orders(store=store, orders=orders)
            yield store, build_recommender_for_store(store=store, config=config, now=latest)
            raise _Rollback
    except _Rollback:
        pass


def load_catalog_through_import(
    path: str | Path, *, config: EngineConfig | None = None, orders: Sequence[TrainingOrder] = ()
) -> tuple[Recommender, list[CatalogItem]]:
    """The engine built by imported_store (the store itself is rolled back) and its catalog."""
    with imported_store(path, config=config, orders=orders) as (_, recommender):
        pass
    return recommender, list(recommender.items)


def stored_lists_rankings(
    store: Store, recommender: Recommender, cases: Iterable[EvalCase], *, k: int
) -> list[Sequence[str]]:
    """Each case answered through the widget's selector after the production rebuild wrote the store's lists from
    recommender; the live engine is off, so a session is answered by merging stored lists (selectors.serving)."""
    rebuild_store_lists(store=store, engine=recommender)
    skus = {x: sku or x for x, sku in Product.objects.filter(store=store).values_list("external_id", "sku")}
    ranker = stored_lists_ranker(build_serving_store(store=store), skus=skus, k=k)
    with override_settings(RECS_LIVE_ENGINE_MAX_PRODUCTS=0):  # no background build of a live engine
        return [ranker(case) for case in cases]


def _progress(cases: Sequence[EvalCase], stream: IO[str] | None) -> Iterator[EvalCase]:
    if stream is None:
        yield from cases
        return
    from tqdm import tqdm

    yield from tqdm(cases, desc="evaluate_recs", unit="user", file=stream, mininterval=0.5)


def run_evaluation(
    *,
    path: str | Path,
    k: int = 10,
    model: str = Model.ENGINE,
    progress: IO[str] | None = None,
    config: EngineConfig | None = None,
    robustness: bool = False,
    serving: str = Serving.ENGINE,
) -> EvalResult:
    """Evaluate a model on an Amazon Reviews interactions file; same input, same numbers.

    config: engine settings (default: EngineConfig()); only the engine model uses them. robustness: also report
    the bootstrap and time-split figures (robustness_check). serving: the path that answers the engine's cases
    (Serving; the baselines have none).
    """
    np.random.seed(SEED)  # nothing here draws random numbers; pinned so any future sampling stays reproducible
    model = Model(model)
    serving = Serving(serving)
    if serving is Serving.STORED_LISTS and model is not Model.ENGINE:
        raise ValueError("only the engine is served from stored lists")
    interactions = read_interactions(path)
    cases = build_cases(interactions)
    orders = training_orders(interactions, cases)
    rankings: Iterable[Sequence[str]]
    if serving is Serving.STORED_LISTS:
        with imported_store(path, config=config, orders=orders) as (store, recommender):
            rankings = stored_lists_rankings(store, recommender, _progress(cases, progress), k=k)
        items = list(recommender.items)
    else:
        recommender, items = load_catalog_through_import(path, config=config, orders=orders)
        ranker: Ranker
        if model is Model.ENGINE:
            ranker = engine_ranker(recommender, k=k)
        elif model is Model.POPULARITY:
            ranker = popularity_ranker(items, training_counts(interactions, cases), k=k)
        elif model is Model.TFIDF:
            ranker = tfidf_ranker(items, k=k, history_decay=None)
        else:
            ranker = tfidf_ranker(items, k=k, history_decay=BASELINE_RECENCY_DECAY)
        rankings = (ranker(case) for case in _progress(cases, progress))
    result = evaluate_rankings(cases, rankings, catalog_size=len(items), k=k)
    if model is Model.ENGINE:
        result = dataclasses.replace(result, serving=str(serving))
    if model is Model.ENGINE and recommender.tuning is not None:
        result = dataclasses.replace(result, tuning=recommender.tuning.as_dict())
    if robustness:
        result = dataclasses.replace(result, robustness=robustness_check(cases, result.gains, first_seen(interactions)))
    return result


# The query-time settings the held-out protocol chooses between (on the tuning half of the users only).
HELDOUT_GRID: tuple[dict[str, Any], ...] = tuple(
    {"recency_decay": decay, "hub_penalty": hub} for decay in (0.5, 0.7, 0.9) for hub in (0.1, 0.3, 0.5)
)


def user_fold(user_id: str) -> int:
    """A fixed 2-way split of the users (CRC32 parity of the id): the same user is always in the same half."""
    return zlib.crc32(user_id.encode("utf-8")) & 1


@dataclass(frozen=True)
class HeldOutResult:
    """Each half of the users scored with the settings chosen on the other half, and the pooled result."""

    pooled: EvalResult
    folds: tuple[EvalResult, EvalResult]
    chosen: tuple[dict[str, Any], dict[str, Any]]
    default: EvalResult  # EngineConfig() on all users, for comparison

    def as_dict(self) -> dict[str, Any]:
        return {
            "heldout": self.pooled.as_dict(),
            "folds": [{"tuned_on": 1 - i, "chosen": self.chosen[1 - i], **self.folds[i].as_dict()} for i in range(2)],
            "default": self.default.as_dict(),
        }


def run_heldout_evaluation(
    *,
    path: str | Path,
    k: int = 10,
    grid: Sequence[dict[str, Any]] = HELDOUT_GRID,
    config: EngineConfig | None = None,
) -> HeldOutResult:
    """Two-fold held-out protocol: choose the engine's query-time settings from grid on one half of the users
    (best NDCG@k there), report them on the other half, and the other way round. No half is ever scored
    with settings chosen on its own targets."""
    base = config or EngineConfig()
    interactions = read_interactions(path)
    cases = build_cases(interactions)
    recommender, items = load_catalog_through_import(path, config=base, orders=training_orders(interactions, cases))
    halves = [[c for c in cases if user_fold(c.user_id) == f] for f in (0, 1)]

    def score(settings: dict[str, Any], subset: Sequence[EvalCase]) -> EvalResult:
        engine = recommender.with_config(dataclasses.replace(base, **settings))
        ranker = engine_ranker(engine, k=k)
        return evaluate_rankings(subset, (ranker(c) for c in subset), catalog_size=len(items), k=k)

    chosen: list[dict[str, Any]] = []
    for tune in halves:
        # Highest NDCG on the tuning half; ties go to the earlier grid entry (deterministic).
        best = max(range(len(grid)), key=lambda i: (score(grid[i], tune).ndcg, -i))
        chosen.append(dict(grid[best]))
    fold_results = (score(chosen[1], halves[0]), score(chosen[0], halves[1]))
    rankings: dict[str, list[str]] = {}
    for f, subset in enumerate(halves):
        ranker = engine_ranker(recommender.with_config(dataclasses.replace(base, **chosen[1 - f])), k=k)
        for case in subset:
            rankings[case.user_id] = list(ranker(case))
    pooled = evaluate_rankings(cases, (rankings[c.user_id] for c in cases), catalog_size=len(items), k=k)
    default_ranker = engine_ranker(recommender, k=k)
    default = evaluate_rankings(cases, (default_ranker(c) for c in cases), catalog_size=len(items), k=k)
    return HeldOutResult(pooled=pooled, folds=fold_results, chosen=(chosen[0], chosen[1]), default=default)


def result_json(result: EvalResult) -> str:
    return json.dumps(result.as_dict())


def write_training_orders(*, store: Store, orders: Sequence[TrainingOrder]) -> datetime | None:
    """The training part as `store`'s order history, as `load_catalog_through_import` writes it (for the network
    path's evaluation, `subnet.network_evaluation`, which keeps the store while it asks the validator)."""
    return _write_orders(store=store, orders=orders)

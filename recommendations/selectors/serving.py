"""Reads of the widget's answer: stored lists served through the merchant's rules.

The hot path (`get_recommendations` for a known SKU, no session) costs two indexed queries: the stored lists of
(store, query product, placement) joined to the product by SKU, then the products those lists name (only as
many as the answer needs), checked against the merchant's rules in Python. It never builds an engine: a
personalised answer uses the process's live engine when one is built (recommendations.process_state).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog_sync.models import Product, Variant
from recommendations import process_state
from recommendations.engine import CatalogItem, EngineConfig, MerchantRules, ScoredItem, apply_merchant_rules
from recommendations.engine.core import Reason
from recommendations.experiments import team_draft_interleave
from recommendations.models import Arm, Placement, RecommendationList, Source
from recommendations.selectors.stores import ServingStore, StoreRules, get_external_ids_for_skus, normalise_category


@dataclass(frozen=True)
class ServedItem:
    sku: str
    name: str
    price: str | None
    url: str
    image: str
    # The list the item came from, so a click on its card credits that list (None/"": a pinned item).
    rec_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Recommendations:
    """The widget's answer; rec_id names the stored list version the items came from (None: nothing stored)."""

    rec_id: str | None
    source: str
    placement: str
    items: tuple[ServedItem, ...]
    personalised: bool = False


@dataclass(frozen=True)
class _StoredList:
    product_id: int | None
    query_id: str
    placement: str
    source: str
    rec_id: str
    items: list[Any]
    computed_at: datetime

    @property
    def ids(self) -> list[str]:
        return [str(entry[0]) for entry in self.items if entry]


@dataclass(frozen=True)
class _Query:
    external_id: str
    price: Decimal | None


@dataclass
class _Chain:
    """Ordered candidate ids, each remembering the list (source, rec_id) it came from."""

    ids: list[str] = field(default_factory=list)
    origin: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    home_added: bool = False

    def extend(self, ids: Iterable[str], *, source: str, rec_id: str | None) -> None:
        for item_id in ids:
            if item_id not in self.origin:
                self.origin[item_id] = (source, rec_id)
                self.ids.append(item_id)


# The session recency decay of the stored-list blend: the engine's a-priori recency_decay.
RECENCY_DECAY = EngineConfig.recency_decay

_LIST_FIELDS = ("product_id", "query_id", "placement", "source", "rec_id", "items", "computed_at")
_PRODUCT_FIELDS = ("external_id", "sku", "title", "price", "url", "image_url", "in_stock", "is_published", "status")


def get_recommendations(
    *,
    store: ServingStore,
    placement: str,
    sku: str = "",
    limit: int = 4,
    cart: Sequence[str] = (),
    viewed: Sequence[str] = (),
    arm: str | None = None,
    seed: str = "",
) -> Recommendations:
    """Answer the widget from stored lists: the fresh network list first, then the local one, then the home list.

    An experiment arm changes that: "local" leaves the network list out, "holdout" answers nothing, "interleave"
    answers the network and local answers merged by team draft (coin seeded by `seed`), each item with its list.

    Merchant rules are applied to the live product rows, so a product that went out of stock after its list was
    stored is skipped and the answer is topped up from further candidates. An unknown SKU gets the home list.
    With a session (cart / viewed SKUs, most recent first), the process's in-memory engine answers when one is
    built (see process_state.get_live_engine); otherwise the stored lists of the query and session products are blended
    as the engine blends its session (_weighted_merge).
    """
    personalised = bool(cart or viewed)
    if arm == Arm.HOLDOUT:
        return Recommendations(rec_id=None, source=Source.LOCAL, placement=placement, items=(), personalised=True)
    if arm == Arm.INTERLEAVE:
        return _interleaved(store=store, placement=placement, sku=sku, limit=limit, cart=cart, viewed=viewed, seed=seed)
    plan = _plan(store=store, placement=placement, sku=sku, limit=limit, cart=cart, viewed=viewed, arm=arm)
    items, contributors = _select(store=store, chain=plan.chain, limit=limit, never=plan.never, query=plan.query)
    rec_id, source = _attribution(chain=plan.chain, contributors=contributors, fallback=plan.network or plan.local)
    return Recommendations(
        rec_id=rec_id, source=source, placement=placement, items=tuple(items), personalised=personalised
    )


@dataclass
class _Plan:
    """What an answer is chosen from: the query product, the lists read, and the ordered candidate chain."""

    query: _Query | None
    lists: list[_StoredList]
    network: _StoredList | None
    local: _StoredList | None
    chain: _Chain
    never: set[str]


def _plan(
    *,
    store: ServingStore,
    placement: str,
    sku: str,
    limit: int,
    cart: Sequence[str] = (),
    viewed: Sequence[str] = (),
    arm: str | None = None,
) -> _Plan:
    personalised = bool(cart or viewed)
    query: _Query | None = None
    lists: list[_StoredList] = []
    if placement == Placement.HOME:
        lists = _home_lists(store_id=store.id)
    elif sku:
        query, lists = _lists_for_sku(store_id=store.id, sku=sku, placement=placement)
    session_ids: list[str] = []
    if personalised:
        ordered = [*cart, *viewed] if placement != Placement.PRODUCT else [*viewed, *cart]
        session_ids = [x for x in dict.fromkeys(get_external_ids_for_skus(store_id=store.id, skus=ordered)) if x]

    chain = _Chain()
    network = None if arm == Arm.LOCAL else _pick(lists, source=Source.NETWORK, placement=placement, fresh_only=True)
    local = _pick(lists, source=Source.LOCAL, placement=placement)
    if local is None and placement == Placement.CART:
        local = _pick(lists, source=Source.LOCAL, placement=Placement.PRODUCT)
    if placement == Placement.HOME:
        chain.home_added = True
    if network is not None:
        chain.extend(network.ids, source=Source.NETWORK, rec_id=network.rec_id)
    window = _window(limit=limit, rules=store.rules)
    engine = process_state.get_live_engine(store_id=store.id) if session_ids else None
    if engine is not None:
        results = engine.recommend(
            query_id=query.external_id if query else None,
            placement=placement,
            session_ids=session_ids,
            limit=window + len(session_ids),
        )
        chain.extend((r.id for r in results), source=Source.LOCAL, rec_id=local.rec_id if local else None)
    elif session_ids and placement != Placement.HOME:
        session_lists = _session_lists(store_id=store.id, session_ids=session_ids, placement=placement)
        for item_id, rec_id in _weighted_merge([local, *session_lists] if local is not None else session_lists):
            chain.extend((item_id,), source=Source.LOCAL, rec_id=rec_id)
    elif local is not None:
        chain.extend(local.ids, source=Source.LOCAL, rec_id=local.rec_id)

    never = {*session_ids, *([query.external_id] if query else [])}
    return _Plan(query=query, lists=lists, network=network, local=local, chain=chain, never=never)


def _interleaved(
    *, store: ServingStore, placement: str, sku: str, limit: int, cart: Sequence[str], viewed: Sequence[str], seed: str
) -> Recommendations:
    """Team-draft interleaving of the network answer (without local top-up) and the local one (arm "interleave")."""
    both = get_recommendations(store=store, placement=placement, sku=sku, limit=limit, cart=cart, viewed=viewed)
    local = get_recommendations(
        store=store, placement=placement, sku=sku, limit=limit, cart=cart, viewed=viewed, arm=Arm.LOCAL
    )
    network = [item for item in both.items if item.source == Source.NETWORK]
    picks = team_draft_interleave(network=network, local=list(local.items), limit=limit, seed=seed, key=lambda i: i.sku)
    items = tuple(pick.item for pick in picks)
    first = items[0] if items else None
    return Recommendations(
        rec_id=first.rec_id if first else local.rec_id,
        source=first.source if first and first.source else local.source,
        placement=placement,
        items=items,
        personalised=True,  # the coin is the visitor's: never shared through a cache
    )


def _window(*, limit: int, rules: StoreRules) -> int:
    # Enough candidates for rules to drop a few without a second products query in the common case.
    return limit + 4 + len(rules.pinned_ids)


def _stored(row: Sequence[Any]) -> _StoredList:
    return _StoredList(*row[: len(_LIST_FIELDS)])


def _lists_for_sku(*, store_id: int, sku: str, placement: str) -> tuple[_Query | None, list[_StoredList]]:
    placements = [Placement.PRODUCT] if placement == Placement.PRODUCT else [Placement.CART, Placement.PRODUCT]
    rows = _fetch_list_rows(store_id=store_id, sku=sku, placements=placements)
    if rows:
        first = min(row[0] for row in rows)  # several products may share a SKU: the oldest one answers
        rows = [row for row in rows if row[0] == first]
        return _Query(external_id=rows[0][1], price=rows[0][-1]), [_stored(row) for row in rows]
    product = (
        Product.objects.filter(store_id=store_id)
        .filter(Q(sku=sku) | Q(external_id=sku))
        .order_by("id")
        .values_list("id", "external_id", "price")
        .first()
    )
    if product is None:
        product = (
            Variant.objects.filter(product__store_id=store_id, sku=sku)
            .order_by("id")
            .values_list("product_id", "product__external_id", "product__price")
            .first()
        )
    if product is None:
        return None, _home_lists(store_id=store_id)  # unknown SKU: the store's home list
    stored = [
        _stored(row)
        for row in RecommendationList.objects.filter(
            store_id=store_id, product_id=product[0], placement__in=placements
        ).values_list(*_LIST_FIELDS)
    ]
    return _Query(external_id=product[1], price=product[2]), stored


# The two queries of the hot path, in SQL: building them through the ORM costs more than running them (about
# 0.3 ms each of a 1 ms answer, measured at 10k products), and they run on every request that misses the answer
# cache. Identifiers come from the models' metadata and every value is a parameter.
_CENT = Decimal("0.01")


def _fetch_list_rows(*, store_id: int, sku: str, placements: Sequence[str]) -> list[tuple[Any, ...]]:
    """The stored lists of the store's products with this SKU, plus each query product's price."""
    quote = connection.ops.quote_name
    lists, products = quote(RecommendationList._meta.db_table), quote(Product._meta.db_table)
    marks = ", ".join(["%s"] * len(placements))
    # The store is scoped through the subquery on (store_id, sku); filtering the lists by store_id instead lets
    # SQLite walk the store's whole (store, placement) index: 27 ms at 10k products instead of well under 1 ms.
    sql = (
        f"SELECT l.product_id, l.query_id, l.placement, l.source, l.rec_id, l.items, l.computed_at, p.price "  # noqa: S608
        f"FROM {lists} l JOIN {products} p ON p.id = l.product_id "
        f"WHERE l.product_id IN (SELECT id FROM {products} WHERE store_id = %s AND sku = %s) "
        f"AND l.placement IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [store_id, sku, *placements])
        raw = cursor.fetchall()
    return [(*row[:5], _json(row[5]), _aware(row[6]), _decimal(row[7])) for row in raw]


def _fetch_product_rows(*, store_id: int, external_ids: Sequence[str], taxonomy: bool) -> list[tuple[Any, ...]]:
    """The serving fields of the store's products with these external ids (tags and category when asked)."""
    products = connection.ops.quote_name(Product._meta.db_table)
    columns = ", ".join((*_PRODUCT_FIELDS, "tags", "category_path") if taxonomy else _PRODUCT_FIELDS)
    marks = ", ".join(["%s"] * len(external_ids))
    sql = f"SELECT {columns} FROM {products} WHERE store_id = %s AND external_id IN ({marks})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [store_id, *external_ids])
        raw = cursor.fetchall()
    return [
        (row[0], row[1], row[2], _decimal(row[3]), row[4], row[5], bool(row[6]), bool(row[7]), row[8])
        + ((_json(row[9]), row[10]) if taxonomy else ())
        for row in raw
    ]


def _fetch_session_lists(*, store_id: int, session_ids: Sequence[str], placements: Sequence[str]) -> list[_StoredList]:
    """The store's local lists of these query products in these placements (by the (store, placement, source,
    query_id) index)."""
    lists = connection.ops.quote_name(RecommendationList._meta.db_table)
    sql = (
        f"SELECT {', '.join(_LIST_FIELDS)} FROM {lists} "  # noqa: S608
        f"WHERE store_id = %s AND source = %s AND placement IN ({', '.join(['%s'] * len(placements))}) "
        f"AND query_id IN ({', '.join(['%s'] * len(session_ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [store_id, Source.LOCAL, *placements, *session_ids])
        raw = cursor.fetchall()
    return [_stored((*row[:5], _json(row[5]), _aware(row[6]))) for row in raw]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _aware(value: Any) -> datetime:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        raise ValueError(f"unreadable datetime {value!r}")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(_CENT)  # SQLite hands back an int or float for a decimal column


def _home_lists(*, store_id: int) -> list[_StoredList]:
    rows = RecommendationList.objects.filter(store_id=store_id, query_id="", placement=Placement.HOME)
    return [_stored(row) for row in rows.values_list(*_LIST_FIELDS)]


def _pick(lists: Sequence[_StoredList], *, source: str, placement: str, fresh_only: bool = False) -> _StoredList | None:
    """The list of the placement from source; the home list stands in when only home lists were read."""
    for wanted in (placement, Placement.HOME):
        for stored in lists:
            if stored.source == source and stored.placement == wanted and (not fresh_only or _is_fresh(stored)):
                return stored
    return None


def _is_fresh(stored: _StoredList) -> bool:
    return is_network_list_fresh(computed_at=stored.computed_at)


def is_network_list_fresh(*, computed_at: datetime) -> bool:
    """True while a network list computed then may still be served (RECS_NETWORK_MAX_AGE_SECONDS)."""
    max_age = timedelta(seconds=int(settings.RECS_NETWORK_MAX_AGE_SECONDS))
    return computed_at >= timezone.now() - max_age


def _session_lists(*, store_id: int, session_ids: Sequence[str], placement: str) -> list[_StoredList]:
    """The session products' local lists (a cart answer prefers their cart lists), most recent product first."""
    placements: list[str] = [Placement.CART, Placement.PRODUCT] if placement == Placement.CART else [Placement.PRODUCT]
    best: dict[str, _StoredList] = {}
    for stored in _fetch_session_lists(store_id=store_id, session_ids=session_ids, placements=placements):
        current = best.get(stored.query_id)
        if current is None or placements.index(stored.placement) < placements.index(current.placement):
            best[stored.query_id] = stored
    return [best[x] for x in session_ids if x in best]


def _weighted_merge(lists: Sequence[_StoredList]) -> list[tuple[str, str | None]]:
    """The engine's session blend over stored lists: score(c) = sum_p w_p * score_p(c), w_p = decay**p normalised
    (p = 0 the query's list, then the session's most recent first), an item absent from a list adding nothing; best
    first (ties by the earlier list, then its position), each item credited to the list that gave it most."""
    total = sum(RECENCY_DECAY**p for p in range(len(lists)))
    scores: dict[str, float] = {}
    credit: dict[str, tuple[float, str | None]] = {}
    for position, stored in enumerate(lists):
        weight = RECENCY_DECAY**position / total
        for entry in stored.items:
            if not entry:
                continue
            item_id = str(entry[0])
            part = weight * _entry_score(entry)
            scores[item_id] = scores.get(item_id, 0.0) + part
            if item_id not in credit or part > credit[item_id][0]:
                credit[item_id] = (part, stored.rec_id)
    order = sorted(scores, key=lambda x: -scores[x])  # stable: the first seen wins a tie
    return [(x, credit[x][1]) for x in order]


def _entry_score(entry: Sequence[Any]) -> float:
    try:
        return float(entry[1]) if len(entry) > 1 else 0.0
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class _Row:
    external_id: str
    sku: str
    title: str
    price: Decimal | None
    url: str
    image_url: str
    in_stock: bool
    is_published: bool
    status: str
    tags: Any = None
    category_path: str = ""


def _select(
    *, store: ServingStore, chain: _Chain, limit: int, never: set[str], query: _Query | None
) -> tuple[list[ServedItem], list[str]]:
    """Apply the merchant rules to the chain's candidates, fetching products window by window; bounded queries."""
    rules = store.rules
    pinned = [x for x in rules.pinned_ids if x not in never]
    rows: dict[str, _Row] = {}
    catalog: dict[str, CatalogItem] = {}
    excluded: set[str] = set(rules.exclude_ids)

    def fetch(ids: Iterable[str]) -> None:
        wanted = [x for x in dict.fromkeys(ids) if x not in rows and x not in never]
        if not wanted:
            return
        for values in _fetch_product_rows(store_id=store.id, external_ids=wanted, taxonomy=rules.needs_taxonomy):
            row = _Row(*values)
            rows[row.external_id] = row
            catalog[row.external_id] = CatalogItem(
                id=row.external_id,
                price=None if row.price is None else float(row.price),
                in_stock=row.in_stock,
                is_published=row.is_published and row.status == Product.Status.ACTIVE,
            )
            if rules.needs_taxonomy and _taxonomy_reason(row, rules):
                excluded.add(row.external_id)

    merchant_rules = _merchant_rules(rules=rules, query=query, excluded=excluded, pinned=pinned)

    def apply(upto: int) -> list[ScoredItem]:
        candidates = [ScoredItem(id=x, score=0.0, reason=Reason.SIMILAR) for x in chain.ids[:upto]]
        current = replace(merchant_rules, exclude_ids=frozenset(excluded))
        return apply_merchant_rules(candidates, lookup=catalog.get, rules=current, limit=limit, never_ids=never)

    window = _window(limit=limit, rules=rules)
    fetch([*pinned, *chain.ids[:window]])
    picked = apply(window)
    if len(picked) < limit and len(chain.ids) > window:
        fetch(chain.ids[window:])
        picked = apply(len(chain.ids))
    if len(picked) < limit and not chain.home_added:
        chain.home_added = True
        home = _pick(_home_lists(store_id=store.id), source=Source.LOCAL, placement=Placement.HOME)
        if home is not None:
            before = len(chain.ids)
            chain.extend(home.ids, source=Source.LOCAL, rec_id=home.rec_id)
            if len(chain.ids) > before:
                fetch(chain.ids[before:])
                picked = apply(len(chain.ids))
    items = [_served(rows[p.id], chain.origin.get(p.id)) for p in picked]
    contributors = [p.id for p in picked if p.reason != Reason.PINNED]
    return items, contributors


def _merchant_rules(
    *, rules: StoreRules, query: _Query | None, excluded: Iterable[str], pinned: Sequence[str]
) -> MerchantRules:
    """The engine's rules for one answer: price bounds are ratios of the query product's price."""
    query_price = float(query.price) if query is not None and query.price is not None else None
    return MerchantRules(
        require_in_stock=rules.in_stock_only,
        require_published=rules.published_only,
        exclude_ids=frozenset(excluded),
        min_price=None if query_price is None or rules.price_min_ratio is None else query_price * rules.price_min_ratio,
        max_price=None if query_price is None or rules.price_max_ratio is None else query_price * rules.price_max_ratio,
        pinned_ids=tuple(pinned),
    )


EXCLUDED_BY_TAG = "excluded_tag"
EXCLUDED_BY_CATEGORY = "excluded_category"


def taxonomy_rejection(*, tags: Any, category_path: str, rules: StoreRules) -> str | None:
    """EXCLUDED_BY_TAG / EXCLUDED_BY_CATEGORY when the store's tag or category exclusions remove a product."""
    tag_list = tags if isinstance(tags, list) else []
    if rules.exclude_tags and any(str(tag).strip().lower() in rules.exclude_tags for tag in tag_list):
        return EXCLUDED_BY_TAG
    if rules.exclude_categories and category_path:
        path = normalise_category(category_path)
        if any(path == prefix or path.startswith(prefix + " > ") for prefix in rules.exclude_categories):
            return EXCLUDED_BY_CATEGORY
    return None


def _taxonomy_reason(row: _Row, rules: StoreRules) -> str | None:
    return taxonomy_rejection(tags=row.tags, category_path=row.category_path, rules=rules)


def _served(row: _Row, origin: tuple[str, str | None] | None) -> ServedItem:
    return ServedItem(
        sku=row.sku or row.external_id,
        name=row.title,
        price=None if row.price is None else str(row.price),
        url=row.url,
        image=row.image_url,
        rec_id=origin[1] if origin else None,
        source=origin[0] if origin else "",
    )


def _attribution(*, chain: _Chain, contributors: Sequence[str], fallback: _StoredList | None) -> tuple[str | None, str]:
    """The answer's (rec_id, source): the list of its first non-pinned item, else the primary list."""
    for item_id in contributors:
        source, rec_id = chain.origin[item_id]
        if rec_id is not None:
            return rec_id, source
    for item_id in chain.ids:
        source, rec_id = chain.origin[item_id]
        if rec_id is not None:
            return rec_id, source
    if fallback is not None:
        return fallback.rec_id, fallback.source
    return None, Source.LOCAL

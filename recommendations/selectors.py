"""Reads of the recommendations app: the widget's answer from stored lists, store serving config, rec_id lookup.

The hot path (`get_recommendations` for a known SKU, no session) costs two indexed queries: the stored lists of
(store, query product, placement) joined to the product by SKU, then the products those lists name (only as
many as the answer needs), checked against the merchant's rules in Python. It never builds an engine.

Merchant rules live in Store.settings["recommendations"] (every key optional):

    in_stock_only: bool = true         only products in stock
    published_only: bool = true        only published, active products
    exclude_skus: [str] = []           never shown (SKUs or product external ids)
    exclude_tags: [str] = []           products with any of these tags are never shown (case-insensitive)
    exclude_categories: [str] = []     category paths ("Apparel > Socks") whose products are never shown,
                                       matched as a case-insensitive prefix of the product's category path
    price_min_ratio: float | null      shown products cost at least ratio x the query product's price
    price_max_ratio: float | null      ... and at most ratio x it (no bound when the query has no price)
    pinned_skus: [str] = []            shown first, in this order, when they pass the other rules

and Store.settings["allowed_origins"]: extra origins ("https://www.shop.com") or hosts allowed by CORS,
besides the store's domain and its www. form.
"""

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog_sync.models import Product, Variant
from merchants.models import Store
from recommendations.engine import CatalogItem, MerchantRules, Recommender, ScoredItem, apply_merchant_rules
from recommendations.engine.core import Reason
from recommendations.engine.loader import build_recommender_for_store
from recommendations.models import NetworkAnswer, Placement, RecommendationList, Source, rec_id_prefix

logger = logging.getLogger(__name__)

SERVING_STATUSES = (Store.Status.ACTIVE, Store.Status.PENDING, Store.Status.NEEDS_REAUTH)


# --- Store serving config -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreRules:
    """A store's merchant rules with SKUs already mapped to product external ids."""

    in_stock_only: bool = True
    published_only: bool = True
    exclude_ids: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    exclude_categories: tuple[str, ...] = ()
    price_min_ratio: float | None = None
    price_max_ratio: float | None = None
    pinned_ids: tuple[str, ...] = ()

    @property
    def needs_taxonomy(self) -> bool:
        return bool(self.exclude_tags or self.exclude_categories)


@dataclass(frozen=True)
class ServingStore:
    """What serving needs to know about a store, cached per web process for RECS_STORE_CACHE_SECONDS."""

    id: int
    site_key: str
    allowed_hosts: frozenset[str]
    allowed_origins: frozenset[str]
    rules: StoreRules = field(default_factory=StoreRules)


_store_cache: dict[str, tuple[float, ServingStore | None]] = {}
_STORE_CACHE_MAX = 10_000


def get_serving_store(*, site_key: str) -> ServingStore | None:
    """Return the serving config of the store with this site key (None if unknown or uninstalled); cached."""
    now = time.monotonic()
    cached = _store_cache.get(site_key)
    if cached is not None and cached[0] > now:
        return cached[1]
    store = Store.objects.filter(site_key=site_key, status__in=SERVING_STATUSES).first()
    serving = None if store is None else build_serving_store(store=store)
    if len(_store_cache) >= _STORE_CACHE_MAX:
        _store_cache.clear()  # junk site keys cannot grow the cache without bound
    _store_cache[site_key] = (now + float(settings.RECS_STORE_CACHE_SECONDS), serving)
    return serving


def clear_serving_store_cache() -> None:
    """Forget every cached store config in this process (tests; a settings change otherwise waits the TTL)."""
    _store_cache.clear()


def build_serving_store(*, store: Store) -> ServingStore:
    """Read the store's CORS origins and merchant rules from Store.settings (bad values fall back to defaults)."""
    raw = store.settings if isinstance(store.settings, dict) else {}
    domain = store.domain.lower().strip()
    hosts = {domain, domain.removeprefix("www.") if domain.startswith("www.") else f"www.{domain}"}
    origins: set[str] = set()
    for entry in _str_list(raw.get("allowed_origins")):
        value = entry.strip().lower().rstrip("/")
        if "://" in value:
            origins.add(value)
        elif value:
            hosts.add(value)
    return ServingStore(
        id=store.id,
        site_key=store.site_key,
        allowed_hosts=frozenset(hosts),
        allowed_origins=frozenset(origins),
        rules=_store_rules(store=store, raw=raw.get("recommendations")),
    )


def is_origin_allowed(*, store: ServingStore, origin: str) -> bool:
    """True when the Origin header names one of the store's own sites (its domain, www. form, or a listed one)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    return origin.lower().rstrip("/") in store.allowed_origins or parts.hostname in store.allowed_hosts


def _store_rules(*, store: Store, raw: Any) -> StoreRules:
    if not isinstance(raw, dict):
        return StoreRules()
    pinned = _str_list(raw.get("pinned_skus"))
    excluded = _str_list(raw.get("exclude_skus"))
    mapped = get_external_ids_for_skus(store_id=store.id, skus=[*pinned, *excluded]) if pinned or excluded else []
    pinned_ids = tuple(x for x in dict.fromkeys(mapped[: len(pinned)]) if x)
    return StoreRules(
        in_stock_only=raw.get("in_stock_only") is not False,
        published_only=raw.get("published_only") is not False,
        exclude_ids=frozenset(x for x in mapped[len(pinned) :] if x),
        exclude_tags=frozenset(tag.strip().lower() for tag in _str_list(raw.get("exclude_tags")) if tag.strip()),
        exclude_categories=tuple(
            _norm_category(path) for path in _str_list(raw.get("exclude_categories")) if _norm_category(path)
        ),
        price_min_ratio=_ratio(raw.get("price_min_ratio")),
        price_max_ratio=_ratio(raw.get("price_max_ratio")),
        pinned_ids=pinned_ids,
    )


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, str | int)] if isinstance(value, list) else []


def _ratio(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _norm_category(path: str) -> str:
    return " > ".join(part.strip().lower() for part in path.replace("/", ">").split(">") if part.strip())


def get_external_ids_for_skus(*, store_id: int, skus: Sequence[str]) -> list[str]:
    """Map SKUs to product external ids, in order; "" for a SKU the store does not sell.

    A SKU matches a product's SKU (the lowest id wins when several share it), then a product's external id,
    then a variant's SKU (its product).
    """
    wanted = [str(s) for s in skus if s]
    if not wanted:
        return []
    by_sku: dict[str, str] = {}
    by_id: set[str] = set()
    rows = (
        Product.objects.filter(store_id=store_id)
        .filter(Q(sku__in=wanted) | Q(external_id__in=wanted))
        .order_by("-id")
        .values_list("external_id", "sku")
    )
    for external_id, sku in rows:
        by_sku[sku] = external_id
        by_id.add(external_id)
    missing = [s for s in wanted if s not in by_sku and s not in by_id]
    by_variant: dict[str, str] = {}
    if missing:
        variants = Variant.objects.filter(product__store_id=store_id, sku__in=missing).order_by("-id")
        by_variant = dict(variants.values_list("sku", "product__external_id"))
    return [by_sku.get(s) or (s if s in by_id else by_variant.get(s, "")) for s in wanted]


# --- Serving ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedItem:
    sku: str
    name: str
    price: str | None
    url: str
    image: str


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
) -> Recommendations:
    """Answer the widget from stored lists: the fresh network list first, then the local one, then the home list.

    Merchant rules are applied to the live product rows, so a product that went out of stock after its list was
    stored is skipped and the answer is topped up from further candidates. An unknown SKU gets the home list.
    With a session (cart / viewed SKUs, most recent first), the process's in-memory engine answers when one is
    built (see get_live_engine); otherwise the stored lists of the query and session products are merged.
    """
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
    network = _pick(lists, source=Source.NETWORK, placement=placement, fresh_only=True)
    local = _pick(lists, source=Source.LOCAL, placement=placement)
    if local is None and placement == Placement.CART:
        local = _pick(lists, source=Source.LOCAL, placement=Placement.PRODUCT)
    if placement == Placement.HOME:
        chain.home_added = True
    if network is not None:
        chain.extend(network.ids, source=Source.NETWORK, rec_id=network.rec_id)
    window = _window(limit=limit, rules=store.rules)
    engine = get_live_engine(store_id=store.id) if session_ids else None
    if engine is not None:
        results = engine.recommend(
            query_id=query.external_id if query else None,
            placement=placement,
            session_ids=session_ids,
            limit=window + len(session_ids),
        )
        chain.extend((r.id for r in results), source=Source.LOCAL, rec_id=local.rec_id if local else None)
    else:
        if local is not None:
            chain.extend(local.ids, source=Source.LOCAL, rec_id=local.rec_id)
        if session_ids and placement != Placement.HOME:
            for merged, rec_id in _merged_session_lists(
                store_id=store.id, session_ids=session_ids, placement=placement
            ):
                chain.extend(merged, source=Source.LOCAL, rec_id=rec_id)

    never = {*session_ids, *([query.external_id] if query else [])}
    items, contributors = _select(store=store, chain=chain, limit=limit, never=never, query=query)
    rec_id, source = _attribution(chain=chain, contributors=contributors, fallback=network or local)
    return Recommendations(
        rec_id=rec_id, source=source, placement=placement, items=tuple(items), personalised=personalised
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
    max_age = timedelta(seconds=int(settings.RECS_NETWORK_MAX_AGE_SECONDS))
    return stored.computed_at >= timezone.now() - max_age


def _merged_session_lists(
    *, store_id: int, session_ids: Sequence[str], placement: str
) -> list[tuple[list[str], str | None]]:
    """The session products' local lists merged round-robin (most recent product first), as one chain segment."""
    placements: list[str] = [Placement.CART, Placement.PRODUCT] if placement == Placement.CART else [Placement.PRODUCT]
    rows = RecommendationList.objects.filter(
        store_id=store_id, source=Source.LOCAL, query_id__in=list(session_ids), placement__in=placements
    ).values_list(*_LIST_FIELDS)
    best: dict[str, _StoredList] = {}
    for stored in map(_stored, rows):
        current = best.get(stored.query_id)
        if current is None or placements.index(stored.placement) < placements.index(current.placement):
            best[stored.query_id] = stored
    ordered = [best[x] for x in session_ids if x in best]
    if not ordered:
        return []
    merged: list[str] = []
    columns = [stored.ids for stored in ordered]
    for position in range(max(len(column) for column in columns)):
        merged.extend(column[position] for column in columns if position < len(column))
    return [(merged, ordered[0].rec_id)]


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
            if rules.needs_taxonomy and _taxonomy_excluded(row, rules):
                excluded.add(row.external_id)

    query_price = float(query.price) if query is not None and query.price is not None else None
    merchant_rules = MerchantRules(
        require_in_stock=rules.in_stock_only,
        require_published=rules.published_only,
        exclude_ids=frozenset(excluded),
        min_price=None if query_price is None or rules.price_min_ratio is None else query_price * rules.price_min_ratio,
        max_price=None if query_price is None or rules.price_max_ratio is None else query_price * rules.price_max_ratio,
        pinned_ids=tuple(pinned),
    )

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
    items = [_served(rows[p.id]) for p in picked]
    contributors = [p.id for p in picked if p.reason != Reason.PINNED]
    return items, contributors


def _taxonomy_excluded(row: _Row, rules: StoreRules) -> bool:
    tags = row.tags if isinstance(row.tags, list) else []
    if rules.exclude_tags and any(str(tag).strip().lower() in rules.exclude_tags for tag in tags):
        return True
    if rules.exclude_categories and row.category_path:
        path = _norm_category(row.category_path)
        return any(path == prefix or path.startswith(prefix + " > ") for prefix in rules.exclude_categories)
    return False


def _served(row: _Row) -> ServedItem:
    return ServedItem(
        sku=row.sku or row.external_id,
        name=row.title,
        price=None if row.price is None else str(row.price),
        url=row.url,
        image=row.image_url,
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


# --- Per-process engine for personalised answers -------------------------------------------------------------

_live_lock = threading.Lock()
_live_engines: dict[int, tuple[float, Recommender | None]] = {}
_live_building: set[int] = set()


def get_live_engine(*, store_id: int) -> Recommender | None:
    """Return this process's engine for the store if one is built; never builds in the caller's thread.

    A missing or expired engine is built in a background thread (one at a time per process) for stores up to
    RECS_LIVE_ENGINE_MAX_PRODUCTS products; meanwhile the caller falls back to stored lists (or the old engine).
    """
    entry = _live_engines.get(store_id)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    if int(settings.RECS_LIVE_ENGINE_MAX_PRODUCTS) > 0:
        _start_live_build(store_id)
    return entry[1] if entry is not None else None


def warm_live_engine(*, store_id: int) -> Recommender | None:
    """Build the store's in-memory engine now, in this thread (None when the store is too big or gone)."""
    store = Store.objects.filter(id=store_id).first()
    engine: Recommender | None = None
    maximum = int(settings.RECS_LIVE_ENGINE_MAX_PRODUCTS)
    if store is not None and (maximum <= 0 or Product.objects.filter(store=store).count() <= maximum):
        engine = build_recommender_for_store(store=store)
    _live_engines[store_id] = (time.monotonic() + int(settings.RECS_LIVE_ENGINE_TTL_SECONDS), engine)
    return engine


def clear_live_engines() -> None:
    """Drop every in-memory engine of this process."""
    _live_engines.clear()


def _start_live_build(store_id: int) -> None:
    with _live_lock:
        if _live_building:
            return
        _live_building.add(store_id)

    def build() -> None:
        try:
            close_old_connections()
            warm_live_engine(store_id=store_id)
        except Exception:
            logger.exception("recommendations.live_engine_failed", extra={"store_id": store_id})
        finally:
            connection.close()
            with _live_lock:
                _live_building.discard(store_id)

    threading.Thread(target=build, name=f"live-engine-{store_id}", daemon=True).start()


# --- Attribution --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecAttribution:
    """What a rec_id names: the list's source and, for network answers, the miner behind it."""

    rec_id: str
    source: str
    store_id: int
    query_id: str
    placement: str
    item_ids: tuple[str, ...]
    miner_hotkey: str = ""
    validator: str = ""


def get_rec_attribution(*, rec_id: str) -> RecAttribution | None:
    """Resolve a rec_id from a widget event or an order line to the list version (and miner) that produced it.

    Network ids ("n_…") resolve for as long as their NetworkAnswer is kept, even after a newer answer replaced
    them; local ids ("l_…") resolve while their list version is current (None after a rebuild: still local).
    """
    row: NetworkAnswer | RecommendationList | None = (
        (NetworkAnswer if rec_id.startswith("n_") else RecommendationList).objects.filter(rec_id=rec_id).first()
    )
    if row is None:
        return None
    return RecAttribution(
        rec_id=rec_id,
        source=Source.NETWORK if isinstance(row, NetworkAnswer) else row.source,
        store_id=row.store_id,
        query_id=row.query_id,
        placement=row.placement,
        item_ids=tuple(row.item_ids),
        miner_hotkey=row.miner_hotkey,
        validator=row.validator,
    )


def rec_id_source(rec_id: str) -> str | None:
    """The source a rec_id was issued for, from its prefix alone ("network", "local" or None)."""
    return next((source for source in Source if rec_id.startswith(rec_id_prefix(source))), None)

"""Reads of a store's serving config: CORS origins, merchant rules, SKU to product id mapping.

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

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from catalog_sync.models import Product, Variant
from merchants.models import Store
from recommendations import process_state

SERVING_STATUSES = (Store.Status.ACTIVE, Store.Status.PENDING, Store.Status.NEEDS_REAUTH)


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
    # How the widget shows prices: Store.settings["currency"] / ["locale"], else the catalog's currency and "".
    currency: str = ""
    locale: str = ""


def get_serving_store(*, site_key: str) -> ServingStore | None:
    """Return the serving config of the store with this site key (None if unknown or uninstalled); cached."""
    return process_state.serving_stores.get_or_load(
        site_key, ttl=float(settings.RECS_STORE_CACHE_SECONDS), load=lambda: _load_serving_store(site_key=site_key)
    )


def _load_serving_store(*, site_key: str) -> ServingStore | None:
    store = Store.objects.filter(site_key=site_key, status__in=SERVING_STATUSES).first()
    return None if store is None else build_serving_store(store=store)


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
        currency=_currency(store=store, raw=raw.get("currency")),
        locale=raw["locale"][:35] if isinstance(raw.get("locale"), str) and _LOCALE.fullmatch(raw["locale"]) else "",
    )


_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _currency(*, store: Store, raw: Any) -> str:
    if isinstance(raw, str) and re.fullmatch(r"[A-Za-z]{3}", raw):
        return raw.upper()
    catalog = Product.objects.filter(store=store).exclude(currency="").values_list("currency", flat=True).first()
    return (catalog or "").upper()


def is_origin_allowed(*, store: ServingStore, origin: str) -> bool:
    """True when the Origin header names one of the store's own sites (its domain, www. form, or a listed one)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if origin.lower().rstrip("/") in store.allowed_origins:
        return True
    try:
        port = parts.port
    except ValueError:
        return False
    # A store's own host counts on its scheme's default port only: another port is another site (allowed_origins
    # lists such a one in full, e.g. "http://localhost:8080").
    return port is None and parts.hostname in store.allowed_hosts


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
            normalise_category(path) for path in _str_list(raw.get("exclude_categories")) if normalise_category(path)
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


def normalise_category(path: str) -> str:
    """A category path in the one form rules compare: lower case, " > " between parts ("/" counts as ">")."""
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
    # One query of two indexed halves, (store, sku) and (store, external_id), sorted here: an OR of the two, or an
    # ORDER BY on their union, makes SQLite walk all of the store's products (78 ms at 100k products, not 0.3 ms).
    # In SQL: the ORM takes longer to build it than the database to run it (it runs on each personalised answer).
    table = connection.ops.quote_name(Product._meta.db_table)
    marks = ", ".join(["%s"] * len(wanted))
    half = f"SELECT id, external_id, sku FROM {table} WHERE store_id = %s AND "  # noqa: S608 (names from the model)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{half}sku IN ({marks}) UNION ALL {half}external_id IN ({marks})", [store_id, *wanted, store_id, *wanted]
        )
        both = cursor.fetchall()
    for _, external_id, sku in sorted(both, reverse=True):  # the lowest id last: it wins a shared SKU
        by_sku[sku] = external_id
        by_id.add(external_id)
    missing = [s for s in wanted if s not in by_sku and s not in by_id]
    by_variant: dict[str, str] = {}
    if missing:
        variants = Variant.objects.filter(product__store_id=store_id, sku__in=missing).order_by("-id")
        by_variant = dict(variants.values_list("sku", "product__external_id"))
    return [by_sku.get(s) or (s if s in by_id else by_variant.get(s, "")) for s in wanted]

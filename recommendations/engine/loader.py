"""Build a store's Recommender from the ORM: Product rows become CatalogItems, OrderLines become signals.

This is the only part of the engine that touches Django; serving, the post-sync task and evaluate_recs
all build through build_recommender_for_store so offline numbers describe the code that serves.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from catalog_sync.models import OrderLine, Product
from merchants.models import Store
from recommendations.engine.core import CatalogItem, EngineConfig, Recommender

# Trending counts an order half as much after this many days.
TRENDING_HALF_LIFE_DAYS = 14.0


@dataclass(frozen=True)
class OrderSignals:
    """What a store's order lines say: baskets (item ids per order), order counts and recent order counts."""

    baskets: tuple[tuple[str, ...], ...] = ()
    popularity: dict[str, float] = field(default_factory=dict)
    trending: dict[str, float] = field(default_factory=dict)


def catalog_item_from_product(product: Product) -> CatalogItem:
    """Return the engine's view of a product; its id is the product's external_id (unique per store)."""
    tags = product.tags if isinstance(product.tags, list) else []
    return CatalogItem(
        id=product.external_id,
        sku=product.sku,
        title=product.title,
        vendor=product.vendor,
        product_type=product.product_type,
        category_path=product.category_path,
        tags=tuple(str(tag) for tag in tags),
        description=product.description,
        price=None if product.price is None else float(product.price),
        in_stock=product.in_stock,
        is_published=product.is_published and product.status == Product.Status.ACTIVE,
        # A Product row already holds all its variants, so the row is the group; catalogs that list each
        # variant as its own product are caught by the near-duplicate check instead.
        group_id=product.external_id,
    )


def load_catalog_items(*, store: Store) -> list[CatalogItem]:
    """Return every product of the store (unpublished and out-of-stock too: rules filter at serve time)."""
    fields = (
        "external_id",
        "sku",
        "title",
        "vendor",
        "product_type",
        "category_path",
        "tags",
        "description",
        "price",
        "in_stock",
        "is_published",
        "status",
    )
    products = Product.objects.filter(store=store).only(*fields).order_by("id")
    return [catalog_item_from_product(product) for product in products.iterator(chunk_size=2000)]


def load_order_signals(*, store: Store, now: datetime | None = None) -> OrderSignals:
    """Return the store's baskets and per-product order counts (distinct orders), plus a trending count."""
    now = now or timezone.now()
    orders: dict[str, set[str]] = defaultdict(set)
    ordered_at: dict[str, datetime] = {}
    lines = OrderLine.objects.filter(store=store).exclude(product_external_id="").order_by("created_at", "id")
    for order_id, product_id, created_at in lines.values_list("order_id", "product_external_id", "created_at"):
        orders[order_id].add(product_id)
        ordered_at.setdefault(order_id, created_at)
    popularity: dict[str, float] = defaultdict(float)
    trending: dict[str, float] = defaultdict(float)
    for order_id, products in orders.items():
        age_days = max((now - ordered_at[order_id]).total_seconds() / 86400.0, 0.0)
        decay = math.pow(0.5, age_days / TRENDING_HALF_LIFE_DAYS)
        for product_id in products:
            popularity[product_id] += 1.0
            trending[product_id] += decay
    baskets = tuple(tuple(sorted(products)) for _, products in sorted(orders.items()) if len(products) > 1)
    return OrderSignals(baskets=baskets, popularity=dict(popularity), trending=dict(trending))


def build_recommender_for_store(
    *, store: Store, config: EngineConfig | None = None, now: datetime | None = None, with_orders: bool = True
) -> Recommender:
    """Build the store's Recommender from its products and (unless with_orders=False) its order lines."""
    items = load_catalog_items(store=store)
    signals = load_order_signals(store=store, now=now) if with_orders else OrderSignals()
    return Recommender.build(
        items,
        baskets=signals.baskets,
        popularity=signals.popularity,
        trending=signals.trending,
        config=config,
    )

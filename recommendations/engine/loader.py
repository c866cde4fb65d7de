"""Build a store's Recommender from the ORM: Product rows become CatalogItems, OrderLines become signals.

This is the only part of the engine that touches Django; serving, the post-sync task and evaluate_recs
all build through build_recommender_for_store so offline numbers describe the code that serves. Orders are
grouped by order id; their customer_key (an anonymous per-store hash) links one shopper's orders.
"""

from datetime import datetime

from django.utils import timezone

from catalog_sync.models import OrderLine, Product
from merchants.models import Store
from recommendations.engine.core import CatalogItem, EngineConfig, Order, Recommender


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


def load_orders(*, store: Store) -> list[Order]:
    """Return the store's orders as the engine sees them: customer key, time, product ids in line order."""
    lines: dict[str, tuple[str, datetime, list[str]]] = {}
    rows = OrderLine.objects.filter(store=store).exclude(product_external_id="").order_by("created_at", "id")
    for order_id, product_id, created_at, key in rows.values_list(
        "order_id", "product_external_id", "created_at", "customer_key"
    ).iterator(chunk_size=5000):
        entry = lines.setdefault(order_id, (key, created_at, []))
        entry[2].append(product_id)
    return [Order(customer=key, when=at.timestamp(), items=tuple(items)) for key, at, items in lines.values()]


def build_recommender_for_store(
    *, store: Store, config: EngineConfig | None = None, now: datetime | None = None, with_orders: bool = True
) -> Recommender:
    """Build the store's Recommender from its products and (unless with_orders=False) its order lines.

    Trending ages orders from now (default: the current time); the build self-tunes on the orders (core.py).
    """
    items = load_catalog_items(store=store)
    orders = load_orders(store=store) if with_orders else []
    return Recommender.build(items, orders=orders, now=(now or timezone.now()).timestamp(), config=config)

"""Build a store's Recommender from the ORM: Product rows become CatalogItems, OrderLines become signals.

This is the only part of the engine that touches Django; serving, the post-sync task and evaluate_recs
all build through build_recommender_for_store so offline numbers describe the code that serves. Orders are
grouped by order id; their customer_key (an anonymous per-store hash) links one shopper's orders.
"""

import logging
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from catalog_sync.models import OrderLine, Product
from merchants.models import Store
from recommendations.engine.core import CatalogItem, EngineConfig, Order, Recommender
from recommendations.engine.snapshot import SnapshotError, load_engine, save_engine

logger = logging.getLogger(__name__)


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


# ---------------------------------------------------------------- saved engines (engine/snapshot.py)
# A worker's rebuild (or the first web process to build) saves the store's engine under RECS_ENGINE_SNAPSHOT_DIR;
# the other web processes load it instead of building their own, while it is younger than
# RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS.


def engine_snapshot_path(*, store_id: int) -> Path:
    return Path(settings.RECS_ENGINE_SNAPSHOT_DIR) / f"store-{store_id}.npz"


def _owner(store: Store) -> str:
    """What a snapshot must name to be this store's: its id and creation time (an id can be reused, e.g. after a
    rolled-back evaluation store on SQLite)."""
    return f"store {store.id} created {store.created_at.isoformat()}"


def save_store_engine(*, store: Store, engine: Recommender) -> None:
    """Save the store's engine for the web processes; a failure to write is logged, never raised (they build).

    Not for a store above RECS_LIVE_ENGINE_MAX_PRODUCTS: no web process loads its engine (its answers come from the
    stored lists), so nothing is written and an older file goes."""
    if int(settings.RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS) <= 0:
        return
    path = engine_snapshot_path(store_id=store.id)
    maximum = int(settings.RECS_LIVE_ENGINE_MAX_PRODUCTS)
    try:
        if maximum <= 0 or len(engine) > maximum:
            path.unlink(missing_ok=True)
        else:
            save_engine(engine, path, owner=_owner(store))
    except OSError:
        logger.exception("recommendations.engine_snapshot_unwritable", extra={"store_id": store.id, "path": str(path)})


def load_saved_store_engine(*, store: Store) -> Recommender | None:
    """The store's saved engine while it is fresh, else None (missing, stale, damaged or another store's)."""
    max_age = int(settings.RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS)
    path = engine_snapshot_path(store_id=store.id)
    try:
        if max_age <= 0 or time.time() - path.stat().st_mtime > max_age:
            return None
        started = time.monotonic()
        engine = load_engine(path, owner=_owner(store))
    except FileNotFoundError:
        return None
    except (SnapshotError, OSError) as error:  # OSError: the folder unreadable, or not a folder
        logger.warning("recommendations.engine_snapshot_refused", extra={"store_id": store.id, "error": str(error)})
        return None
    logger.info(
        "recommendations.engine_snapshot_loaded",
        extra={"store_id": store.id, "items": len(engine), "seconds": round(time.monotonic() - started, 3)},
    )
    return engine


def delete_saved_store_engine(*, store_id: int) -> None:
    engine_snapshot_path(store_id=store_id).unlink(missing_ok=True)

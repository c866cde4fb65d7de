"""Catalog services: the app's write API.

- catalog: idempotent bulk upserts of products, variants and order lines, sync-run bookkeeping, file imports
- sync: platform syncs (Shopify GraphQL paged or bulk, WooCommerce REST), one page per task run
- webhooks: product and order deliveries (routed here by merchants) applied to the catalog
"""

from catalog_sync.services.catalog import (
    BATCH_SIZE,
    ImportProgress,
    ImportReport,
    UpsertResult,
    finish_sync_run,
    import_catalog_file,
    start_sync_run,
    upsert_order_lines,
    upsert_products,
)
from catalog_sync.services.sync import start_store_sync

__all__ = [
    "BATCH_SIZE",
    "ImportProgress",
    "ImportReport",
    "UpsertResult",
    "finish_sync_run",
    "import_catalog_file",
    "start_store_sync",
    "start_sync_run",
    "upsert_order_lines",
    "upsert_products",
]

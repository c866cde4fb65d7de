"""Shopify's Admin API as catalog_sync reads it: one module per job of the wire format.

- `queries`: the GraphQL documents, their estimated costs and the page sizes that keep them under 1,000 points.
- `client`: `ShopifyAdminClient`, the transport (one Session per client), error mapping and paged reads.
- `pacing`: the cost bucket, kept per store between a sync's steps.
- `mapping`: GraphQL nodes to catalog_sync.types payloads.
- `bulk`: bulk exports' JSONL files, streamed and joined.
- `webhooks`: webhook bodies (the REST representation) to payloads.

The names below are the package's public surface; import the rest from its module.
"""

from catalog_sync.clients import Page, PlatformUnauthorized, SkippedRecord, ThrottleStatus
from catalog_sync.clients.shopify.bulk import BulkFileNotGrouped, BulkStatus
from catalog_sync.clients.shopify.client import ShopifyAccessDenied, ShopifyAdminClient, ShopifyQueryRejected
from catalog_sync.clients.shopify.mapping import REC_ID_ATTRIBUTE
from catalog_sync.clients.shopify.pacing import CostBucket
from catalog_sync.clients.shopify.queries import orders_page_size, products_page_size

__all__ = [
    "REC_ID_ATTRIBUTE",
    "BulkFileNotGrouped",
    "BulkStatus",
    "CostBucket",
    "Page",
    "PlatformUnauthorized",
    "ShopifyAccessDenied",
    "ShopifyAdminClient",
    "ShopifyQueryRejected",
    "SkippedRecord",
    "ThrottleStatus",
    "orders_page_size",
    "products_page_size",
]

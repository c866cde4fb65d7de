"""WooCommerce's wc/v3 REST API as catalog_sync reads it: `catalog` pages through it, `mapping` maps its records.

All HTTP goes through the store's merchants.clients.woocommerce.WooCommerceClient (the calls made as the app:
signing, timeouts, the keep-alive session, error mapping). The names below are the package's public surface.
"""

from catalog_sync.clients.woocommerce.catalog import WooCommerceCatalog, WooCommercePage, paginate
from catalog_sync.clients.woocommerce.mapping import (
    REC_ID_META_KEY,
    WebhookPayload,
    WooCommerceDeleted,
    WooCommerceVariationChanged,
)

__all__ = [
    "REC_ID_META_KEY",
    "WebhookPayload",
    "WooCommerceCatalog",
    "WooCommerceDeleted",
    "WooCommercePage",
    "WooCommerceVariationChanged",
    "paginate",
]

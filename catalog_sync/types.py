"""Platform-neutral payloads: what importers and platform clients hand to the upsert services.

Text fields hold plain text (HTML already stripped), prices are Decimals, and every field a
platform does not know keeps its empty default, so Shopify, WooCommerce and CSV imports all
fit the same shapes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class VariantPayload:
    """One purchasable variant of a product (a Shopify variant, a WooCommerce variation)."""

    external_id: str
    sku: str = ""
    title: str = ""
    # Option name -> value, e.g. {"Size": "L", "Color": "Black"}.
    options: Mapping[str, str] = field(default_factory=dict)
    price: Decimal | None = None
    compare_at_price: Decimal | None = None
    in_stock: bool = True
    inventory: int | None = None
    image_url: str = ""
    position: int = 0


@dataclass(frozen=True)
class ProductPayload:
    """A product as the platform describes it, with all its variants."""

    external_id: str
    title: str
    sku: str = ""
    handle: str = ""
    url: str = ""
    description: str = ""
    vendor: str = ""
    product_type: str = ""
    # "Electronics > Audio > Headphones".
    category_path: str = ""
    tags: tuple[str, ...] = ()
    # [{"name": "Size", "values": ["S", "M"]}], in the platform's order.
    options: tuple[Mapping[str, object], ...] = ()
    price: Decimal | None = None
    compare_at_price: Decimal | None = None
    currency: str = ""
    image_url: str = ""
    in_stock: bool = True
    inventory: int | None = None
    status: str = "active"
    is_published: bool = True
    platform_updated_at: datetime | None = None
    # The complete set of variants: stored variants missing from it are deleted.
    # None leaves the stored variants untouched (a partial update, e.g. a price-only webhook).
    variants: tuple[VariantPayload, ...] | None = ()


@dataclass(frozen=True)
class OrderLinePayload:
    """One line of an order, without any customer data."""

    order_id: str
    line_id: str
    ordered_at: datetime
    product_external_id: str = ""
    variant_external_id: str = ""
    sku: str = ""
    quantity: int = 1
    price: Decimal | None = None
    currency: str = ""
    # The recommendation id the widget put into the cart as a hidden line-item property.
    rec_id: str = ""
    # catalog_sync.models.customer_key() of the platform's customer id ("" for a guest); never the id itself.
    customer_key: str = ""

"""WooCommerce's wc/v3 REST representation (products, variations, orders, webhook bodies) as catalog_sync payloads.

A record that cannot become a payload raises Malformed (reported as a SkippedRecord); a product with a malformed
variation is skipped whole, since landing it without some variations would delete the stored ones. Orders read
ids, dates, currency and line items only, never billing, shipping, customer or IP fields; orders that are not
purchases (pending, failed, cancelled, refunded, drafts) give no lines.

Webhooks (`payload_from_webhook`): a delivery's body is the same REST representation, so the same mapping
applies; a deleted resource is only {"id"} and a variable product's body has no variations (variants=None).
"""

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bitrecs_site.http import json_get
from catalog_sync.clients import (
    Malformed,
    SkippedRecord,
    checked_ids,
    list_field,
    optional_int,
    price_field,
    string_field,
)
from catalog_sync.text import html_to_text
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.customers import stored_customer_key

logger = logging.getLogger(__name__)

# The order item meta key the Bitrecs plugin stores the widget's recommendation id under.
REC_ID_META_KEY = "_bitrecs_rec_id"
# Orders whose lines count as purchases; pending/failed/cancelled/refunded/draft orders give no lines.
PURCHASED_ORDER_STATUSES = frozenset({"processing", "completed", "on-hold"})
# wc/v3 post status -> (our status, is_published).
_STATUSES = {
    "publish": ("active", True),
    "future": ("draft", False),
    "draft": ("draft", False),
    "pending": ("draft", False),
    "private": ("draft", False),
    "trash": ("archived", False),
}
# The default product_cat term every product without a category falls into: it says nothing.
_UNCATEGORIZED_SLUG = "uncategorized"
_BRAND_ATTRIBUTES = frozenset({"brand", "pa_brand", "brands"})
_MAX_REC_ID_LENGTH = 64


@dataclass(frozen=True)
class WooCommerceDeleted:
    """A webhook saying a product or order was deleted (its body is only {"id": …})."""

    resource: str
    external_id: str


@dataclass(frozen=True)
class WooCommerceVariationChanged(SkippedRecord):
    """A product webhook whose body is one variation: re-read its product (`WooCommerceCatalog.product`)."""

    product_external_id: str = ""


WebhookPayload = ProductPayload | list[OrderLinePayload] | WooCommerceDeleted | SkippedRecord


def payload_from_webhook(
    resource: str,
    body: Any,
    *,
    currency: str = "",
    category_paths: Mapping[int, str] | None = None,
) -> WebhookPayload:
    """Map one product.* or order.* delivery body without any HTTP call.

    - {"id": n} alone (a `*.deleted` delivery) gives WooCommerceDeleted.
    - A product gives a ProductPayload. A variable product's body lists only variation ids, so its `variants`
      is None: the stored variants are left as they are (variation changes arrive with the variation's own
      delivery or the next sync). A simple product's `variants` is () since it has none.
    - A product body that is one variation gives WooCommerceVariationChanged (a SkippedRecord naming the
      product to re-read with `WooCommerceCatalog.product`).
    - An order gives its purchase lines (an empty list for an order that is not a purchase).
    - A body that cannot be mapped gives a SkippedRecord with the reason.
    Prices carry `currency` and categories use `category_paths` when given (else the names are joined).
    """
    if resource not in ("product", "order"):
        raise ValueError(f"No payload for WooCommerce webhook resource {resource!r}.")
    if not isinstance(body, Mapping):
        return SkippedRecord("", f"{resource} body is not an object")
    if set(body) == {"id"}:
        if not is_id(body["id"]):
            return SkippedRecord("", f"deleted {resource} has no usable id ({body['id']!r})")
        return WooCommerceDeleted(resource=resource, external_id=str(body["id"]))
    if resource == "order":
        try:
            lines, bad_lines = order_lines(body, customer_key=stored_customer_key(body))
        except Malformed as exc:
            return SkippedRecord(record_key(body), str(exc))
        if bad_lines and not lines:
            return SkippedRecord(record_key(body), "; ".join(record.reason for record in bad_lines))
        if bad_lines:
            logger.warning("woocommerce.order_lines_skipped", extra={"count": len(bad_lines)})
        return lines
    if body.get("type") == "variation":
        parent = body.get("parent_id")
        return WooCommerceVariationChanged(
            external_id=record_key(body),
            reason=f"a variation of product {parent}: re-read the product",
            product_external_id=str(parent) if is_id(parent) else "",
        )
    payload, problems = product_or_skips(
        body, None if is_variable(body) else (), currency=currency, category_paths=category_paths or {}
    )
    return payload if payload is not None else problems[-1]


def product_or_skips(
    node: Any,
    variation_rows: Sequence[Any] | None,
    *,
    currency: str,
    category_paths: Mapping[int, str],
) -> tuple[ProductPayload | None, list[SkippedRecord]]:
    """The product's payload, or the skipped records that explain why there is none."""
    key = record_key(node)
    variants: tuple[VariantPayload, ...] | None = None
    if variation_rows is not None:
        found: list[VariantPayload] = []
        bad: list[SkippedRecord] = []
        for position, row in enumerate(variation_rows, start=1):
            try:
                found.append(_variant_payload(row, position))
            except Malformed as exc:
                bad.append(SkippedRecord(f"{key}/{record_key(row)}", f"variation: {exc}"))
        if bad:
            # Landing the product without some of its variations would delete the stored ones.
            return None, [*bad, SkippedRecord(key, "product with a malformed variation")]
        variants = tuple(found)
    try:
        return _product_payload(node, variants, currency=currency, category_paths=category_paths), []
    except Malformed as exc:
        return None, [SkippedRecord(key, str(exc))]


def _product_payload(
    node: Any,
    variants: tuple[VariantPayload, ...] | None,
    *,
    currency: str,
    category_paths: Mapping[int, str],
) -> ProductPayload:
    if not isinstance(node, Mapping):
        raise Malformed("product is not an object")
    external_id = _required_id(node, "product")
    title = html_to_text(string_field(node, "name"))
    if not title:
        raise Malformed("product has no name")
    price, compare_at = _prices(node)
    known = variants or ()
    priced = [variant for variant in known if variant.price is not None]
    cheapest = min(priced, key=lambda variant: variant.price or Decimal(0)) if priced else None
    if cheapest is not None:
        if price is None:
            price = cheapest.price
        if compare_at is None and cheapest.price == price:
            compare_at = cheapest.compare_at_price
    in_stock = _in_stock(node)
    inventory = _inventory(node)
    if known:
        in_stock = any(variant.in_stock for variant in known)
        counts = [variant.inventory for variant in known if variant.inventory is not None]
        inventory = sum(counts) if counts else inventory
    status, is_published = _STATUSES.get(string_field(node, "status") or "publish", ("draft", False))
    if string_field(node, "catalog_visibility") == "hidden":
        is_published = False  # WooCommerce itself shows it nowhere but on its own page
    images = list_field(node, "images")
    return checked_ids(
        ProductPayload(
            external_id=external_id,
            title=title,
            sku=string_field(node, "sku"),
            handle=string_field(node, "slug"),
            url=string_field(node, "permalink"),
            description=html_to_text(string_field(node, "description"))
            or html_to_text(string_field(node, "short_description")),
            vendor=_brand(node),
            category_path=_category_path(list_field(node, "categories"), category_paths),
            tags=_term_names(list_field(node, "tags"), "tags"),
            options=_options(list_field(node, "attributes")),
            price=price,
            compare_at_price=compare_at,
            currency=currency,
            image_url=string_field(images[0], "src") if images else "",
            in_stock=in_stock,
            inventory=inventory,
            status=status,
            is_published=is_published,
            platform_updated_at=_gmt_time(node, "date_modified_gmt"),
            variants=variants,
        )
    )


def _variant_payload(node: Any, position: int) -> VariantPayload:
    if not isinstance(node, Mapping):
        raise Malformed("not an object")
    external_id = _required_id(node, "variation")
    options: dict[str, str] = {}
    for attribute in list_field(node, "attributes"):
        name, value = string_field(attribute, "name"), string_field(attribute, "option")
        if name and value:  # an "Any …" attribute has no option
            options[html_to_text(name)] = html_to_text(value)
    price, compare_at = _prices(node)
    image = node.get("image")
    menu_order = node.get("menu_order")
    if isinstance(menu_order, int) and not isinstance(menu_order, bool) and menu_order > 0:
        position = menu_order
    managed = node.get("manage_stock")
    return VariantPayload(
        external_id=external_id,
        sku=string_field(node, "sku"),
        title=html_to_text(string_field(node, "name")) or " / ".join(options.values()),
        options=options,
        price=price,
        compare_at_price=compare_at,
        in_stock=_in_stock(node),
        # "parent": the parent's stock is reported on every variation, so it is not this variation's own.
        inventory=None if managed == "parent" else _inventory(node),
        image_url=string_field(image, "src") if isinstance(image, Mapping) else "",
        position=position,
    )


def order_lines(node: Any, *, customer_key: str = "") -> tuple[list[OrderLinePayload], list[SkippedRecord]]:
    """The purchase lines of one order, carrying `customer_key`; reads ids, dates, currency and line items only."""
    if not isinstance(node, Mapping):
        raise Malformed("order is not an object")
    order_id = _required_id(node, "order")
    ordered_at = _gmt_time(node, "date_created_gmt")
    if ordered_at is None:
        raise Malformed("order has no date_created_gmt")
    if string_field(node, "status") not in PURCHASED_ORDER_STATUSES:
        return [], []
    currency = string_field(node, "currency").upper()[:3]
    lines: list[OrderLinePayload] = []
    skipped: list[SkippedRecord] = []
    for item in list_field(node, "line_items"):
        try:
            line = _order_line(item, order_id=order_id, ordered_at=ordered_at, currency=currency)
            lines.append(dataclasses.replace(line, customer_key=customer_key) if customer_key else line)
        except Malformed as exc:
            skipped.append(SkippedRecord(f"{order_id}/{record_key(item)}", str(exc)))
    return lines, skipped


def _order_line(item: Any, *, order_id: str, ordered_at: datetime, currency: str) -> OrderLinePayload:
    if not isinstance(item, Mapping):
        raise Malformed("line item is not an object")
    line_id = _required_id(item, "line item")
    quantity = optional_int(item.get("quantity"), "quantity")
    if quantity is None:
        quantity = 1
    # `price` is the unit price after discounts (a JSON number); older stores only send the line total.
    price = price_field(item.get("price"), "price")
    if price is None:
        total = price_field(item.get("total"), "total")
        price = (total / quantity).quantize(Decimal("0.01")) if total is not None and quantity else None
    return checked_ids(
        OrderLinePayload(
            order_id=order_id,
            line_id=line_id,
            ordered_at=ordered_at,
            product_external_id=_optional_id(item.get("product_id"), "product_id"),
            variant_external_id=_optional_id(item.get("variation_id"), "variation_id"),
            sku=string_field(item, "sku"),
            quantity=quantity,
            price=price,
            currency=currency,
            rec_id=_rec_id(item.get("meta_data")),
        )
    )


def _rec_id(meta: Any) -> str:
    if not isinstance(meta, list):
        return ""
    for entry in meta:
        if json_get(entry, "key") == REC_ID_META_KEY:
            value = json_get(entry, "value")
            return value.strip()[:_MAX_REC_ID_LENGTH] if isinstance(value, str) else ""
    return ""


def _prices(node: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(price, compare_at_price): the active price, and the regular price when it is higher (an item on sale)."""
    price = price_field(node.get("price"), "price")
    regular = price_field(node.get("regular_price"), "regular_price")
    sale = price_field(node.get("sale_price"), "sale_price")
    if price is None:
        price = sale if sale is not None else regular
    compare_at = regular if regular is not None and price is not None and regular > price else None
    return price, compare_at


def _in_stock(node: Mapping[str, Any]) -> bool:
    status = node.get("stock_status")
    if status is not None and not isinstance(status, str):
        raise Malformed("stock_status is not a string")
    return status != "outofstock"  # "instock" and "onbackorder" can be bought


def _inventory(node: Mapping[str, Any]) -> int | None:
    return optional_int(node.get("stock_quantity"), "stock_quantity")


def _category_path(categories: list[Any], paths: Mapping[int, str]) -> str:
    """The deepest category's path when the tree is known (else the product's category names joined)."""
    names: list[str] = []
    candidates: list[str] = []
    for category in categories:
        if not isinstance(category, Mapping):
            raise Malformed("categories is not a list of objects")
        if string_field(category, "slug") == _UNCATEGORIZED_SLUG:
            continue
        name = html_to_text(string_field(category, "name"))
        known = paths.get(category["id"]) if is_int(category.get("id")) else None
        if name:
            names.append(name)
        if known or name:
            candidates.append(known or name)
    if not paths:
        return " > ".join(names)
    return max(candidates, key=lambda path: path.count(" > "), default="")


def _term_names(terms: list[Any], what: str) -> tuple[str, ...]:
    names: list[str] = []
    for term in terms:
        if not isinstance(term, Mapping):
            raise Malformed(f"{what} is not a list of objects")
        name = html_to_text(string_field(term, "name"))
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _brand(node: Mapping[str, Any]) -> str:
    """The brand: WooCommerce Brands' `brands` terms, else a "Brand" attribute's first value."""
    brands = node.get("brands")
    if isinstance(brands, list):
        names = _term_names(brands, "brands")
        if names:
            return names[0]
    for attribute in list_field(node, "attributes"):
        if isinstance(attribute, Mapping) and string_field(attribute, "name").strip().lower() in _BRAND_ATTRIBUTES:
            values = attribute.get("options")
            if isinstance(values, list) and values and isinstance(values[0], str):
                return html_to_text(values[0])
    return ""


def _options(attributes: list[Any]) -> tuple[Mapping[str, object], ...]:
    """[{"name": "Size", "values": ["S", "M"]}] from the product's attributes, in their order."""
    options: list[Mapping[str, object]] = []
    for attribute in attributes:
        if not isinstance(attribute, Mapping):
            raise Malformed("attributes is not a list of objects")
        name = html_to_text(string_field(attribute, "name"))
        values = attribute.get("options")
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise Malformed(f"attribute {name!r} options are not a list of strings")
        if name:
            options.append({"name": name, "values": [html_to_text(value) for value in values if value.strip()]})
    return tuple(options)


# Small readers: each raises Malformed on a wrong type.


def _gmt_time(node: Mapping[str, Any], key: str) -> datetime | None:
    value = node.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} is not a date")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"{key} is not a date: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: Any) -> bool:
    return is_int(value) and value > 0


def is_variable(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("type") == "variable" and is_id(node.get("id"))


def _required_id(node: Mapping[str, Any], what: str) -> str:
    value = node.get("id")
    if not is_id(value):
        raise Malformed(f"{what} has no usable id ({value!r})")
    return str(value)


def _optional_id(value: Any, what: str) -> str:
    """An id where 0 or null means none (a line item of a deleted product, a simple product's variation_id)."""
    if value is None or value == 0:
        return ""
    if not is_id(value):
        raise Malformed(f"{what} is not an id ({value!r})")
    return str(value)


def record_key(node: Any) -> str:
    """The record's id for a SkippedRecord, or "" when even that is unreadable."""
    value = node.get("id") if isinstance(node, Mapping) else None
    return str(value) if is_id(value) else ""

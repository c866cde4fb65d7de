"""Shopify's GraphQL wire format (Admin API nodes and connections) mapped to catalog_sync.types payloads.

A node that cannot become a payload raises Malformed, which the caller reports as a SkippedRecord; a broken
top-level connection is Shopify's problem (PlatformUnavailable, retried later). Order lines read ids, SKU,
quantity, price and the widget's rec id only, never customer data.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bitrecs_site.http import json_get, shopify_gid_number
from catalog_sync.clients import Malformed, SkippedRecord, checked_ids, optional_int, price_field, string_field
from catalog_sync.text import html_to_text
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.exceptions import PlatformUnavailable

# The hidden line-item property the widget adds to the cart when a shopper adds a recommended product.
REC_ID_ATTRIBUTE = "_bitrecs_rec_id"
_DEFAULT_OPTION = ("Title", "Default Title")


def product_payload(node: Any, variant_nodes: list[Any], currency: str) -> ProductPayload:
    if not isinstance(node, Mapping):
        raise Malformed("product is not an object")
    external_id = _external_id(node)
    title = node.get("title")
    if not isinstance(title, str) or not title.strip():
        raise Malformed("product has no title")
    variants = tuple(_variant_payload(variant, index) for index, variant in enumerate(variant_nodes, start=1))
    priced = [variant for variant in variants if variant.price is not None]
    cheapest = min(priced, key=lambda variant: variant.price or Decimal(0)) if priced else None
    tags = node.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise Malformed("tags are not a list of strings")
    status = string_field(node, "status") or "ACTIVE"
    url = string_field(node, "onlineStoreUrl")
    return checked_ids(
        ProductPayload(
            external_id=external_id,
            title=title.strip(),
            sku=next((variant.sku for variant in variants if variant.sku), ""),
            handle=string_field(node, "handle"),
            url=url,
            description=html_to_text(string_field(node, "descriptionHtml")),
            vendor=string_field(node, "vendor"),
            product_type=string_field(node, "productType"),
            category_path=string_field(node.get("category") or {}, "fullName"),
            tags=tuple(tag.strip() for tag in tags if tag.strip()),
            options=_product_options(variants),
            price=cheapest.price if cheapest else None,
            compare_at_price=cheapest.compare_at_price if cheapest else None,
            currency=currency,
            image_url=_image_url(node),
            in_stock=any(variant.in_stock for variant in variants) if variants else True,
            inventory=optional_int(node.get("totalInventory"), "totalInventory"),
            status=status.lower(),
            # onlineStoreUrl is null unless the product is active and published to the Online Store channel.
            is_published=bool(url),
            platform_updated_at=parse_time(node.get("updatedAt"), "updatedAt"),
            variants=variants,
        )
    )


def _variant_payload(node: Any, position: int) -> VariantPayload:
    if not isinstance(node, Mapping):
        raise Malformed("variant is not an object")
    options: dict[str, str] = {}
    selected = node.get("selectedOptions") or []
    if not isinstance(selected, list):
        raise Malformed("variant options are not a list")
    for option in selected:
        name, value = json_get(option, "name"), json_get(option, "value")
        if isinstance(name, str) and isinstance(value, str) and (name, value) != _DEFAULT_OPTION:
            options[name] = value
    in_stock = node.get("availableForSale")
    return VariantPayload(
        external_id=_external_id(node),
        sku=string_field(node, "sku"),
        title=string_field(node, "title"),
        options=options,
        price=price_field(node.get("price"), "variant price"),
        compare_at_price=price_field(node.get("compareAtPrice"), "variant compareAtPrice"),
        in_stock=in_stock if isinstance(in_stock, bool) else True,
        inventory=optional_int(node.get("inventoryQuantity"), "inventoryQuantity"),
        position=optional_int(node.get("position"), "position") or position,
    )


def _product_options(variants: tuple[VariantPayload, ...]) -> tuple[Mapping[str, object], ...]:
    """[{"name": "Size", "values": ["S", "M"]}] in order of first appearance among the variants."""
    values: dict[str, list[str]] = {}
    for variant in variants:
        for name, value in variant.options.items():
            seen = values.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    return tuple({"name": name, "values": option_values} for name, option_values in values.items())


def order_lines(
    node: Any, line_nodes: list[Any], *, customer_key: str = ""
) -> tuple[list[OrderLinePayload], list[SkippedRecord]]:
    """Order lines of one order, carrying `customer_key`; reads ids, SKU, quantity, price and the rec id only."""
    order_id = _external_id(node)
    ordered_at = parse_time(node.get("createdAt"), "createdAt")
    if ordered_at is None:
        raise Malformed("order has no createdAt")
    lines: list[OrderLinePayload] = []
    skipped: list[SkippedRecord] = []
    for line in line_nodes:
        try:
            if not isinstance(line, Mapping):
                raise Malformed("line item is not an object")
            quantity = optional_int(line.get("quantity"), "quantity")
            money = json_get(line, "originalUnitPriceSet", "shopMoney") or {}
            lines.append(
                checked_ids(
                    OrderLinePayload(
                        order_id=order_id,
                        line_id=_external_id(line),
                        ordered_at=ordered_at,
                        product_external_id=shopify_gid_number(json_get(line, "product", "id")),
                        variant_external_id=shopify_gid_number(json_get(line, "variant", "id")),
                        sku=string_field(line, "sku"),
                        quantity=quantity if quantity is not None else 1,
                        price=price_field(json_get(money, "amount"), "line price"),
                        currency=string_field(money, "currencyCode"),
                        rec_id=_rec_id(line.get("customAttributes")),
                        customer_key=customer_key,
                    )
                )
            )
        except Malformed as exc:
            skipped.append(SkippedRecord(f"{order_id}/{node_external_id(line)}", str(exc)))
    return lines, skipped


def _rec_id(attributes: Any) -> str:
    if not isinstance(attributes, list):
        return ""
    for attribute in attributes:
        if json_get(attribute, "key") == REC_ID_ATTRIBUTE:
            value = json_get(attribute, "value")
            return value.strip()[:64] if isinstance(value, str) else ""
    return ""


def _image_url(node: Mapping[str, Any]) -> str:
    url = json_get(node, "featuredMedia", "preview", "image", "url")
    return url if isinstance(url, str) else ""


def _external_id(node: Mapping[str, Any]) -> str:
    """The numeric id: legacyResourceId when asked for, else the tail of the gid."""
    legacy = node.get("legacyResourceId")
    if isinstance(legacy, str | int) and not isinstance(legacy, bool) and str(legacy).isdigit():
        return str(legacy)
    number = shopify_gid_number(node.get("id"))
    if not number:
        raise Malformed(f"no usable id ({node.get('id')!r})")
    return number


def node_external_id(node: Any) -> str:
    if not isinstance(node, Mapping):
        return ""
    try:
        return _external_id(node)
    except Malformed:
        return ""


def parse_time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{what} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"{what} is not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def connection(value: Any, name: str) -> tuple[list[Any], str | None]:
    """The nodes and next cursor of a top-level connection; a broken shape is Shopify's problem, retry later."""
    if not isinstance(value, Mapping) or not isinstance(value.get("nodes"), list):
        raise PlatformUnavailable(f"Shopify answered without a {name} list.")
    return list(value["nodes"]), _next_cursor(value.get("pageInfo"))


def nested_connection(value: Any, name: str) -> tuple[list[Any], str | None]:
    if value is None:
        return [], None
    if not isinstance(value, Mapping) or not isinstance(value.get("nodes"), list):
        raise Malformed(f"{name} is not a connection")
    return list(value["nodes"]), _next_cursor(value.get("pageInfo"))


def _next_cursor(page_info: Any) -> str | None:
    if not isinstance(page_info, Mapping) or page_info.get("hasNextPage") is not True:
        return None
    cursor = page_info.get("endCursor")
    return cursor if isinstance(cursor, str) and cursor else None


def optional_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

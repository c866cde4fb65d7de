"""Shopify webhook payloads (REST-shaped JSON: products/*, orders/*) turned into catalog payloads.

Webhooks carry the REST representation, not the GraphQL one the sync reads, so they get their own
mapping. Malformed payloads become a SkippedRecord. Customer fields are never read (the intake scrubbed them):
an order's lines carry only the anonymous customer key the intake kept (merchants.customers).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from bitrecs_site.http import json_list, json_str, platform_id
from catalog_sync.clients import Malformed, SkippedRecord, checked_ids
from catalog_sync.clients.shopify.mapping import REC_ID_ATTRIBUTE
from catalog_sync.text import PriceError, clip, html_to_text, parse_price, split_list
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.customers import stored_customer_key


def product_from_webhook(body: dict[str, Any]) -> ProductPayload | SkippedRecord:
    """Map a products/create or products/update payload; its variants are the product's complete set."""
    external_id = platform_id(body.get("id"))
    try:
        if not external_id:
            raise Malformed("missing product id")
        title = html_to_text(json_str(body, "title"))
        if not title:
            raise Malformed("missing title")
        variants = tuple(_variant(row, position) for position, row in enumerate(json_list(body, "variants"), start=1))
        prices = [variant.price for variant in variants if variant.price is not None]
        status = (json_str(body, "status") or "active").lower()
        image = body.get("image") if isinstance(body.get("image"), dict) else None
        images = json_list(body, "images")
        image_url = json_str(image, "src") if image else (json_str(images[0], "src") if images else "")
        in_stock = any(variant.in_stock for variant in variants) if variants else False
        inventories = [variant.inventory for variant in variants if variant.inventory is not None]
        options = tuple(
            {"name": json_str(option, "name"), "values": [str(value) for value in json_list(option, "values")]}
            for option in json_list(body, "options")
            if json_str(option, "name") and json_str(option, "name") != "Title"
        )
        return checked_ids(
            ProductPayload(
                external_id=external_id,
                title=clip(title, 1000),
                sku=variants[0].sku if variants else "",
                handle=json_str(body, "handle"),
                description=html_to_text(json_str(body, "body_html")),
                vendor=json_str(body, "vendor"),
                product_type=json_str(body, "product_type"),
                category_path=json_str(body.get("category"), "full_name")
                if isinstance(body.get("category"), dict)
                else "",
                tags=tuple(split_list(json_str(body, "tags"))),
                options=options,
                price=min(prices) if prices else None,
                compare_at_price=variants[0].compare_at_price if variants else None,
                image_url=image_url,
                in_stock=in_stock,
                inventory=sum(inventories) if inventories else None,
                status=status if status in ("active", "draft", "archived") else "active",
                is_published=status == "active" and body.get("published_at") not in (None, ""),
                platform_updated_at=_time(body.get("updated_at")),
                variants=variants,
            )
        )
    except Malformed as exc:
        return SkippedRecord(external_id=external_id, reason=str(exc))


def deleted_product_id(body: dict[str, Any]) -> str:
    """The id of a products/delete payload ({"id": …}), or "" when it has none."""
    return platform_id(body.get("id"))


def order_lines_from_webhook(body: dict[str, Any]) -> tuple[list[OrderLinePayload], list[SkippedRecord]]:
    """Map an orders/* payload to its lines; of the customer only the key the intake kept is read."""
    order_id = platform_id(body.get("id"))
    ordered_at = _time(body.get("created_at"))
    if not order_id or ordered_at is None:
        return [], [SkippedRecord(external_id=order_id, reason="order without id or created_at")]
    currency = json_str(body, "currency")
    key = stored_customer_key(body)
    lines, skipped = [], []
    for row in json_list(body, "line_items"):
        line_id = platform_id(row.get("id")) if isinstance(row, dict) else ""
        try:
            if not line_id:
                raise Malformed("line item without id")
            quantity = row.get("quantity")
            if not isinstance(quantity, int) or quantity < 0:
                raise Malformed(f"line item {line_id} has quantity {quantity!r}")
            lines.append(
                checked_ids(
                    OrderLinePayload(
                        order_id=order_id,
                        line_id=line_id,
                        ordered_at=ordered_at,
                        product_external_id=platform_id(row.get("product_id")),
                        variant_external_id=platform_id(row.get("variant_id")),
                        sku=json_str(row, "sku"),
                        quantity=quantity,
                        price=_price(row.get("price"), "line item price"),
                        currency=currency,
                        rec_id=_rec_id(row.get("properties")),
                        customer_key=key,
                    )
                )
            )
        except Malformed as exc:
            skipped.append(SkippedRecord(external_id=f"{order_id}/{line_id}", reason=str(exc)))
    return lines, skipped


def _variant(row: Any, position: int) -> VariantPayload:
    if not isinstance(row, dict):
        raise Malformed("variant is not an object")
    variant_id = platform_id(row.get("id"))
    if not variant_id:
        raise Malformed("variant without id")
    inventory = row.get("inventory_quantity")
    if inventory is not None and not isinstance(inventory, int):
        raise Malformed(f"variant {variant_id} has inventory {inventory!r}")
    policy = json_str(row, "inventory_policy")
    options = {
        f"Option{index}": str(row[f"option{index}"])
        for index in (1, 2, 3)
        if row.get(f"option{index}") not in (None, "", "Default Title")
    }
    return VariantPayload(
        external_id=variant_id,
        sku=json_str(row, "sku"),
        title=json_str(row, "title"),
        options=options,
        price=_price(row.get("price"), f"variant {variant_id} price"),
        compare_at_price=_price(row.get("compare_at_price"), f"variant {variant_id} compare-at price"),
        in_stock=inventory is None or inventory > 0 or policy == "continue",
        inventory=inventory,
        position=int(row["position"]) if isinstance(row.get("position"), int) else position,
    )


def _rec_id(properties: Any) -> str:
    """The recommendation id the widget put on the line (properties: [{"name", "value"}] or a dict)."""
    if isinstance(properties, dict):
        value = properties.get(REC_ID_ATTRIBUTE)
        return clip(str(value), 64) if value else ""
    for item in properties if isinstance(properties, list) else []:
        if isinstance(item, dict) and item.get("name") == REC_ID_ATTRIBUTE and item.get("value"):
            return clip(str(item["value"]), 64)
    return ""


def _price(value: Any, what: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return parse_price(str(value))
    except PriceError as exc:
        raise Malformed(f"{what} {value!r} is not a number") from exc


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None

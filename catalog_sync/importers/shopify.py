"""Shopify product CSV export: a product's rows share its Handle; only the first carries the title."""

import hashlib
from collections.abc import Iterator
from decimal import Decimal

from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip, broken_row_skip, is_broken_row
from catalog_sync.models import EXTERNAL_ID_MAX_LENGTH
from catalog_sync.text import PriceError, html_to_text, parse_bool, parse_int, parse_price, split_list
from catalog_sync.types import ProductPayload, VariantPayload

REQUIRED_COLUMNS = ("Handle", "Title", "Variant Price")
_OPTION_SLOTS = (1, 2, 3)
_STATUSES = {"active", "draft", "archived"}
_VARIANT_COLUMNS = ("Variant Price", "Variant SKU", "Option1 Value", "Variant Compare At Price")


def parse(source: FileSource, *, context: ParseContext) -> Iterator[Item]:
    """Yield one payload per product (its rows grouped by Handle), or Skips for bad rows and products."""
    handle = ""
    group: list[tuple[int, dict[str, str]]] = []
    done: set[str] = set()
    for line, row in source.csv_rows():
        if is_broken_row(row):
            yield broken_row_skip(line)
            continue
        row_handle = row.get("Handle", "").strip()
        if not row_handle:
            yield Skip(row=line, reason="missing id")
            continue
        if row_handle != handle:
            if group:
                yield from _product(group, context)
                done.add(handle)
            handle, group = row_handle, []
        if row_handle in done:
            yield Skip(row=line, reason="rows of a handle not next to each other", external_id=row_handle)
            continue
        group.append((line, row))
    if group:
        yield from _product(group, context)


def _sku(value: str | None) -> str:
    # Spreadsheet tools prefix numeric SKUs with an apostrophe to keep them as text.
    return (value or "").strip().lstrip("'").strip()


def _is_markdown(price: Decimal | None, compare_at: Decimal | None) -> bool:
    return compare_at is not None and (price is None or compare_at > price)


def _variant_id(values: list[str], taken: set[str]) -> str:
    external_id = " / ".join(values) or "Default Title"
    if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        external_id = "sha1:" + hashlib.sha1(external_id.encode(), usedforsecurity=False).hexdigest()
    candidate, n = external_id, 1
    while candidate in taken:
        n += 1
        candidate = f"{external_id} #{n}"
    taken.add(candidate)
    return candidate


def _product(group: list[tuple[int, dict[str, str]]], context: ParseContext) -> Iterator[Item]:
    first_line, first = next(((line, row) for line, row in group if row.get("Title", "").strip()), group[0])
    handle = first["Handle"].strip()
    title = html_to_text(first.get("Title"))
    if not title:
        yield Skip(row=first_line, reason="missing title", external_id=handle)
        return
    option_names = [html_to_text(first.get(f"Option{slot} Name")) for slot in _OPTION_SLOTS]
    variants: list[VariantPayload] = []
    bad_rows: list[Skip] = []
    taken: set[str] = set()
    image_url = ""
    for line, row in group:
        if not image_url and row.get("Image Src", "").strip():
            image_url = row["Image Src"].strip()
        if not any(row.get(column, "").strip() for column in _VARIANT_COLUMNS):
            continue  # an image-only row
        try:
            price = parse_price(row.get("Variant Price"))
            compare_at = parse_price(row.get("Variant Compare At Price"))
        except PriceError as exc:
            bad_rows.append(Skip(row=line, reason="non-numeric price", external_id=handle, value=str(exc)))
            continue
        values = [html_to_text(row.get(f"Option{slot} Value")) for slot in _OPTION_SLOTS]
        options = {
            name or f"Option{slot}": value
            for slot, name, value in zip(_OPTION_SLOTS, option_names, values, strict=True)
            if value
        }
        inventory = parse_int(row.get("Variant Inventory Qty"))
        tracked = bool(row.get("Variant Inventory Tracker", "").strip())
        deny = row.get("Variant Inventory Policy", "").strip().lower() != "continue"
        variants.append(
            VariantPayload(
                external_id=row.get("Variant ID", "").strip() or _variant_id([v for v in values if v], taken),
                sku=_sku(row.get("Variant SKU")),
                title=" / ".join(v for v in values if v) or "Default Title",
                options=options,
                price=price,
                compare_at_price=compare_at if _is_markdown(price, compare_at) else None,
                in_stock=not (tracked and deny and inventory is not None and inventory <= 0),
                inventory=inventory,
                image_url=row.get("Variant Image", "").strip(),
                position=len(variants) + 1,
            )
        )
    if bad_rows:
        # Landing the product without some of its variants would delete the stored ones.
        yield from bad_rows
        yield Skip(row=first_line, reason="product with a bad variant row", external_id=handle)
        return
    priced = [v for v in variants if v.price is not None]
    cheapest = min(priced, key=lambda v: v.price or Decimal(0)) if priced else None
    counts = [v.inventory for v in variants if v.inventory is not None]
    status = first.get("Status", "").strip().lower()
    option_values: dict[str, list[str]] = {}
    for variant in variants:
        for name, value in variant.options.items():
            if value not in option_values.setdefault(name, []):
                option_values[name].append(value)
    yield ProductPayload(
        external_id=handle,
        title=title,
        sku=next((v.sku for v in variants if v.sku), ""),
        handle=handle,
        url=f"https://{context.store_domain}/products/{handle}" if context.store_domain else "",
        description=html_to_text(first.get("Body (HTML)")),
        vendor=html_to_text(first.get("Vendor")),
        product_type=html_to_text(first.get("Type")),
        # The merchant's Type is the best category a CSV has when the standard taxonomy is empty.
        category_path=html_to_text(first.get("Product Category"))
        or html_to_text(first.get("Google Shopping / Google Product Category"))
        or html_to_text(first.get("Type")),
        tags=tuple(split_list(first.get("Tags"))),
        options=tuple(
            {"name": name, "values": values}
            for name, values in option_values.items()
            if not (name == "Title" and values == ["Default Title"])
        ),
        price=cheapest.price if cheapest else None,
        compare_at_price=cheapest.compare_at_price if cheapest else None,
        currency=context.currency,
        image_url=image_url,
        in_stock=any(v.in_stock for v in variants) if variants else True,
        inventory=sum(counts) if counts else None,
        status=status if status in _STATUSES else "active",
        is_published=parse_bool(first.get("Published"), default=True),
        variants=tuple(variants),
    )

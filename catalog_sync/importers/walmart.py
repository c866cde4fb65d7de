"""Walmart product feed CSV (UNIQUE_ID, PRODUCT_NAME, LIST_PRICE, SALE_PRICE, BRAND, CATEGORY, IN_STOCK …)."""

from collections.abc import Iterator

from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip, broken_row_skip, is_broken_row
from catalog_sync.text import PriceError, html_to_text, parse_bool, parse_price
from catalog_sync.types import ProductPayload

REQUIRED_COLUMNS = ("UNIQUE_ID", "PRODUCT_NAME")
DEFAULT_CURRENCY = "USD"


def parse(source: FileSource, *, context: ParseContext) -> Iterator[Item]:
    """Yield one payload per row, or a Skip for a bad row."""
    for line, row in source.csv_rows():
        if is_broken_row(row):
            yield broken_row_skip(line)
            continue
        external_id = row.get("UNIQUE_ID", "").strip()
        title = html_to_text(row.get("PRODUCT_NAME"))
        if not external_id:
            yield Skip(row=line, reason="missing id")
            continue
        if not title:
            yield Skip(row=line, reason="missing title", external_id=external_id)
            continue
        try:
            sale = parse_price(row.get("SALE_PRICE"))
            regular = parse_price(row.get("LIST_PRICE"))
        except PriceError as exc:
            yield Skip(row=line, reason="non-numeric price", external_id=external_id, value=str(exc))
            continue
        price = sale if sale is not None else regular
        category = " > ".join(part.strip() for part in html_to_text(row.get("CATEGORY")).split("|") if part.strip())
        yield ProductPayload(
            external_id=external_id,
            title=title,
            sku=external_id,
            vendor=html_to_text(row.get("BRAND")),
            category_path=category,
            product_type=category.rsplit(" > ", 1)[-1],
            price=price,
            compare_at_price=regular if price is not None and regular is not None and regular > price else None,
            currency=context.currency or DEFAULT_CURRENCY,
            in_stock=parse_bool(row.get("IN_STOCK")),
        )

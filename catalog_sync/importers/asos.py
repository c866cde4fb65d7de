"""ASOS product CSV (Name, Categories, Regular price, Color, SKU)."""

from collections.abc import Iterator

from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip, broken_row_skip, is_broken_row
from catalog_sync.text import PriceError, html_to_text, parse_price
from catalog_sync.types import ProductPayload

REQUIRED_COLUMNS = ("Name", "Regular price", "SKU")
EXCLUDED_COLUMNS = ("Type", "Parent", "ID")  # those make it a WooCommerce export


def parse(source: FileSource, *, context: ParseContext) -> Iterator[Item]:
    """Yield one payload per row, or a Skip for a bad row."""
    for line, row in source.csv_rows():
        if is_broken_row(row):
            yield broken_row_skip(line)
            continue
        external_id = row.get("SKU", "").strip()
        title = html_to_text(row.get("Name"))
        if not external_id:
            yield Skip(row=line, reason="missing id")
            continue
        if not title:
            yield Skip(row=line, reason="missing title", external_id=external_id)
            continue
        try:
            price = parse_price(row.get("Regular price"))
        except PriceError as exc:
            yield Skip(row=line, reason="non-numeric price", external_id=external_id, value=str(exc))
            continue
        # The feed repeats the name as its category; that is no category at all.
        category = html_to_text(row.get("Categories"))
        color = html_to_text(row.get("Color"))
        yield ProductPayload(
            external_id=external_id,
            title=title,
            sku=external_id,
            category_path="" if category == title else category,
            options=({"name": "Color", "values": [color]},) if color else (),
            price=price,
            currency=context.currency,
        )

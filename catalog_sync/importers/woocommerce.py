"""WooCommerce product CSV export: simple, variable and variation rows (variations name their parent)."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip, broken_row_skip, is_broken_row
from catalog_sync.text import PriceError, html_to_text, parse_bool, parse_int, parse_price, split_list
from catalog_sync.types import ProductPayload, VariantPayload

REQUIRED_COLUMNS = ("ID", "Type", "SKU", "Name", "Parent", "Regular price")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_ATTRIBUTE_SLOTS = range(1, 10)


@dataclass
class _Group:
    """A variable product waiting for its variation rows."""

    line: int
    row: dict[str, str]
    expected: int
    variations: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _parent_key(value: str) -> str:
    value = value.strip()
    return value[3:].strip() if value.lower().startswith("id:") else value


def parse(source: FileSource, *, context: ParseContext) -> Iterator[Item]:
    """Yield one payload per simple or variable product (with its variations), or a Skip per bad row.

    A first cheap pass counts each parent's variations, so a variable product is emitted as soon as its
    last variation is read: memory stays flat for exports that keep variations next to their parent.
    """
    sku_to_id: dict[str, str] = {}
    raw_counts: dict[str, int] = {}
    for _, row in source.csv_rows():
        if is_broken_row(row):
            continue
        if row.get("Type", "").strip().lower() == "variation":
            key = _parent_key(row.get("Parent", ""))
            raw_counts[key] = raw_counts.get(key, 0) + 1
        elif row.get("SKU", "").strip() and row.get("ID", "").strip():
            sku_to_id[row["SKU"].strip()] = row["ID"].strip()

    def resolve(key: str) -> str:
        return sku_to_id.get(key, key)

    expected: dict[str, int] = {}
    for key, count in raw_counts.items():
        expected[resolve(key)] = expected.get(resolve(key), 0) + count

    open_groups: dict[str, _Group] = {}
    early: dict[str, list[tuple[int, dict[str, str]]]] = {}
    parent_ids: set[str] = set()
    for line, row in source.csv_rows():
        if is_broken_row(row):
            yield broken_row_skip(line)
            continue
        kind = row.get("Type", "").strip().lower()
        if kind != "variation":
            product_id = row.get("ID", "").strip() or row.get("SKU", "").strip()
            parent_ids.add(product_id)
            count = expected.get(product_id, 0) if product_id else 0
            if kind == "variable" and count:
                group = _Group(line=line, row=row, expected=count, variations=early.pop(product_id, []))
                if len(group.variations) >= count:
                    yield from _finish(group, context)
                else:
                    open_groups[product_id] = group
            else:
                yield from _finish(_Group(line=line, row=row, expected=0), context)
            continue
        parent_id = resolve(_parent_key(row.get("Parent", "")))
        if not parent_id:
            yield Skip(row=line, reason="variation without parent", external_id=row.get("ID", "").strip())
            continue
        open_group = open_groups.get(parent_id)
        if open_group is None:
            if parent_id in parent_ids:  # its parent is a simple product, or was already complete
                yield Skip(row=line, reason="variation without parent", external_id=row.get("ID", "").strip())
            else:
                early.setdefault(parent_id, []).append((line, row))
            continue
        open_group.variations.append((line, row))
        if len(open_group.variations) >= open_group.expected:
            del open_groups[parent_id]
            yield from _finish(open_group, context)
    for group in open_groups.values():
        yield from _finish(group, context)
    for rows in early.values():
        for line, row in rows:
            yield Skip(
                row=line, reason="variation without parent", external_id=row.get("ID", "").strip(), value=row["Parent"]
            )


def _prices(row: dict[str, str]) -> tuple[Decimal | None, Decimal | None]:
    regular = parse_price(row.get("Regular price"))
    sale = parse_price(row.get("Sale price"))
    if sale is not None:
        return sale, regular if regular is not None and regular > sale else None
    return regular, None


def _category_path(value: str) -> str:
    """Return the deepest of the comma-separated category paths ("A, A > B > C" gives "A > B > C")."""
    paths = [html_to_text(part.replace("\\,", ",")) for part in _UNESCAPED_COMMA.split(value or "")]
    paths = [" > ".join(p.strip() for p in path.split(">") if p.strip()) for path in paths if path]
    return max(paths, key=lambda path: path.count(">"), default="")


def _status(row: dict[str, str]) -> tuple[str, bool]:
    published = row.get("Published", "").strip()
    if published in {"", "1"}:
        return "active", True
    return "draft", False  # 0 is a draft, -1 a private product


def _options(row: dict[str, str]) -> list[tuple[str, str]]:
    options = []
    for slot in _ATTRIBUTE_SLOTS:
        name = html_to_text(row.get(f"Attribute {slot} name"))
        if name:
            options.append((name, row.get(f"Attribute {slot} value(s)", "")))
    return options


def _variant(line: int, row: dict[str, str], position: int, parent_title: str) -> VariantPayload | Skip:
    external_id = row.get("ID", "").strip() or row.get("SKU", "").strip()
    if not external_id:
        return Skip(row=line, reason="missing id")
    try:
        price, compare_at = _prices(row)
    except PriceError as exc:
        return Skip(row=line, reason="non-numeric price", external_id=external_id, value=str(exc))
    options = {name: html_to_text(value) for name, value in _options(row)}
    images = split_list(row.get("Images"))
    return VariantPayload(
        external_id=external_id,
        sku=row.get("SKU", "").strip(),
        title=html_to_text(row.get("Name")) or " / ".join([parent_title, *options.values()]),
        options=options,
        price=price,
        compare_at_price=compare_at,
        in_stock=parse_bool(row.get("In stock?")),
        inventory=parse_int(row.get("Stock")),
        image_url=images[0] if images else "",
        position=position,
    )


def _finish(group: _Group, context: ParseContext) -> Iterator[Item]:
    row = group.row
    external_id = row.get("ID", "").strip() or row.get("SKU", "").strip()
    title = html_to_text(row.get("Name"))
    problem: Skip | None = None
    if not external_id:
        problem = Skip(row=group.line, reason="missing id")
    elif not title:
        problem = Skip(row=group.line, reason="missing title", external_id=external_id)
    try:
        price, compare_at = _prices(row)
    except PriceError as exc:
        price, compare_at = None, None
        problem = problem or Skip(row=group.line, reason="non-numeric price", external_id=external_id, value=str(exc))
    variants: list[VariantPayload] = []
    bad_variations: list[Skip] = []
    for position, (line, variation) in enumerate(group.variations, start=1):
        variant = _variant(line, variation, position, title)
        if isinstance(variant, Skip):
            bad_variations.append(variant)
        else:
            variants.append(variant)
    if problem is not None:
        yield problem
        if group.variations:
            yield Skip(row=group.line, reason="variations of a skipped product", external_id=external_id)
        return
    if bad_variations:
        # Landing the product without some of its variations would delete the stored ones.
        yield from bad_variations
        yield Skip(row=group.line, reason="product with a bad variation row", external_id=external_id)
        return
    if variants:
        priced = [v for v in variants if v.price is not None]
        cheapest = min(priced, key=lambda v: v.price or Decimal(0)) if priced else None
        if price is None and cheapest is not None:
            price, compare_at = cheapest.price, cheapest.compare_at_price
    status, is_published = _status(row)
    images = split_list(row.get("Images"))
    in_stock = parse_bool(row.get("In stock?"))
    inventory = parse_int(row.get("Stock"))
    if variants:
        in_stock = any(v.in_stock for v in variants)
        counts = [v.inventory for v in variants if v.inventory is not None]
        inventory = sum(counts) if counts else inventory
    yield ProductPayload(
        external_id=external_id,
        title=title,
        sku=row.get("SKU", "").strip(),
        url=row.get("External URL", "").strip(),
        description=html_to_text(row.get("Description")) or html_to_text(row.get("Short description")),
        category_path=_category_path(row.get("Categories", "")),
        tags=tuple(split_list(row.get("Tags"))),
        options=tuple({"name": name, "values": split_list(value)} for name, value in _options(row)),
        price=price,
        compare_at_price=compare_at,
        currency=context.currency,
        image_url=images[0] if images else "",
        in_stock=in_stock,
        inventory=inventory,
        status=status,
        is_published=is_published,
        variants=tuple(variants),
    )

"""Big catalogs generated lazily from a WooCommerce product CSV export (`FakeWooCommerce.load_catalog_csv`)."""

import bisect
import contextlib
import csv
import functools
import math
import re
import zlib
from collections import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bitrecs_site.testing.fake_woocommerce.wire import WC_TIME_FORMAT, Filters, slugify, tag_ref

# The product CSV export the benchmarks build big catalogs from (`load_catalog_csv()`).
DEFAULT_CATALOG_CSV = (
    Path(__file__).resolve().parents[4] / "shared" / "data" / "catalogs" / "woocommerce" / ("product_catalog.csv")
)

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


class RowChain(abc.Sequence):
    """Several sequences read as one, sliced without copying the parts (explicit products around a bulk range)."""

    def __init__(self, parts: Sequence[Sequence[Any]]) -> None:
        self.parts = [part for part in parts if len(part)]
        self.length = sum(len(part) for part in self.parts)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, int):
            found = self[item : item + 1] if item >= 0 else self[self.length + item : self.length + item + 1]
            if not found:
                raise IndexError(item)
            return found[0]
        start, stop, _ = item.indices(self.length)
        rows: list[Any] = []
        offset = 0
        for part in self.parts:
            low, high = max(start - offset, 0), min(stop - offset, len(part))
            if low < high:
                rows.extend(part[low:high])
            offset += len(part)
        return rows


@dataclass(frozen=True)
class _VariationTemplate:
    sku: str
    values: tuple[str, ...]
    base: dict[str, Any]


@dataclass(frozen=True)
class _Template:
    """One product of a CSV export, ready to be stamped out with fresh ids."""

    type: str
    name: str
    sku: str
    slug: str
    category_paths: tuple[tuple[str, ...], ...]
    base: dict[str, Any]
    variations: tuple[_VariationTemplate, ...]


@dataclass
class BulkCatalog:
    """Products generated on demand from CSV templates; product i is template i % T, copy i // T + 1.

    Ids are laid out as WordPress would after an import: each product's id is followed by its variations' ids.
    Product i was created and last modified at `base_time` + i seconds (UTC), unless `update_product` changed it.
    """

    templates: tuple[_Template, ...]
    categories: list[list[dict[str, Any]]]
    count: int
    first_id: int
    base_time: datetime  # naive UTC
    base_url: str
    insert_position: int
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    offsets: list[int] = field(init=False)
    span: int = field(init=False)

    def __post_init__(self) -> None:
        self.offsets = []
        position = 0
        for template in self.templates:
            self.offsets.append(position)
            position += 1 + len(template.variations)
        self.span = position

    @property
    def variation_count(self) -> int:
        """How many variations the catalog's products have in all."""
        per_cycle = [len(template.variations) for template in self.templates]
        cycles, rest = divmod(self.count, len(self.templates))
        return cycles * sum(per_cycle) + sum(per_cycle[:rest])

    def product_id(self, index: int) -> int:
        cycle, slot = divmod(index, len(self.templates))
        return self.first_id + cycle * self.span + self.offsets[slot]

    def _locate(self, post_id: int) -> tuple[int, int] | None:
        """(product index, variation position or -1 for the product itself) of a post id of this catalog."""
        relative = post_id - self.first_id
        if relative < 0:
            return None
        cycle, rest = divmod(relative, self.span)
        slot = bisect.bisect_right(self.offsets, rest) - 1
        index = cycle * len(self.templates) + slot
        if index >= self.count:
            return None
        return index, rest - self.offsets[slot] - 1

    def index_of(self, product_id: int) -> int | None:
        found = self._locate(product_id)
        return found[0] if found is not None and found[1] == -1 else None

    def stamp(self, index: int) -> str:
        return (self.base_time + timedelta(seconds=index)).strftime(WC_TIME_FORMAT)

    def product(self, index: int) -> dict[str, Any]:
        cycle, slot = divmod(index, len(self.templates))
        template = self.templates[slot]
        product_id = self.product_id(index)
        suffix = f"-{cycle + 1}" if cycle else ""
        slug = template.slug + suffix
        stamp = self.stamp(index)
        product = dict(template.base)
        product.update(
            id=product_id,
            name=f"{template.name} #{cycle + 1}" if cycle else template.name,
            slug=slug,
            sku=template.sku + suffix if template.sku else "",
            permalink=f"{self.base_url}/product/{slug}/",
            date_created=stamp,
            date_created_gmt=stamp,
            date_modified=stamp,
            date_modified_gmt=stamp,
            categories=self.categories[slot],
            variations=list(range(product_id + 1, product_id + 1 + len(template.variations))),
        )
        product.update(self.overrides.get(index, {}))
        return product

    def variations(self, index: int) -> list[dict[str, Any]]:
        parent = self.product(index)
        cycle = index // len(self.templates)
        suffix = f"-{cycle + 1}" if cycle else ""
        template = self.templates[index % len(self.templates)]
        rows = []
        for position, variation in enumerate(template.variations):
            row = dict(variation.base)
            row.update(
                id=parent["id"] + 1 + position,
                name=f"{parent['name']} - {', '.join(variation.values)}" if variation.values else parent["name"],
                sku=variation.sku + suffix if variation.sku else "",
                permalink=parent["permalink"],
                date_created=parent["date_created"],
                date_created_gmt=parent["date_created_gmt"],
                date_modified=parent["date_modified"],
                date_modified_gmt=parent["date_modified_gmt"],
            )
            rows.append(row)
        return rows

    def variation(self, variation_id: int) -> dict[str, Any] | None:
        found = self._locate(variation_id)
        if found is None or found[1] < 0:
            return None
        return self.variations(found[0])[found[1]]

    def matching(self, filters: Filters) -> Sequence[int]:
        """Indexes of the products that pass `filters`, in id order; a plain range unless products were changed."""
        low, high = 0, self.count
        for after in (filters.modified_after, filters.created_after):
            if after is not None:
                low = max(low, math.floor(self._seconds(after)) + 1)
        for before in (filters.modified_before, filters.created_before):
            if before is not None:
                high = min(high, math.ceil(self._seconds(before)))
        low, high = max(low, 0), max(high, low, 0)
        base_ok = filters.statuses is None or "publish" in filters.statuses
        if not self.overrides and filters.type is None:
            return range(low, high) if base_ok else range(0)
        count = len(self.templates)
        indexes = {
            index
            for index in (range(low, high) if base_ok else range(0))
            if index not in self.overrides
            and (filters.type is None or self.templates[index % count].type == filters.type)
        }
        indexes.update(index for index in self.overrides if filters.matches(self.product(index)))
        return sorted(indexes)

    def _seconds(self, stamp: str) -> float:
        return (datetime.strptime(stamp, WC_TIME_FORMAT) - self.base_time).total_seconds()  # noqa: DTZ007


@functools.lru_cache(maxsize=4)
def catalog_templates(path: str) -> tuple[_Template, ...]:
    """The simple and variable products of a WooCommerce product CSV export, with their variation rows."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    children: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if (row.get("Type") or "").strip() == "variation":
            parent = (row.get("Parent") or "").strip()
            children.setdefault(parent.removeprefix("id:"), []).append(row)
    templates = []
    for row in rows:
        kind = (row.get("Type") or "").strip()
        if kind not in ("simple", "variable"):
            continue
        sku = (row.get("SKU") or "").strip()
        variation_rows = children.get(sku, []) + children.get((row.get("ID") or "").strip(), [])
        templates.append(_template(row, kind, variation_rows if kind == "variable" else []))
    if not templates:
        raise ValueError(f"{path} holds no simple or variable products.")
    return tuple(templates)


def _template(row: dict[str, str], kind: str, variation_rows: list[dict[str, str]]) -> _Template:
    name = (row.get("Name") or "").strip()
    attributes = _csv_attributes(row)
    variations = []
    for position, variation in enumerate(variation_rows, start=1):
        values = tuple(value for _, value in _csv_attributes(variation))
        names = [attribute_name for attribute_name, _ in _csv_attributes(variation)]
        images = _csv_images(variation)
        base = {
            "description": "",
            "status": "publish",
            "purchasable": True,
            "image": images[0] if images else None,
            "attributes": [
                {"id": 0, "name": attribute_name, "option": value}
                for attribute_name, value in zip(names, values, strict=True)
            ],
            "menu_order": position,
            "meta_data": [],
            **_csv_prices(variation),
            **_csv_stock(variation),
        }
        variations.append(_VariationTemplate(sku=(variation.get("SKU") or "").strip(), values=values, base=base))
    published = (row.get("Published") or "1").strip()
    base = {
        "type": kind,
        "status": {"1": "publish", "0": "draft", "-1": "private"}.get(published, "publish"),
        "featured": (row.get("Is featured?") or "0").strip() == "1",
        "catalog_visibility": (row.get("Visibility in catalog") or "visible").strip(),
        "description": row.get("Description") or "",
        "short_description": row.get("Short description") or "",
        "purchasable": True,
        "tags": [tag_ref(zlib.crc32(tag.encode()) % 100_000, tag) for tag in _csv_list(row.get("Tags"))],
        "brands": [],
        "images": _csv_images(row),
        "attributes": [
            {
                "id": 0,
                "name": attribute_name,
                "position": position,
                "visible": True,
                "variation": kind == "variable",
                "options": [value.strip() for value in _UNESCAPED_COMMA.split(values) if value.strip()],
            }
            for position, (attribute_name, values) in enumerate(attributes)
        ],
        "default_attributes": [],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        **_csv_prices(row),
        **_csv_stock(row),
    }
    if variations:
        base.update(variable_parent_fields([variation.base for variation in variations]))
    return _Template(
        type=kind,
        name=name,
        sku=(row.get("SKU") or "").strip(),
        slug=slugify(name) or f"product-{row.get('ID', '')}",
        category_paths=tuple(
            tuple(part.strip() for part in path.split(">") if part.strip())
            for path in (p.replace("\\,", ",") for p in _UNESCAPED_COMMA.split(row.get("Categories") or ""))
            if path.strip()
        ),
        base=base,
        variations=tuple(variations),
    )


def _csv_attributes(row: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for slot in range(1, 10):
        name = (row.get(f"Attribute {slot} name") or "").strip()
        if name:
            found.append((name, (row.get(f"Attribute {slot} value(s)") or "").strip()))
    return found


def _csv_list(value: str | None) -> list[str]:
    return [item.strip() for item in _UNESCAPED_COMMA.split(value or "") if item.strip()]


def _csv_images(row: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"id": zlib.crc32(src.encode()) % 1_000_000, "src": src, "name": src.rsplit("/", 1)[-1], "alt": ""}
        for src in _csv_list(row.get("Images"))
    ]


def _csv_prices(row: dict[str, str]) -> dict[str, Any]:
    regular = (row.get("Regular price") or "").strip()
    sale = (row.get("Sale price") or "").strip()
    return {"price": sale or regular, "regular_price": regular, "sale_price": sale, "on_sale": bool(sale)}


def _csv_stock(row: dict[str, str]) -> dict[str, Any]:
    stock = (row.get("Stock") or "").strip()
    flag = (row.get("In stock?") or "1").strip().lower()
    status = "onbackorder" if flag == "backorder" else "instock" if flag in ("1", "") else "outofstock"
    quantity = int(float(stock)) if stock else None
    return {
        "manage_stock": quantity is not None,
        "stock_quantity": quantity,
        "stock_status": status,
        "backorders": "no",
    }


def variable_parent_fields(variations: Sequence[Any]) -> dict[str, Any]:
    """What WooCommerce reports on a variable parent: the cheapest active price, no regular/sale price of its own."""
    priced = []
    for row in variations:
        if isinstance(row, dict):
            with contextlib.suppress(ArithmeticError, TypeError, ValueError):
                priced.append((Decimal(str(row.get("price"))), str(row.get("price"))))
    in_stock = any(isinstance(row, dict) and row.get("stock_status") != "outofstock" for row in variations)
    return {
        "price": min(priced)[1] if priced else "",
        "regular_price": "",
        "sale_price": "",
        "on_sale": any(isinstance(row, dict) and row.get("on_sale") for row in variations),
        "stock_status": "instock" if in_stock else "outofstock",
    }

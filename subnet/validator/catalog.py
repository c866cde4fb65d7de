"""The validator's view of a request's `context` (BITRECS_PROTOCOL.md §1.9): parsing, cleaning, rewriting."""

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

MIN_CATALOG_SIZE: Final = 6
MAX_CATALOG_SIZE: Final = 100_000
# Localnet refuses a catalog whose duplicate SKUs (sum of count - 1) exceed this share of its size.
CATALOG_DUPE_THRESHOLD: Final = 0.05
_NAME_STRIP: Final = re.compile(r"[^A-Za-z0-9 |-]")


@dataclass(frozen=True)
class CatalogEntry:
    sku: str
    name: str
    price: str


def load_items(context: str) -> list[Any]:
    """Return the decoded context if it is a JSON array, else an empty list."""
    try:
        data = json.loads(context)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the decoder goes
        return []
    return data if isinstance(data, list) else []


def parse_catalog_strict(context: str) -> list[CatalogEntry]:
    """Return the products a public testnet/mainnet validator keeps, sorted by cleaned name (stable).

    An item is kept when `sku`, `name` and `price` (default "0") are all truthy and the name keeps at
    least one character after removing everything outside `[A-Za-z0-9 |-]`; values are `str()`-ed,
    the SKU is not cleaned and duplicates are kept. A context that is not a JSON array of objects
    gives an empty catalog.
    """
    items = load_items(context)
    if not all(isinstance(item, dict) for item in items):
        return []
    entries = []
    for item in items:
        sku, name, price = item.get("sku"), item.get("name"), item.get("price", "0")
        if not (sku and name and price):
            continue
        cleaned = _NAME_STRIP.sub("", str(name)).strip()
        if cleaned:
            entries.append(CatalogEntry(sku=str(sku), name=cleaned, price=str(price)))
    return sorted(entries, key=lambda entry: entry.name)


def parse_catalog_loose(context: str) -> list[CatalogEntry]:
    """Return the products of a localnet request as sent: every object with a SKU, names and prices as given."""
    return [
        CatalogEntry(sku=str(item["sku"]), name=str(item.get("name") or ""), price=str(item.get("price") or ""))
        for item in load_items(context)
        if isinstance(item, dict) and item.get("sku")
    ]


def duplicate_count(skus: Iterable[object]) -> int:
    """Return the sum of (count - 1) over SKUs that appear more than once."""
    return sum(count - 1 for count in Counter(skus).values() if count > 1)


def rewrite_context(entries: Iterable[CatalogEntry]) -> str:
    """Return the context miners receive: compact, ASCII-escaped JSON of the cleaned, sorted products."""
    return json.dumps(
        [{"sku": entry.sku, "name": entry.name, "price": entry.price} for entry in entries], separators=(",", ":")
    )


def catalog_for_network(*, network: str, context: str) -> tuple[list[CatalogEntry], str]:
    """The request's catalog and the context miners get: on localnet as sent, else strictly parsed and rewritten."""
    if network == "localnet":
        return parse_catalog_loose(context), context
    catalog = parse_catalog_strict(context)
    return catalog, rewrite_context(catalog)

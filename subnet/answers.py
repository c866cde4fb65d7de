"""Checks on a list of recommended SKUs and cleaning of the text that comes with them; pure, no Django.

Shared by the gateway (`subnet.services.check_answer`, catalog from the database) and the reference
validator (catalog from the request's context).
"""

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

NAME_MAX_LENGTH: Final = 200
REASON_MAX_LENGTH: Final = 300
PRICE_MAX_LENGTH: Final = 32

_TAG_RE: Final = re.compile(r"<[^>]*>")
_SPACE_RE: Final = re.compile(r"\s+")


def clean_text(value: str, *, max_length: int) -> str:
    """Return text safe to store and show: entities decoded, HTML tags and control/format characters
    removed, whitespace collapsed, clipped to `max_length` characters."""
    text = _TAG_RE.sub(" ", html.unescape(value))
    # Category C: control, format (zero-width, bidi overrides), surrogate, private use, unassigned.
    kept = (" " if char.isspace() else char for char in text if char.isspace() or unicodedata.category(char)[0] != "C")
    text = "".join(kept)
    return _SPACE_RE.sub(" ", text).strip()[:max_length].rstrip()


def find_sku_problem(
    *,
    skus: Sequence[str],
    query_sku: str,
    num_results: int,
    is_known: Callable[[str], bool],
) -> tuple[str, str] | None:
    """Return `(code, message)` for the first reason the SKUs are not an acceptable answer, else None.

    Acceptable: exactly `num_results` SKUs, each known to the catalog, none equal to the query SKU
    (case-insensitive, as the validator scores it), no two equal (case-insensitive).
    """
    if len(skus) != num_results:
        return "wrong_count", f"expected {num_results} results, got {len(skus)}"
    seen: set[str] = set()
    query_key = query_sku.strip().casefold()
    for index, sku in enumerate(skus):
        key = sku.strip().casefold()
        if not key:
            return "empty_sku", f"result {index + 1} has an empty SKU"
        if key == query_key:
            return "query_sku", f"result {index + 1} is the query SKU {query_sku!r}"
        if key in seen:
            return "duplicate_sku", f"result {index + 1} repeats SKU {sku!r}"
        seen.add(key)
        if not is_known(sku):
            return "unknown_sku", f"result {index + 1} has SKU {sku!r}, which is not in the store's catalog"
    return None

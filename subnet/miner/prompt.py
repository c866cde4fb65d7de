"""The miner's prompt (BITRECS_PROTOCOL.md §5), the repair of what a model answers, and the checks on it.

Pure functions, no network: `build_prompt` → the model → `parse_items` (fences, prose, single
quotes, trailing commas, a dict wrapper, truncation) → `select_items` (SKUs from the context only,
unique, not the query, not in the cart, at most N; name and price taken from the context).
"""

import ast
import json
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from subnet.answers import REASON_MAX_LENGTH, clean_text
from subnet.validator.catalog import CatalogEntry

SYSTEM_PROMPT: Final = "You are a helpful assistant."
DEFAULT_PERSONA: Final = "ecommerce_retail_store_manager"
# Short forms of the four public personas; an unknown one falls back to the default.
PERSONAS: Final[dict[str, str]] = {
    "ecommerce_retail_store_manager": "a retail store manager who raises average order value with relevant add-ons",
    "general_recommender": "a helpful shopping assistant who suggests broadly useful complementary items",
    "luxury_concierge": "a luxury concierge who favours premium, high quality complements",
    "discount_recommender": "a value-minded advisor who favours affordable complements and bundles",
}
# What the public miner keeps of a name and a reason (RE_PRODUCT_NAME, RE_REASON).
_NAME_STRIP: Final = re.compile(r"[^A-Za-z0-9 |-]")
_REASON_STRIP: Final = re.compile(r"[^A-Za-z0-9 ]")
_SPACES: Final = re.compile(r"\s+")


@dataclass(frozen=True)
class Selection:
    """The acceptable items of a model's answer, in its order, and why the others were dropped."""

    items: list[dict[str, str]]
    rejected: list[str]


def cart_skus(user: str | None) -> list[str]:
    """Return the SKUs in a user profile's cart (BITRECS_PROTOCOL.md §2), or [] if it is not a profile."""
    try:
        profile = json.loads(user or "")
    except (ValueError, RecursionError):
        return []
    cart = profile.get("cart") if isinstance(profile, dict) else None
    if not isinstance(cart, list):
        return []
    return [str(item["sku"]) for item in cart if isinstance(item, dict) and item.get("sku")]


def _persona(user: str | None) -> str:
    try:
        profile = json.loads(user or "")
        name = profile["site_config"]["profile"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return DEFAULT_PERSONA
    return name if name in PERSONAS else DEFAULT_PERSONA


def build_prompt(
    *,
    query: str,
    entries: Sequence[CatalogEntry],
    num_results: int,
    cart: Sequence[str] = (),
    user: str | None = None,
    today: datetime | None = None,
) -> str:
    """Return the user message asking for `num_results` complementary products chosen only from `entries`."""
    query_key = query.strip().casefold()
    query_name = next((entry.name for entry in entries if entry.sku.casefold() == query_key), "")
    persona = _persona(user)
    catalog = json.dumps(
        [{"sku": entry.sku, "name": entry.name, "price": entry.price} for entry in entries], separators=(",", ":")
    )
    date = (today or datetime.now(UTC)).strftime("%Y-%m-%d")
    example = json.dumps(
        [{"sku": "SKU-1", "name": "Product name", "price": "19", "reason": "One short sentence"}],
        separators=(",", ":"),
    )
    return f"""# SCENARIO
A shopper is viewing the product <sku>{query}</sku> named <sku_info>{query_name}</sku_info>.
Recommend complementary products that go with it. Today is {date}.

# YOUR PERSONA
<persona>{persona}</persona>: {PERSONAS[persona]}.

# TASK
Pick exactly {num_results} unique complementary products from the CONTEXT below.
- Choose ONLY products that appear in the context, using their exact sku.
- Never recommend the viewed product {query}, nor other sizes or colours of the same product.
- Do not recommend products already in the cart.
- The name matters most, then the price; `|` in a name separates a category hierarchy.

# INPUT
<query>{query}</query>
<cart>{json.dumps(list(cart))}</cart>
<context>{catalog}</context>

# OUTPUT REQUIREMENTS
- Answer with a JSON array only: exactly {num_results} objects with the keys "sku", "name", "price", "reason".
- Use double quotes, no text before or after the array, no duplicates.
- "reason" is one short sentence without punctuation explaining why it complements the product.
- Order by relevance.
Example: {example}
"""


# What `_scan` says about each character.
_CODE: Final = 0
_OPEN: Final = 1
_BODY: Final = 2
_CLOSE: Final = 3


def _scan(text: str, start: int, end: int) -> Iterator[tuple[int, str, int]]:
    """Yield `(index, char, kind)` over text[start:end], tracking "..." and '...' strings.

    A single quote only closes a string when the next non-space character is one of `,:}]` (or the
    end), so apostrophes inside single-quoted values (`'it's'`) stay part of the value.
    """
    quote = ""
    escaped = False
    for index in range(start, end):
        char = text[index]
        if not quote:
            if char in "\"'":
                quote = char
                yield index, char, _OPEN
            else:
                yield index, char, _CODE
        elif escaped:
            escaped = False
            yield index, char, _BODY
        elif char == "\\":
            escaped = True
            yield index, char, _BODY
        elif char == quote and (quote == '"' or _closes_single(text, index + 1, end)):
            quote = ""
            yield index, char, _CLOSE
        else:
            yield index, char, _BODY


def _closes_single(text: str, index: int, end: int) -> bool:
    while index < end and text[index].isspace():
        index += 1
    return index >= end or text[index] in ",:}]"


def _matching_brace(text: str, start: int) -> int | None:
    """Return the index of the `}` closing the `{` at `start`, or None if the object is truncated."""
    depth = 0
    for index, char, kind in _scan(text, start, len(text)):
        if kind != _CODE:
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index if char == "}" else None
    return None


def _normalize(segment: str) -> str:
    """Return the segment as strict JSON text: single-quoted strings double-quoted, trailing commas dropped."""
    out: list[str] = []
    quote = ""
    for index, char, kind in _scan(segment, 0, len(segment)):
        if kind == _OPEN:
            quote = char
            out.append('"')
        elif kind == _CLOSE:
            out.append('"')
        elif kind == _BODY:
            if quote == "'" and char == '"':
                out.append('\\"')
            elif quote == "'" and char == "\\" and segment[index + 1 : index + 2] == "'":
                continue  # \' is not a JSON escape; the quote itself follows as body
            else:
                out.append(char)
        elif char == "," and segment[index + 1 :].lstrip()[:1] in ("}", "]"):
            continue  # trailing comma
        else:
            out.append(char)
    return "".join(out)


def _load_object(segment: str) -> dict[str, Any] | None:
    for candidate in (segment, _normalize(segment)):
        try:
            value = json.loads(candidate)
        except RecursionError:
            return None  # nests deeper than any product object: no item in it
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    try:  # a Python-literal dict (True/None, mixed quotes)
        value = ast.literal_eval(segment)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # TypeError: {{}} is an unhashable set
        return None
    return value if isinstance(value, dict) else None


def parse_items(text: str) -> list[dict[str, Any]]:
    """Return the complete `{sku, ...}` objects in a model's answer, in order.

    Tolerates code fences and prose around the JSON, single quotes, trailing commas, a wrapper
    object (`{"recommendations": [...]}`) and a truncated answer (the complete items are kept).
    An object without `sku` is searched for nested items instead.
    """
    items: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        end = _matching_brace(text, index)
        value = _load_object(text[index : end + 1]) if end is not None else None
        if value is not None and "sku" in value:
            items.append(value)
            index = text.find("{", end + 1 if end is not None else index + 1)
        else:
            index = text.find("{", index + 1)
    return items


def clean_reason(value: Any, *, fallback: str) -> str:
    """Return a reason as the public miner keeps it: letters, digits and spaces, one line, clipped."""
    text = clean_text(str(value or ""), max_length=REASON_MAX_LENGTH)
    text = _SPACES.sub(" ", _REASON_STRIP.sub("", text)).strip()
    return text or fallback


def clean_name(name: str) -> str:
    """Return a product name as the public miner keeps it (`[A-Za-z0-9 |-]`), or as given if nothing is left."""
    cleaned = _SPACES.sub(" ", _NAME_STRIP.sub("", name)).strip()
    return cleaned or name


def select_items(
    *,
    items: Sequence[Any],
    entries: Sequence[CatalogEntry],
    query: str,
    num_results: int,
    avoid: Collection[str] = (),
) -> Selection:
    """Return the first `num_results` acceptable items, rebuilt from the context (its SKU, name and price).

    Acceptable: the SKU is in the context (case-insensitive), not the query, not in `avoid` (the
    cart) and not already chosen. The model's `reason` is kept, cleaned.
    """
    catalog: dict[str, CatalogEntry] = {}
    for product in entries:
        catalog.setdefault(product.sku.strip().casefold(), product)
    query_key = query.strip().casefold()
    avoid_keys = {sku.strip().casefold() for sku in avoid}
    chosen: set[str] = set()
    selected: list[dict[str, str]] = []
    rejected: list[str] = []
    for item in items:
        if len(selected) >= num_results:
            break
        sku = str(item.get("sku") or "").strip() if isinstance(item, dict) else ""
        key = sku.casefold()
        entry = catalog.get(key)
        if not key:
            rejected.append("missing sku")
        elif entry is None:
            rejected.append(f"unknown sku {sku!r}")
        elif key == query_key:
            rejected.append(f"query sku {sku!r}")
        elif key in chosen:
            rejected.append(f"duplicate sku {sku!r}")
        elif key in avoid_keys:
            rejected.append(f"cart sku {sku!r}")
        else:
            chosen.add(key)
            selected.append(
                {
                    "sku": entry.sku,
                    "name": clean_name(entry.name),
                    "price": entry.price,
                    "reason": clean_reason(item.get("reason"), fallback=f"Complements {clean_name(entry.name)}"),
                }
            )
    return Selection(items=selected, rejected=rejected)

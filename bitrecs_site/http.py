"""What every client of an outside HTTP API shares: the timeout pair, Retry-After, error text, ids and JSON readers.

The platform clients (merchants/clients, catalog_sync/clients) and the validator client (subnet/client.py) build on
these, so each rule is written once: bitrecs_site is below every app, and this module imports none of them.

- `timeouts(read=…)`: the (connect, read) pair requests takes; connecting never waits longer than reading.
- `retry_after_seconds(value)`: a Retry-After header in either form RFC 9110 §10.2.3 allows (delta-seconds or an
  HTTP-date), as seconds from now; None when absent or unreadable.
- `json_body`, `error_fields`, `error_text`: a short reason out of an error answer, never a whole page.
- `shopify_gid_number`, `platform_id`: "gid://shopify/Product/42" and 42 and "42" all read as "42".
- `json_get`, `json_str`, `json_list`: lenient readers of decoded JSON (a wrong type reads as absent). The strict
  ones, which turn a wrong type into a skipped record, are catalog_sync.clients' `string_field` and friends.
"""

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import requests

CONNECT_TIMEOUT_SECONDS: Final = 5.0
ERROR_TEXT_LIMIT: Final = 300
# A Shopify global id: gid://shopify/<Type>/<number>, optionally with a query (type and number are groups).
SHOPIFY_GID_PATTERN: Final = r"gid://shopify/([A-Za-z]+)/(\d+)"
_GID: Final = re.compile(SHOPIFY_GID_PATTERN + r"(?:\?.*)?")


def timeouts(*, read: float, connect: float = CONNECT_TIMEOUT_SECONDS) -> tuple[float, float]:
    """Return the (connect, read) timeout pair for requests; connecting is never allowed longer than reading."""
    return (min(connect, read), read)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a Retry-After value asks to wait (delta-seconds or an HTTP-date); None if absent or bad."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(tz=UTC))).total_seconds())


def json_body(response: requests.Response) -> Any:
    """Return the decoded JSON body of an answer, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def error_fields(response: requests.Response, *, fields: Sequence[str], limit: int = ERROR_TEXT_LIMIT) -> str:
    """Return the named fields of an error answer's JSON object joined by " - ", or "" when it has none of them."""
    body = json_body(response)
    if not isinstance(body, Mapping):
        return ""
    parts = [str(body[name]) for name in fields if body.get(name) not in (None, "", [], {})]
    return " - ".join(parts)[:limit]


def error_text(response: requests.Response, *, fields: Sequence[str], limit: int = ERROR_TEXT_LIMIT) -> str:
    """Return a short reason for an error answer: its named JSON fields, else its JSON, else its text or reason."""
    found = error_fields(response, fields=fields, limit=limit)
    if found:
        return found
    body = json_body(response)
    if body is not None:
        return str(body)[:limit]
    return (response.text[:limit] or response.reason or "no detail")[:limit]


def shopify_gid_number(value: Any) -> str:
    """Return the number of a Shopify global id ("gid://shopify/Product/42" gives "42"), or "" for anything else."""
    if not isinstance(value, str):
        return ""
    match = _GID.fullmatch(value.strip())
    return match.group(2) if match else ""


def platform_id(value: Any) -> str:
    """Return an id as text: an integer, a non-blank string, or a Shopify gid's number; "" for anything else."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        return ""
    text = value.strip()
    return shopify_gid_number(text) if text.startswith("gid://") else text


def json_get(value: Any, *keys: str) -> Any:
    """Return value[k1][k2]… of decoded JSON, or None as soon as a level is not an object or lacks the key."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def json_str(value: Any, key: str) -> str:
    """Return the stripped string at `key` of a JSON object, or "" when it is absent or not a string."""
    found = json_get(value, key)
    return found.strip() if isinstance(found, str) else ""


def json_list(value: Any, key: str | None = None) -> list[Any]:
    """Return the list at `key` of a JSON object (or `value` itself without a key), or [] when it is not a list."""
    found = value if key is None else json_get(value, key)
    return found if isinstance(found, list) else []

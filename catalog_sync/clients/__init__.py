"""Platform clients: one small class per platform that speaks its API and returns catalog_sync.types payloads.

Raw JSON never leaves this package. What the clients share lives here: the `Page` of results a paginated call
returns, the `SkippedRecord` a client reports instead of crashing on a malformed record, the `ThrottleStatus`
of a cost-based rate limit, `PlatformUnauthorized`, the error that means the store must be re-authorised, and
the strict JSON field readers (`string_field`, `list_field`, `optional_int`, `price_field`), which raise
`Malformed` on a wrong type; the lenient ones and the HTTP rules every client shares are in bitrecs_site.http.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from catalog_sync.text import PriceError, parse_price
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.exceptions import PlatformUnauthorized

T = TypeVar("T")


@dataclass(frozen=True)
class SkippedRecord:
    """A record the client could not turn into a payload; `external_id` is empty when even the id is unreadable."""

    external_id: str
    reason: str


@dataclass(frozen=True)
class ThrottleStatus:
    """The state of a cost-based leaky bucket after a call (Shopify's `extensions.cost`)."""

    maximum_available: float
    currently_available: float
    restore_rate: float
    requested_cost: float | None = None
    actual_cost: float | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paginated listing: `next_cursor` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None
    skipped: tuple[SkippedRecord, ...] = ()
    throttle: ThrottleStatus | None = None


class Malformed(ValueError):
    """A record that cannot become a payload; the message is the reason reported in SkippedRecord."""


# The longest platform id a row keeps (catalog_sync.models.EXTERNAL_ID_MAX_LENGTH, the varchar of external_id).
EXTERNAL_ID_MAX_LENGTH = 255
_Payload = TypeVar("_Payload", ProductPayload, OrderLinePayload)


def checked_ids(payload: _Payload) -> _Payload:
    """The payload, or Malformed when one of its ids is longer than its column (PostgreSQL would refuse the whole
    batch): the mappers report such a record as skipped."""
    if isinstance(payload, ProductPayload):
        ids = [("product id", payload.external_id)]
        ids += [("variant id", variant.external_id) for variant in payload.variants or ()]
    else:
        ids = [
            ("order id", payload.order_id),
            ("line id", payload.line_id),
            ("product id", payload.product_external_id),
            ("variant id", payload.variant_external_id),
        ]
    for what, value in ids:
        if len(value) > EXTERNAL_ID_MAX_LENGTH:
            raise Malformed(f"{what} is longer than {EXTERNAL_ID_MAX_LENGTH} characters ({len(value)})")
    return payload


def optional_int(value: Any, what: str) -> int | None:
    """An integer field (int or numeric string), None when absent; Malformed otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Malformed(f"{what} is not an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise Malformed(f"{what} is not an integer: {value!r}") from exc


def price_field(value: Any, what: str) -> Decimal | None:
    """A price field (string or number), None when absent; Malformed when it is not a number."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise Malformed(f"{what} is not a number")
    try:
        return parse_price(value)
    except PriceError as exc:
        raise Malformed(f"{what} is not a number: {value!r}") from exc


def string_field(node: Any, key: str) -> str:
    """A string field of a JSON object, stripped; "" when absent; Malformed when it is not a string."""
    value = node.get(key) if isinstance(node, Mapping) else None
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{key} is not a string")
    return value.strip()


def list_field(node: Mapping[str, Any], key: str) -> list[Any]:
    """A list field of a JSON object; [] when absent or null; Malformed when it is not a list."""
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{key} is not a list")
    return value


__all__ = [
    "EXTERNAL_ID_MAX_LENGTH",
    "Malformed",
    "Page",
    "PlatformUnauthorized",
    "SkippedRecord",
    "ThrottleStatus",
    "checked_ids",
    "list_field",
    "optional_int",
    "price_field",
    "string_field",
]

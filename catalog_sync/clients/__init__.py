"""Platform clients: one small class per platform that speaks its API and returns catalog_sync.types payloads.

Raw JSON never leaves this package. What the clients share lives here: the `Page` of results a paginated call
returns, the `SkippedRecord` a client reports instead of crashing on a malformed record, the `ThrottleStatus`
of a cost-based rate limit, and `PlatformUnauthorized`, the error that means the store must be re-authorised.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

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


__all__ = ["Page", "PlatformUnauthorized", "SkippedRecord", "ThrottleStatus"]

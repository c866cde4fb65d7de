"""Shopify's cost bucket as the client last saw it, and how long to wait before the next query can be afforded.

Shopify charges each GraphQL query's requested cost up front from a leaky bucket per app and shop, and reports
the bucket in `extensions.cost.throttleStatus`. `CostBucket` remembers the last report and what each query shape
(document and page size) cost, so the client waits just long enough instead of being throttled. The state is
plain data (`to_state` / `from_state`): a sync keeps it per store between its steps, which run as separate tasks,
and waits for the bucket by the next task's countdown rather than by sleeping in a worker.
"""

import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bitrecs_site.http import json_get
from catalog_sync.clients import ThrottleStatus
from catalog_sync.clients.shopify.mapping import optional_float

MIN_THROTTLE_BACKOFF_SECONDS = 1.0
# Requested costs remembered per query shape, to pace the next call of the same shape.
MAX_REMEMBERED_COSTS = 32
# One point of margin: currentlyAvailable is rounded and refills continuously.
_MARGIN_POINTS = 1.0


def cost_key(query: str, first: Any) -> str:
    """Return the key a query shape's cost is remembered under (the document's checksum and its page size)."""
    return f"{zlib.crc32(query.encode()):08x}:{first}"


@dataclass
class CostBucket:
    """The bucket as last reported (`throttle`, at wall-clock `seen_at`) and the cost each query shape asked for."""

    throttle: ThrottleStatus | None = None
    seen_at: float = 0.0
    last_requested_cost: float | None = None
    requested_costs: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def record(self, body: Mapping[str, Any], key: str) -> None:
        """Remember the bucket and the requested cost a GraphQL answer reports (an answer without them is ignored)."""
        cost = json_get(body, "extensions", "cost")
        status = json_get(cost, "throttleStatus")
        if not isinstance(status, Mapping):
            return
        try:
            requested = optional_float(json_get(cost, "requestedQueryCost"))
            self.throttle = ThrottleStatus(
                maximum_available=float(status["maximumAvailable"]),
                currently_available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
                requested_cost=requested,
                actual_cost=optional_float(json_get(cost, "actualQueryCost")),
            )
        except (KeyError, TypeError, ValueError):
            return
        self.seen_at = self.clock()
        if requested is not None:
            self.last_requested_cost = requested
            if len(self.requested_costs) >= MAX_REMEMBERED_COSTS and key not in self.requested_costs:
                self.requested_costs.clear()
            self.requested_costs[key] = requested

    def available_now(self) -> float | None:
        """Return the points the bucket should hold now (the last report refilled at restoreRate), or None."""
        throttle = self.throttle
        if throttle is None:
            return None
        elapsed = max(0.0, self.clock() - self.seen_at)
        return min(throttle.maximum_available, throttle.currently_available + elapsed * throttle.restore_rate)

    def wait_for(self, key: str) -> float:
        """Return the seconds until the bucket holds what this query shape cost last time (0 when it already does)."""
        throttle = self.throttle
        cost = self.requested_costs.get(key, self.last_requested_cost)
        available = self.available_now()
        if throttle is None or cost is None or available is None or throttle.restore_rate <= 0:
            return 0.0
        needed = min(cost, throttle.maximum_available)
        if available >= needed:
            return 0.0
        return (needed - available + _MARGIN_POINTS) / throttle.restore_rate

    def throttle_backoff(self) -> float:
        """Return the seconds to wait after a THROTTLED answer: until the refused query's cost has refilled."""
        throttle = self.throttle
        if throttle is None or throttle.restore_rate <= 0 or throttle.requested_cost is None:
            return MIN_THROTTLE_BACKOFF_SECONDS
        deficit = min(throttle.requested_cost, throttle.maximum_available) - throttle.currently_available
        return max(MIN_THROTTLE_BACKOFF_SECONDS, deficit / throttle.restore_rate)

    def to_state(self) -> dict[str, Any]:
        """Return the bucket as JSON-safe data (for a cache between a sync's steps)."""
        throttle = self.throttle
        return {
            "throttle": None
            if throttle is None
            else {
                "maximum_available": throttle.maximum_available,
                "currently_available": throttle.currently_available,
                "restore_rate": throttle.restore_rate,
                "requested_cost": throttle.requested_cost,
                "actual_cost": throttle.actual_cost,
            },
            "seen_at": self.seen_at,
            "last_requested_cost": self.last_requested_cost,
            "requested_costs": dict(self.requested_costs),
        }

    @classmethod
    def from_state(cls, state: Any, *, clock: Callable[[], float] = time.time) -> "CostBucket":
        """Return a bucket from `to_state` data; anything unreadable gives an empty bucket (the client then learns)."""
        bucket = cls(clock=clock)
        if not isinstance(state, Mapping):
            return bucket
        try:
            throttle = state.get("throttle")
            bucket.throttle = None if throttle is None else ThrottleStatus(**throttle)
            bucket.seen_at = float(state.get("seen_at") or 0.0)
            last = state.get("last_requested_cost")
            bucket.last_requested_cost = None if last is None else float(last)
            costs = state.get("requested_costs") or {}
            bucket.requested_costs = {str(key): float(value) for key, value in dict(costs).items()}
        except (TypeError, ValueError):
            return cls(clock=clock)
        return bucket

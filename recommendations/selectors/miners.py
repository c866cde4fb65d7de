"""Reads for a miner's portal page: the storefront actions attributed to its answers, from the daily rollups."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from recommendations.models import DailyRollup

_COUNTS = ("views", "impressions", "clicks", "add_to_carts", "purchases", "orders")


@dataclass(frozen=True)
class MinerDay:
    """One UTC day of what the network lists of one miner did, over every store (counts of events)."""

    day: date
    impressions: int = 0
    clicks: int = 0
    views: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    orders: int = 0
    revenue: Decimal = Decimal("0")


def list_miner_days(*, miner_hotkey: str, since: date) -> list[MinerDay]:
    """Per day from `since` (oldest first), the rollups of every store for lists attributed to `miner_hotkey`."""
    if not miner_hotkey:
        return []
    rows = (
        DailyRollup.objects.filter(miner_hotkey=miner_hotkey, day__gte=since)
        .values("day")
        .annotate(**{name: Sum(name) for name in _COUNTS}, total_revenue=Sum("revenue"))
        .order_by("day")
    )
    return [
        MinerDay(
            day=row["day"],
            **{name: int(row[name] or 0) for name in _COUNTS},
            revenue=row["total_revenue"] or Decimal("0"),
        )
        for row in rows
    ]

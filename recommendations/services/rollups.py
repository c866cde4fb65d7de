"""Daily rollups: what each store's recommendations did per UTC day, placement, source, arm and miner.

The portal reads only DailyRollup. A day is recomputed whole (its rows replaced in one transaction), so the
beat task may run it as often as it likes and a day can be re-run after a late event or a refund. Event counts
come from ShopperEvent while the day's raw events are kept (EVENTS_RETENTION_DAYS); for an older day only the
attribution columns are recomputed and the stored event counts are kept.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from bitrecs_site.db import delete_in_batches
from recommendations.models import Arm, AttributedLine, DailyRollup, EventType, OrderSummary, ShopperEvent, VisitorDay

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = {
    EventType.VIEW: "views",
    EventType.IMPRESSION: "impressions",
    EventType.CLICK: "clicks",
    EventType.ADD_TO_CART: "add_to_carts",
    EventType.PURCHASE: "purchases",
}
_EVENT_FIELDS = (*_EVENT_COLUMNS.values(), "exposed_sessions")
_GROUP = ("store_id", "placement", "source", "arm", "miner_hotkey")
_VISITOR = ("store_id", "session_id", "arm")
_VISITOR_EVENTS = ("exposed", "impressions", "clicks", "add_to_carts", "purchases")


@dataclass
class _Figures:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_EVENT_FIELDS, 0))
    orders: int = 0
    revenue: Decimal = Decimal("0")
    assisted_orders: int = 0
    assisted_revenue: Decimal = Decimal("0")


def day_bounds(*, day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def events_kept_for(*, day: date) -> bool:
    """True while the day's raw events are still kept (one day of slack for the prune that runs at night)."""
    oldest = timezone.now() - timedelta(days=int(settings.EVENTS_RETENTION_DAYS) + 1)
    return day >= oldest.date()


def _oldest_visitor_day() -> date:
    """The first day whose per-visitor rows (VisitorDay) are kept: EXPERIMENT_VISITOR_RETENTION_DAYS ago."""
    return (timezone.now() - timedelta(days=int(settings.EXPERIMENT_VISITOR_RETENTION_DAYS))).date()


def visitor_days_kept_for(*, day: date) -> bool:
    """True while the day's per-visitor rows are kept."""
    return day >= _oldest_visitor_day()


def prune_visitor_days() -> int:
    """Delete the per-visitor rows of days past EXPERIMENT_VISITOR_RETENTION_DAYS; returns how many went."""
    return delete_in_batches(VisitorDay.objects.filter(day__lt=_oldest_visitor_day()))


def rollup_day(*, day: date, store_id: int | None = None) -> int:
    """Recompute one day's rollups for one store (or every store with activity that day); returns rows written."""
    start, end = day_bounds(day=day)
    groups: dict[tuple[Any, ...], _Figures] = defaultdict(_Figures)
    existing = DailyRollup.objects.filter(day=day)
    lines = AttributedLine.objects.filter(ordered_at__gte=start, ordered_at__lt=end)
    if store_id is not None:
        existing = existing.filter(store_id=store_id)
        lines = lines.filter(store_id=store_id)
    if events_kept_for(day=day):
        _count_events(groups, start=start, end=end, store_id=store_id)
    else:
        for row in existing.values(*_GROUP, *_EVENT_FIELDS):
            groups[tuple(row[k] for k in _GROUP)].counts = {k: row[k] for k in _EVENT_FIELDS}
    for row in (
        lines.values(*_GROUP, "kind")
        .annotate(orders=Count("order_id", distinct=True), revenue=Sum(F("gross") - F("refunded")))
        .order_by()
    ):
        figures = groups[tuple(row[k] for k in _GROUP)]
        if row["kind"] == AttributedLine.Kind.ASSISTED:
            figures.assisted_orders, figures.assisted_revenue = row["orders"], row["revenue"] or Decimal("0")
        else:
            figures.orders, figures.revenue = row["orders"], row["revenue"] or Decimal("0")
    now = timezone.now()
    rows = [
        DailyRollup(
            day=day,
            computed_at=now,
            orders=figures.orders,
            revenue=figures.revenue,
            assisted_orders=figures.assisted_orders,
            assisted_revenue=figures.assisted_revenue,
            **dict(zip(_GROUP, key, strict=True)),
            **figures.counts,
        )
        for key, figures in sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0]))
    ]
    # Past its retention a day keeps no per-visitor rows, even when a refund recomputes its revenue.
    visitors = _visitor_days(day=day, start=start, end=end, store_id=store_id) if visitor_days_kept_for(day=day) else []
    old_visitors = VisitorDay.objects.filter(day=day)
    if store_id is not None:
        old_visitors = old_visitors.filter(store_id=store_id)
    with transaction.atomic():
        existing.delete()
        DailyRollup.objects.bulk_create(rows, batch_size=1000)
        old_visitors.delete()
        VisitorDay.objects.bulk_create(visitors, batch_size=1000)
    logger.info(
        "recommendations.rollup_day",
        extra={"day": day.isoformat(), "store_id": store_id, "rows": len(rows), "visitors": len(visitors)},
    )
    return len(rows)


def _visitor_days(*, day: date, start: datetime, end: datetime, store_id: int | None) -> list[VisitorDay]:
    """The day's rows per (visitor, arm): event counts (kept ones for a pruned day) and the orders they placed."""
    visitors: dict[tuple[Any, ...], dict[str, Any]] = {}
    if events_kept_for(day=day):
        events = ShopperEvent.objects.filter(received_at__gte=start, received_at__lt=end).exclude(session_id="")
        events = events.exclude(arm="")
        if store_id is not None:
            events = events.filter(store_id=store_id)
        for row in (
            events.values(*_VISITOR)
            .annotate(
                events=Count("id"),
                impressions=Count("id", filter=Q(type=EventType.IMPRESSION)),
                clicks=Count("id", filter=Q(type=EventType.CLICK)),
                add_to_carts=Count("id", filter=Q(type=EventType.ADD_TO_CART)),
                purchases=Count("id", filter=Q(type=EventType.PURCHASE)),
            )
            .order_by()
        ):
            exposed = row["impressions"] > 0 or (row["arm"] == Arm.HOLDOUT and row["events"] > 0)
            visitors[tuple(row[k] for k in _VISITOR)] = {
                "exposed": exposed,
                **{k: row[k] for k in _VISITOR_EVENTS if k != "exposed"},
            }
    else:
        kept = VisitorDay.objects.filter(day=day)
        if store_id is not None:
            kept = kept.filter(store_id=store_id)
        for row in kept.values(*_VISITOR, *_VISITOR_EVENTS):
            visitors[tuple(row[k] for k in _VISITOR)] = {k: row[k] for k in _VISITOR_EVENTS}
    orders = OrderSummary.objects.filter(ordered_at__gte=start, ordered_at__lt=end).exclude(session_id="")
    orders = orders.exclude(arm="")
    if store_id is not None:
        orders = orders.filter(store_id=store_id)
    bought: dict[tuple[Any, ...], tuple[int, Decimal]] = {}
    for row in orders.values(*_VISITOR).annotate(orders=Count("id"), revenue=Sum("revenue")).order_by():
        bought[tuple(row[k] for k in _VISITOR)] = (row["orders"], row["revenue"] or Decimal("0"))
    return [
        VisitorDay(
            day=day,
            **dict(zip(_VISITOR, key, strict=True)),
            **visitors.get(key, {}),
            orders=bought.get(key, (0, Decimal("0")))[0],
            revenue=bought.get(key, (0, Decimal("0")))[1],
        )
        for key in sorted(visitors.keys() | bought.keys(), key=lambda key: tuple(str(v) for v in key))
    ]


def _count_events(
    groups: dict[tuple[Any, ...], _Figures], *, start: datetime, end: datetime, store_id: int | None
) -> None:
    events = ShopperEvent.objects.filter(received_at__gte=start, received_at__lt=end)
    if store_id is not None:
        events = events.filter(store_id=store_id)
    exposed = Q(type=EventType.IMPRESSION) | Q(arm=Arm.HOLDOUT)  # the holdout arm shows nothing to see
    rows = (
        events.values(*_GROUP)
        .annotate(
            **{
                column: Count("id", filter=Q(type=kind))
                for kind, column in _EVENT_COLUMNS.items()  # one pass over the day's events
            },
            exposed_sessions=Count("session_id", filter=exposed & ~Q(session_id=""), distinct=True),
        )
        .order_by()
    )
    for row in rows:
        groups[tuple(row[k] for k in _GROUP)].counts = {k: row[k] for k in _EVENT_FIELDS}

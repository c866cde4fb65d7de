"""Daily rollups (the portal's only figures) and the retention of raw events."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
import time_machine

from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import AttributedLine, DailyRollup, OrderSummary, ShopperEvent, VisitorDay
from recommendations.services.rollups import rollup_day
from recommendations.tasks import prune_events_task, rollup_day_task, rollup_recent_days_task

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_ids = count(1)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(site_key="sk_roll")


def ev(store: Store, kind: str, *, at: datetime = NOON, session: str = "", **kw: Any) -> None:
    ShopperEvent.objects.create(
        store=store,
        event_id=f"e{next(_ids)}",
        type=kind,
        occurred_at=at,
        received_at=at,
        sku="SKU",
        session_id=session,
        **kw,
    )


def sold(store: Store, *, revenue: str, refunded: str = "0", kind: str = "deterministic", order: str = "", **kw: Any):
    n = next(_ids)
    AttributedLine.objects.create(
        store=store,
        order_id=order or f"o{n}",
        line_id=f"l{n}",
        ordered_at=NOON,
        kind=kind,
        gross=Decimal(revenue),
        refunded=Decimal(refunded),
        **kw,
    )


def rollups() -> list[tuple[Any, ...]]:
    return list(
        DailyRollup.objects.order_by("placement", "source", "arm", "miner_hotkey").values_list(
            "day", "placement", "source", "arm", "miner_hotkey", "views", "impressions", "clicks", "add_to_carts",
            "purchases", "exposed_sessions", "orders", "revenue", "assisted_orders", "assisted_revenue",
        )
    )  # fmt: skip


NET: dict[str, Any] = {"placement": "product", "source": "network", "arm": "network", "miner_hotkey": "5Miner"}


@time_machine.travel(datetime(2026, 11, 21, 1, 0, tzinfo=UTC), tick=False)
def test_a_day_is_rolled_up_per_placement_source_arm_and_miner(store: Store) -> None:
    ev(store, "impression", session="s1", **NET)
    ev(store, "impression", session="s1", **NET)
    ev(store, "impression", session="s2", **NET)
    ev(store, "impression", **NET)  # anonymous: counted, not a session
    ev(store, "click", session="s1", **NET)
    ev(store, "view", session="s1", **NET)
    ev(store, "add_to_cart", session="s1", **NET)
    ev(store, "impression", session="s3", placement="cart", source="local", arm="local")
    ev(store, "view", session="s9", arm="holdout")  # holdout: exposed without an impression
    ev(store, "impression", at=NOON + timedelta(days=1), session="s1", **NET)  # the next day
    sold(store, revenue="40.00", refunded="10.00", order="A", **NET)
    sold(store, revenue="5.00", order="A", **NET)  # the same order: one order
    sold(store, revenue="7.00", kind="assisted", placement="product", source="network", arm="network")
    other = StoreFactory.create(site_key="sk_other")
    ev(other, "impression", session="x", **NET)

    written = rollup_day(day=DAY, store_id=store.id)

    assert written == 4
    assert rollups() == [
        (DAY, "", "", "holdout", "", 1, 0, 0, 0, 0, 1, 0, Decimal("0.00"), 0, Decimal("0.00")),
        (DAY, "cart", "local", "local", "", 0, 1, 0, 0, 0, 1, 0, Decimal("0.00"), 0, Decimal("0.00")),
        (DAY, "product", "network", "network", "", 0, 0, 0, 0, 0, 0, 0, Decimal("0.00"), 1, Decimal("7.00")),
        (DAY, "product", "network", "network", "5Miner", 1, 4, 1, 1, 0, 2, 1, Decimal("35.00"), 0, Decimal("0.00")),
    ]


@time_machine.travel(datetime(2026, 11, 21, 1, 0, tzinfo=UTC), tick=False)
def test_rolling_a_day_up_again_gives_the_same_rows_and_follows_late_changes(store: Store) -> None:
    ev(store, "impression", session="s1", **NET)
    rollup_day(day=DAY)
    first = rollups()
    rollup_day(day=DAY)
    assert rollups() == first

    ev(store, "click", session="s1", **NET)  # a late event
    rollup_day_task(DAY.isoformat(), store.id)

    assert [(r[6], r[7]) for r in rollups()] == [(1, 1)]


def test_an_old_day_keeps_its_event_counts_when_a_refund_rewrites_its_revenue(store: Store) -> None:
    with time_machine.travel(datetime(2026, 11, 21, 1, 0, tzinfo=UTC), tick=False):
        ev(store, "impression", session="s1", **NET)
        sold(store, revenue="40.00", **NET)
        rollup_day(day=DAY)
    with time_machine.travel(datetime(2027, 6, 1, 1, 0, tzinfo=UTC), tick=False):
        assert prune_events_task() == 1  # past EVENTS_RETENTION_DAYS: the raw events go
        AttributedLine.objects.update(refunded=Decimal("15.00"))
        rollup_day(day=DAY)

    assert [(r[6], r[10], r[11], r[12]) for r in rollups()] == [(1, 1, 1, Decimal("25.00"))]


def test_the_beat_task_rolls_up_yesterday_and_today(store: Store) -> None:
    with time_machine.travel(datetime(2026, 11, 21, 9, 0, tzinfo=UTC), tick=False):
        ev(store, "impression", session="s1", **NET)  # yesterday (Nov 20)
        ev(store, "impression", at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC), session="s1", **NET)
        ev(store, "impression", at=datetime(2026, 11, 19, 8, 0, tzinfo=UTC), session="s1", **NET)

        assert rollup_recent_days_task() == 2

    assert sorted(DailyRollup.objects.values_list("day", flat=True)) == [date(2026, 11, 20), date(2026, 11, 21)]


def test_events_older_than_the_retention_are_pruned_and_newer_ones_kept(store: Store, settings: Any) -> None:
    settings.EVENTS_RETENTION_DAYS = 10
    with time_machine.travel(datetime(2026, 12, 1, 5, 0, tzinfo=UTC), tick=False):
        ev(store, "click", at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC))  # 11 days old
        ev(store, "click", at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))  # 9 days old

        assert prune_events_task() == 1

    assert list(ShopperEvent.objects.values_list("received_at", flat=True)) == [
        datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    ]


def test_per_visitor_rows_go_after_their_retention_and_a_late_refund_does_not_bring_them_back(
    store: Store, settings: Any
) -> None:
    # given: two days of an experiment's visitors (an impression each, and an order by the second day's visitor)
    settings.EXPERIMENT_VISITOR_RETENTION_DAYS = 30
    later = NOON + timedelta(days=5)
    with time_machine.travel(datetime(2026, 11, 26, 1, 0, tzinfo=UTC), tick=False):
        ev(store, "impression", session="s1", **NET)
        ev(store, "impression", at=later, session="s2", **NET)
        OrderSummary.objects.create(
            store=store, order_id="o-s2", ordered_at=later, revenue=Decimal("30.00"), session_id="s2", arm="network"
        )
        rollup_day(day=DAY)
        rollup_day(day=later.date())
    assert sorted(VisitorDay.objects.values_list("day", "session_id")) == [(DAY, "s1"), (later.date(), "s2")]

    # when: 33 days after the first day (the second is 28 days old), the nightly prune runs
    with time_machine.travel(datetime(2026, 12, 23, 5, 0, tzinfo=UTC), tick=False):
        prune_events_task()

    # then: the first day's visitors are gone, the second day's stay; the daily totals of both stay
    assert list(VisitorDay.objects.values_list("day", "session_id")) == [(later.date(), "s2")]
    assert sorted(DailyRollup.objects.values_list("day", "impressions")) == [(DAY, 1), (later.date(), 1)]

    # when: 40 days after the second day, a refund recomputes it
    with time_machine.travel(datetime(2027, 1, 4, 5, 0, tzinfo=UTC), tick=False):
        OrderSummary.objects.update(revenue=Decimal("10.00"))
        rollup_day(day=later.date())

    # then: that day keeps no per-visitor row
    assert VisitorDay.objects.count() == 0
    assert sorted(DailyRollup.objects.values_list("day", "impressions")) == [(DAY, 1), (later.date(), 1)]

"""The portal's figures: order summaries, per-visitor rollups, analytics of a range and the experiment report."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from catalog_sync.models import OrderLine
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.experiments import assign_arm
from recommendations.models import DailyRollup, Experiment, OrderSummary, VisitorDay
from recommendations.selectors.analytics import (
    get_experiment_report,
    get_store_analytics,
)
from recommendations.services.attribution import LineExtras, OrderExtras, attribute_order
from recommendations.services.experiments import start_experiment
from recommendations.services.rollups import rollup_day
from recommendations.statistics import (
    RatioSample,
    Sample,
    difference_interval,
    mean_interval,
    proportion_sample,
    ratio_interval,
    sign_test,
)
from recommendations.tests.figures import make_lists, place_order, send_events

pytestmark = pytest.mark.django_db

D1 = date(2026, 11, 20)
D2 = date(2026, 11, 21)
NOON1 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOON2 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WEIGHTS = {"network": 45, "local": 45, "holdout": 10}


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(site_key="sk_figures")


def sessions_in(experiment: Experiment, arm: str, n: int) -> list[str]:
    """The first n session ids "visitor-0000001"... that the experiment's sticky hash puts in `arm`."""
    found: list[str] = []
    index = 0
    while len(found) < n:
        index += 1
        sid = f"visitor-{index:07d}"
        if (
            assign_arm(store_id=experiment.store_id, experiment_id=experiment.id, session_id=sid, weights=WEIGHTS)
            == arm
        ):
            found.append(sid)
    return found


@pytest.fixture
def experiment(store: Store) -> Experiment:
    with time_machine.travel(NOON1 - timedelta(hours=6), tick=False):
        return start_experiment(store=store, name="Nov test", weights=WEIGHTS)


def test_an_order_summary_keeps_net_revenue_the_recommended_part_and_the_visitors_arm(
    store: Store, experiment: Experiment
) -> None:
    local, _ = make_lists(store)
    (holdout_sid,) = sessions_in(experiment, "holdout", 1)
    place_order(
        store,
        at=NOON1,
        lines=[("SKU-1", "30.00", 2, local), ("SKU-9", "10.00", 1, "")],
        session_id=holdout_sid,
        order_id="A",
    )
    place_order(store, at=NOON1, lines=[("SKU-9", "25.00", 1, "")], order_id="B")

    rows = list(
        OrderSummary.objects.order_by("order_id").values_list(
            "order_id", "ordered_at", "revenue", "attributed_revenue", "recommended", "session_id", "arm", "experiment"
        )
    )
    assert rows == [
        ("A", NOON1, Decimal("70.00"), Decimal("60.00"), True, holdout_sid, "holdout", experiment.id),
        ("B", NOON1, Decimal("25.00"), Decimal("0.00"), False, "", "", experiment.id),
    ]


def test_a_refund_rewrites_the_summary_and_a_removed_order_loses_it(store: Store) -> None:
    local, _ = make_lists(store)
    place_order(store, at=NOON1, lines=[("SKU-1", "30.00", 2, local)], order_id="A")
    attribute_order(
        store=store,
        order_id="A",
        extras=OrderExtras("A", lines={"A-0": LineExtras(discount=Decimal("5.00"), refunded_amount=Decimal("20.00"))}),
    )
    assert list(OrderSummary.objects.values_list("revenue", "attributed_revenue", "arm")) == [
        (Decimal("35.00"), Decimal("35.00"), "")
    ]

    OrderLine.objects.filter(order_id="A").delete()
    attribute_order(store=store, order_id="A")
    assert OrderSummary.objects.count() == 0


def _visitor_days() -> list[tuple[Any, ...]]:
    return list(
        VisitorDay.objects.order_by("day", "arm", "session_id").values_list(
            "day", "arm", "session_id", "exposed", "impressions", "clicks", "add_to_carts", "purchases", "orders",
            "revenue",
        )
    )  # fmt: skip


@time_machine.travel(datetime(2026, 11, 22, 1, 0, tzinfo=UTC), tick=False)
def test_the_rollup_keeps_one_row_per_visitor_arm_and_day_with_their_orders(
    store: Store, experiment: Experiment
) -> None:
    local, _ = make_lists(store)
    (loc,) = sessions_in(experiment, "local", 1)
    (net,) = sessions_in(experiment, "network", 1)
    (hold,) = sessions_in(experiment, "holdout", 1)
    send_events(
        store,
        [
            {"type": "impression", "rec_id": local, "placement": "product", "arm": "local", "session_id": loc},
            {"type": "impression", "rec_id": local, "placement": "product", "arm": "local", "session_id": loc},
            {"type": "click", "rec_id": local, "placement": "product", "arm": "local", "session_id": loc},
            {"type": "view", "arm": "network", "session_id": net},  # no card seen: not exposed
            {"type": "view", "arm": "holdout", "session_id": hold},  # the holdout sees nothing: exposed by any event
            {"type": "impression", "rec_id": local, "placement": "product", "arm": "local"},  # anonymous: no row
        ],
        at=NOON1,
    )
    place_order(store, at=NOON1, lines=[("SKU-1", "30.00", 1, local)], session_id=loc, arm="local")
    place_order(store, at=NOON2, lines=[("SKU-9", "12.50", 2, "")], session_id=hold)  # the next day
    place_order(store, at=NOON1, lines=[("SKU-9", "99.00", 1, "")])  # no session: no visitor

    rollup_day(day=D1, store_id=store.id)
    rollup_day(day=D2, store_id=store.id)

    assert _visitor_days() == [
        (D1, "holdout", hold, True, 0, 0, 0, 0, 0, Decimal("0.00")),
        (D1, "local", loc, True, 2, 1, 0, 0, 1, Decimal("30.00")),
        (D1, "network", net, False, 0, 0, 0, 0, 0, Decimal("0.00")),
        (D2, "holdout", hold, False, 0, 0, 0, 0, 1, Decimal("25.00")),
    ]


@time_machine.travel(datetime(2026, 11, 22, 1, 0, tzinfo=UTC), tick=False)
def test_analytics_of_a_range_split_by_placement_source_and_arm(store: Store, experiment: Experiment) -> None:
    local, network = make_lists(store)
    locs = sessions_in(experiment, "local", 2)
    nets = sessions_in(experiment, "network", 1)
    holds = sessions_in(experiment, "holdout", 2)
    events: list[dict[str, Any]] = []
    for sid in locs:
        events += [{"type": "impression", "rec_id": local, "placement": "product", "arm": "local", "session_id": sid}]
    events += [
        {"type": "click", "rec_id": local, "placement": "product", "arm": "local", "session_id": locs[0]},
        {"type": "add_to_cart", "rec_id": local, "placement": "product", "arm": "local", "session_id": locs[0]},
        {"type": "impression", "rec_id": network, "placement": "product", "arm": "network", "session_id": nets[0]},
        {"type": "impression", "rec_id": network, "placement": "product", "arm": "network", "session_id": nets[0]},
        {"type": "view", "arm": "holdout", "session_id": holds[0]},
        {"type": "view", "arm": "holdout", "session_id": holds[1]},
    ]
    send_events(store, events, at=NOON1)
    send_events(
        store,
        [{"type": "click", "rec_id": network, "placement": "product", "arm": "network", "session_id": nets[0]}],
        at=NOON2,
    )
    place_order(store, at=NOON1, lines=[("SKU-1", "30.00", 2, local), ("SKU-9", "10.00", 1, "")], session_id=locs[0])
    place_order(store, at=NOON2, lines=[("SKU-2", "50.00", 1, network)], session_id=nets[0])
    place_order(store, at=NOON1, lines=[("SKU-9", "20.00", 1, "")], session_id=holds[0])
    place_order(store, at=NOON2, lines=[("SKU-9", "40.00", 1, "")])
    rollup_day(day=D1, store_id=store.id)
    rollup_day(day=D2, store_id=store.id)

    analytics = get_store_analytics(store=store, start=D1 - timedelta(days=1), end=D2)

    totals = analytics.totals
    assert (totals.impressions, totals.clicks, totals.add_to_carts, totals.orders, totals.revenue) == (
        4, 2, 1, 2, Decimal("110.00")
    )  # fmt: skip
    assert (totals.ctr, totals.add_to_cart_rate, totals.conversion, totals.revenue_per_mille) == (
        0.5, 0.25, 1.0, Decimal("27500.00")
    )  # fmt: skip
    assert [(day, f.impressions, f.clicks, f.revenue) for day, f in analytics.daily] == [
        (date(2026, 11, 19), 0, 0, Decimal("0.00")),
        (D1, 4, 1, Decimal("60.00")),
        (D2, 0, 1, Decimal("50.00")),
    ]
    assert [(g.key, g.figures.impressions, g.figures.revenue) for g in analytics.by_source] == [
        ("local", 2, Decimal("60.00")),
        ("network", 2, Decimal("50.00")),
        ("", 0, Decimal("0.00")),  # the holdout's views carry no rec id
    ]
    assert [(g.key, g.figures.clicks) for g in analytics.by_placement] == [("product", 2), ("", 0)]
    # Orders take their arm from the line property; the widget's events from the served arm.
    assert [(g.key, g.figures.impressions, g.figures.orders) for g in analytics.by_arm] == [
        ("network", 2, 0), ("local", 2, 0), ("holdout", 0, 0), ("", 0, 2),
    ]  # fmt: skip
    value = analytics.order_value
    assert (value.orders_with, value.revenue_with, value.aov_with) == (2, Decimal("120.00"), Decimal("60.00"))
    assert (value.orders_without, value.revenue_without, value.aov_without) == (2, Decimal("60.00"), Decimal("30.00"))
    # Exposed visitors: 2 local (70 + 0), 1 network (50), 2 holdout (20 + 0).
    treated = Sample(n=3, total=120.0, total_squares=70.0**2 + 50.0**2)
    holdout = Sample(n=2, total=20.0, total_squares=400.0)
    expected = difference_interval(control=holdout, treatment=treated)
    assert analytics.incremental is not None
    assert (analytics.incremental.treated_visitors, analytics.incremental.holdout_visitors) == (3, 2)
    assert analytics.incremental.revenue.estimate == pytest.approx(3 * (40.0 - 10.0), rel=1e-12)
    assert expected.low is not None
    assert analytics.incremental.revenue.low == pytest.approx(3 * expected.low, rel=1e-12)


def test_analytics_refuse_a_range_that_ends_before_it_starts(store: Store) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        get_store_analytics(store=store, start=D2, end=D1)


def _visitor(store: Store, day: date, arm: str, sid: str, **kw: Any) -> VisitorDay:
    return VisitorDay.objects.create(store=store, day=day, arm=arm, session_id=sid, exposed=True, **kw)


@time_machine.travel(datetime(2026, 11, 22, 1, 0, tzinfo=UTC), tick=False)
def test_the_experiment_report_per_arm_matches_the_statistics_on_per_visitor_sums(
    store: Store, experiment: Experiment
) -> None:
    # Two days of one visitor add up to one visitor: revenue 10 + 20 = 30, not two visitors of 10 and 20.
    _visitor(store, D1, "holdout", "h1", revenue=Decimal("10.00"), orders=1)
    _visitor(store, D2, "holdout", "h1", revenue=Decimal("20.00"), orders=1)
    _visitor(store, D1, "holdout", "h2")
    _visitor(store, D1, "network", "n1", impressions=4, clicks=1, revenue=Decimal("50.00"), orders=1)
    _visitor(store, D1, "network", "n2", impressions=2, purchases=1)
    _visitor(store, D1, "network", "n3", impressions=2)
    VisitorDay.objects.create(store=store, day=D1, arm="local", session_id="l0", exposed=False, impressions=0)
    _visitor(store, D1, "local", "l1", impressions=3, clicks=2, revenue=Decimal("5.00"), orders=1)

    report = get_experiment_report(experiment=experiment)

    assert (report.start, report.end, report.control) == (NOON1.date(), date(2026, 11, 22), "holdout")
    by_arm = {arm.figures.arm: arm for arm in report.arms}
    assert list(by_arm) == ["network", "local", "holdout"]
    net, loc, hold = by_arm["network"].figures, by_arm["local"].figures, by_arm["holdout"].figures
    assert (net.visitors, net.impressions, net.clicks, net.converted, net.revenue.total) == (3, 8, 1, 2, 50.0)
    assert (loc.visitors, loc.ctr, loc.conversion) == (1, 2 / 3, 1.0)  # l0 saw nothing: not a visitor
    assert (hold.visitors, hold.converted, hold.revenue.total, hold.revenue.total_squares) == (2, 1, 30.0, 900.0)
    network = Sample(n=3, total=50.0, total_squares=2500.0)
    holdout = Sample(n=2, total=30.0, total_squares=900.0)
    assert by_arm["network"].revenue_lift == difference_interval(control=holdout, treatment=network)
    conversion_lift = difference_interval(
        control=proportion_sample(successes=1, trials=2), treatment=proportion_sample(successes=2, trials=3)
    )
    assert by_arm["network"].conversion_lift == conversion_lift.clipped(low=-1.0, high=1.0)
    assert conversion_lift.low is not None and conversion_lift.low < -1.0  # three visitors: the bound is cut at -100%
    assert by_arm["network"].conversion_lift.low == -1.0
    rpv = mean_interval(sample=network)
    assert rpv.low is not None and rpv.low < 0
    assert by_arm["network"].revenue_per_visitor == rpv.clipped(low=0.0)
    assert by_arm["network"].revenue_per_visitor.low == 0.0
    assert by_arm["holdout"].revenue_lift is None
    # CTR per visitor pair (clicks, impressions) of the network arm: (1, 4), (0, 2), (0, 2).
    assert by_arm["network"].figures.clicks_by_impressions == RatioSample(n=3, x=1.0, y=8.0, xx=1.0, yy=24.0, xy=4.0)
    ctr = ratio_interval(sample=RatioSample(n=3, x=1.0, y=8.0, xx=1.0, yy=24.0, xy=4.0))
    assert by_arm["network"].ctr == ctr.clipped(low=0.0, high=1.0)
    assert [arm.weight for arm in report.arms] == [45, 45, 10]
    assert report.sample_ratio is not None
    assert report.sample_ratio.df == 2
    assert report.sample_ratio.mismatch is False
    assert report.ready is False  # under 100 visitors per arm
    assert report.interleaving is None  # no interleave arm in the weights


def test_the_report_flags_a_sample_ratio_mismatch(store: Store) -> None:
    experiment = start_experiment(store=store, name="Split", weights={"network": 50, "local": 50})
    today = timezone.now().date()
    VisitorDay.objects.bulk_create(
        [VisitorDay(store=store, day=today, arm="network", session_id=f"n{i}", exposed=True) for i in range(300)]
        + [VisitorDay(store=store, day=today, arm="local", session_id=f"l{i}", exposed=True) for i in range(200)]
    )

    report = get_experiment_report(experiment=experiment)

    assert report.sample_ratio is not None
    assert report.sample_ratio.statistic == pytest.approx(20.0, rel=1e-12)  # (300-250)^2/250 * 2
    assert report.sample_ratio.mismatch is True
    assert report.control == "network"
    assert report.ready is False  # enough visitors, but the split is off


def test_the_interleave_arm_reports_the_share_of_clicks_credited_to_each_source(store: Store) -> None:
    experiment = start_experiment(store=store, name="Mix", weights={"interleave": 1})
    today = timezone.now().date()
    for source, clicks in (("network", 14), ("local", 4)):
        DailyRollup.objects.create(store=store, day=today, placement="product", source=source, arm="interleave",
                                   clicks=clicks)  # fmt: skip
    DailyRollup.objects.create(store=store, day=today, placement="product", source="local", arm="local", clicks=50)

    report = get_experiment_report(experiment=experiment)

    assert report.interleaving is not None
    assert (report.interleaving.network_clicks, report.interleaving.local_clicks) == (14, 4)
    assert report.interleaving.network_share == 14 / 18
    assert report.interleaving.p_value == sign_test(wins=14, losses=4)
    assert report.interleaving.p_value == pytest.approx(0.03088378906, rel=1e-9)

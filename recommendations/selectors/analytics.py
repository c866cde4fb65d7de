"""Reads of the portal's figures: analytics of a date range and the report of an experiment.

Everything comes from the rollups (DailyRollup per placement/source/arm, VisitorDay per visitor and arm) and from
OrderSummary (one row per order, for AOV with vs without recommendations), never from raw ShopperEvent rows.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from django.db.models import Count, Q, Sum
from django.utils import timezone

from merchants.models import Store
from recommendations.models import Arm, DailyRollup, Experiment, OrderSummary, Placement, Source, VisitorDay
from recommendations.statistics import (
    Interval,
    RatioSample,
    Sample,
    SampleRatio,
    difference_interval,
    mean_interval,
    proportion_sample,
    ratio_interval,
    sample_ratio_test,
    sign_test,
)

ZERO: Final = Decimal("0.00")
MAX_RANGE_DAYS: Final = 366
DEFAULT_RANGE_DAYS: Final = 30
# Intelligems' rule of thumb (STOREFRONT.md §5): no conclusion before this many visitors in every arm.
MIN_VISITORS_PER_ARM: Final = 100

PLACEMENT_LABELS: Final[dict[str, str]] = {
    "product": "Product page", "cart": "Cart", "home": "Home page", "": "Not known",
}  # fmt: skip
SOURCE_LABELS: Final[dict[str, str]] = {"network": "Network", "local": "Local", "": "Not known"}
ARM_LABELS: Final[dict[str, str]] = {
    "network": "Network", "local": "Local", "holdout": "Holdout (no widget)", "interleave": "Interleaved",
    "": "No experiment",
}  # fmt: skip
_SUMS: Final = ("impressions", "clicks", "add_to_carts", "orders", "revenue", "assisted_orders", "assisted_revenue")


def _ratio(numerator: float | Decimal, denominator: float | Decimal) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


@dataclass(frozen=True)
class Figures:
    """Summed rollup counts of one group, with the rates the portal shows (None where a rate has no denominator)."""

    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    orders: int = 0
    revenue: Decimal = ZERO
    assisted_orders: int = 0
    assisted_revenue: Decimal = ZERO

    @property
    def ctr(self) -> float | None:
        return _ratio(self.clicks, self.impressions)

    @property
    def add_to_cart_rate(self) -> float | None:
        return _ratio(self.add_to_carts, self.impressions)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.orders, self.clicks)

    @property
    def revenue_per_mille(self) -> Decimal | None:
        if not self.impressions:
            return None
        return (self.revenue * 1000 / self.impressions).quantize(Decimal("0.01"))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Figures":
        return cls(
            impressions=row["impressions"] or 0,
            clicks=row["clicks"] or 0,
            add_to_carts=row["add_to_carts"] or 0,
            orders=row["orders"] or 0,
            revenue=row["revenue"] or ZERO,
            assisted_orders=row["assisted_orders"] or 0,
            assisted_revenue=row["assisted_revenue"] or ZERO,
        )


@dataclass(frozen=True)
class Breakdown:
    key: str
    label: str
    figures: Figures


@dataclass(frozen=True)
class OrderValue:
    """Orders placed in the range, split by whether a recommendation earned part of them."""

    orders_with: int
    revenue_with: Decimal
    orders_without: int
    revenue_without: Decimal

    @property
    def aov_with(self) -> Decimal | None:
        return (self.revenue_with / self.orders_with).quantize(Decimal("0.01")) if self.orders_with else None

    @property
    def aov_without(self) -> Decimal | None:
        return (self.revenue_without / self.orders_without).quantize(Decimal("0.01")) if self.orders_without else None


@dataclass(frozen=True)
class ArmVisitors:
    """One arm's exposed visitors summed per visitor (VisitorDay rows of the window grouped by session)."""

    arm: str
    visitors: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    converted: int = 0
    orders: int = 0
    revenue: Sample = field(default_factory=lambda: Sample(n=0, total=0.0, total_squares=0.0))
    # Per-visitor (clicks, impressions) moments for CTR's interval.
    clicks_by_impressions: RatioSample = field(
        default_factory=lambda: RatioSample(n=0, x=0.0, y=0.0, xx=0.0, yy=0.0, xy=0.0)
    )

    @property
    def label(self) -> str:
        return ARM_LABELS.get(self.arm, self.arm)

    @property
    def ctr(self) -> float | None:
        return _ratio(self.clicks, self.impressions)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.converted, self.visitors)

    @property
    def revenue_per_visitor(self) -> float | None:
        return self.revenue.mean if self.visitors else None


@dataclass(frozen=True)
class Incremental:
    """Revenue of the exposed visitors of the recommendation arms beyond what the holdout's rate predicts."""

    treated_visitors: int
    holdout_visitors: int
    revenue: Interval  # in money: treated visitors x (revenue per visitor treated - holdout), with its interval


@dataclass(frozen=True)
class Analytics:
    store_id: int
    start: date
    end: date
    currency: str
    totals: Figures
    daily: list[tuple[date, Figures]]
    by_placement: list[Breakdown]
    by_source: list[Breakdown]
    by_arm: list[Breakdown]
    order_value: OrderValue
    incremental: Incremental | None


def default_range(*, today: date | None = None) -> tuple[date, date]:
    """The last DEFAULT_RANGE_DAYS UTC days, today included."""
    end = today or timezone.now().date()
    return end - timedelta(days=DEFAULT_RANGE_DAYS - 1), end


def _summed(rows: Iterable[dict[str, Any]], key: str) -> dict[Any, Figures]:
    return {row[key]: Figures.from_row(row) for row in rows}


def get_store_analytics(*, store: Store, start: date, end: date, currency: str = "") -> Analytics:
    """The store's figures from start to end (UTC days, both included): totals, per day, per placement/source/arm."""
    if end < start:
        raise ValueError("the range ends before it starts")
    rollups = DailyRollup.objects.filter(store=store, day__gte=start, day__lte=end)
    sums = {name: Sum(name) for name in _SUMS}
    totals = Figures.from_row(rollups.aggregate(**sums))
    per_day = _summed(rollups.values("day").annotate(**sums).order_by(), "day")
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]

    def breakdown(dimension: str, labels: dict[str, str], order: Sequence[str]) -> list[Breakdown]:
        found = _summed(rollups.values(dimension).annotate(**sums).order_by(), dimension)
        keys = [key for key in order if key in found] + sorted(key for key in found if key not in order)
        return [Breakdown(key=key, label=labels.get(key) or str(key), figures=found[key]) for key in keys]

    return Analytics(
        store_id=store.id,
        start=start,
        end=end,
        currency=currency,
        totals=totals,
        daily=[(day, per_day.get(day, Figures())) for day in days],
        by_placement=breakdown("placement", PLACEMENT_LABELS, [*Placement.values, ""]),
        by_source=breakdown("source", SOURCE_LABELS, [*Source.values, ""]),
        by_arm=breakdown("arm", ARM_LABELS, [*Arm.values, ""]),
        order_value=get_order_value(store=store, start=start, end=end),
        incremental=get_incremental_revenue(arms=get_arm_visitors(store=store, start=start, end=end)),
    )


def get_order_value(*, store: Store, start: date, end: date) -> OrderValue:
    """Orders of the range (by UTC order day) with and without a line a recommendation earned, and their revenue."""
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    rows = OrderSummary.objects.filter(store=store, ordered_at__gte=since, ordered_at__lt=until).aggregate(
        orders_with=Count("id", filter=Q(recommended=True)),
        revenue_with=Sum("revenue", filter=Q(recommended=True)),
        orders_without=Count("id", filter=Q(recommended=False)),
        revenue_without=Sum("revenue", filter=Q(recommended=False)),
    )
    return OrderValue(
        orders_with=rows["orders_with"],
        revenue_with=rows["revenue_with"] or ZERO,
        orders_without=rows["orders_without"],
        revenue_without=rows["revenue_without"] or ZERO,
    )


def get_arm_visitors(*, store: Store, start: date, end: date) -> dict[str, ArmVisitors]:
    """Per arm, the visitors exposed in the window with their clicks, conversions and revenue (sum and squares)."""
    per_visitor = (
        VisitorDay.objects.filter(store=store, day__gte=start, day__lte=end)
        .values("arm", "session_id")
        .annotate(
            exposed_days=Count("id", filter=Q(exposed=True)),
            impressions=Sum("impressions"),
            clicks=Sum("clicks"),
            add_to_carts=Sum("add_to_carts"),
            purchases=Sum("purchases"),
            orders=Sum("orders"),
            revenue=Sum("revenue"),
        )
        .filter(exposed_days__gt=0)
        .order_by()
    )
    acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in per_visitor.iterator(chunk_size=5000):
        arm = acc[row["arm"]]
        revenue = float(row["revenue"] or 0)
        arm["visitors"] += 1
        arm["impressions"] += row["impressions"] or 0
        arm["clicks"] += row["clicks"] or 0
        arm["add_to_carts"] += row["add_to_carts"] or 0
        arm["orders"] += row["orders"] or 0
        arm["converted"] += 1 if (row["orders"] or row["purchases"]) else 0
        arm["revenue"] += revenue
        arm["revenue_squares"] += revenue * revenue
        clicks, impressions = float(row["clicks"] or 0), float(row["impressions"] or 0)
        arm["clicks_squares"] += clicks * clicks
        arm["impressions_squares"] += impressions * impressions
        arm["clicks_impressions"] += clicks * impressions
    return {
        arm: ArmVisitors(
            arm=arm,
            visitors=int(values["visitors"]),
            impressions=int(values["impressions"]),
            clicks=int(values["clicks"]),
            add_to_carts=int(values["add_to_carts"]),
            converted=int(values["converted"]),
            orders=int(values["orders"]),
            revenue=Sample(n=int(values["visitors"]), total=values["revenue"], total_squares=values["revenue_squares"]),
            clicks_by_impressions=RatioSample(
                n=int(values["visitors"]),
                x=values["clicks"],
                y=values["impressions"],
                xx=values["clicks_squares"],
                yy=values["impressions_squares"],
                xy=values["clicks_impressions"],
            ),
        )
        for arm, values in acc.items()
    }


def _pooled(samples: Iterable[Sample]) -> Sample:
    items = list(samples)
    return Sample(
        n=sum(s.n for s in items),
        total=sum(s.total for s in items),
        total_squares=sum(s.total_squares for s in items),
    )


def get_incremental_revenue(*, arms: dict[str, ArmVisitors]) -> Incremental | None:
    """Incremental revenue of the arms that show recommendations against the holdout; None without both."""
    holdout = arms.get(Arm.HOLDOUT)
    treated = _pooled(v.revenue for arm, v in arms.items() if arm != Arm.HOLDOUT)
    if holdout is None or not holdout.visitors or not treated.n:
        return None
    diff = difference_interval(control=holdout.revenue, treatment=treated)
    n = treated.n
    return Incremental(
        treated_visitors=n,
        holdout_visitors=holdout.visitors,
        revenue=Interval(
            estimate=diff.estimate * n,
            low=diff.low * n if diff.low is not None else None,
            high=diff.high * n if diff.high is not None else None,
            p_value=diff.p_value,
        ),
    )


# --- Experiments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmReport:
    figures: ArmVisitors
    weight: int
    revenue_per_visitor: Interval
    conversion: Interval
    ctr: Interval
    # Against the control arm (None for the control itself).
    conversion_lift: Interval | None = None
    revenue_lift: Interval | None = None


@dataclass(frozen=True)
class Interleaving:
    """Clicks on interleaved lists credited to each team, and the sign test of network vs local."""

    network_clicks: int
    local_clicks: int
    p_value: float

    @property
    def network_share(self) -> float | None:
        return _ratio(self.network_clicks, self.network_clicks + self.local_clicks)


@dataclass(frozen=True)
class ExperimentReport:
    experiment: Experiment
    start: date
    end: date
    control: str
    arms: list[ArmReport]
    sample_ratio: SampleRatio | None
    incremental: Incremental | None
    interleaving: Interleaving | None
    currency: str = ""

    @property
    def ready(self) -> bool:
        """Enough visitors in every arm and no sample-ratio mismatch: only then may a lift be read."""
        enough = all(arm.figures.visitors >= MIN_VISITORS_PER_ARM for arm in self.arms)
        return bool(self.arms) and enough and not (self.sample_ratio and self.sample_ratio.mismatch)


def list_experiments(*, store: Store) -> list[Experiment]:
    """The store's experiments, newest first."""
    return list(Experiment.objects.filter(store=store).order_by("-created_at", "-id"))


def get_experiment_for_store(*, store: Store, experiment_id: int) -> Experiment:
    """One experiment of this store; Experiment.DoesNotExist for another store's id."""
    return Experiment.objects.get(store=store, pk=experiment_id)


def get_experiment_report(*, experiment: Experiment, today: date | None = None, currency: str = "") -> ExperimentReport:
    """Per arm: exposed visitors, CTR, conversion and revenue per visitor with always-valid intervals; SRM; lifts."""
    today = today or timezone.now().date()
    start = (experiment.started_at or experiment.created_at).date()
    end = experiment.stopped_at.date() if experiment.stopped_at else today
    weights: dict[str, int] = {arm: int(w) for arm, w in (experiment.weights or {}).items() if arm in Arm.values}
    found = get_arm_visitors(store=experiment.store, start=start, end=end)
    names = [arm for arm in Arm.values if arm in weights or arm in found]
    control = Arm.HOLDOUT if weights.get(Arm.HOLDOUT) else next(iter(weights), names[0] if names else Arm.NETWORK)
    base = found.get(control, ArmVisitors(arm=control))
    reports = []
    for arm in names:
        figures = found.get(arm, ArmVisitors(arm=arm))
        conversion = proportion_sample(successes=figures.converted, trials=figures.visitors)
        lifts: dict[str, Interval | None] = {"conversion_lift": None, "revenue_lift": None}
        if arm != control:
            lifts = {
                "conversion_lift": difference_interval(
                    control=proportion_sample(successes=base.converted, trials=base.visitors), treatment=conversion
                ).clipped(low=-1.0, high=1.0),
                "revenue_lift": difference_interval(control=base.revenue, treatment=figures.revenue),
            }
        reports.append(
            ArmReport(
                figures=figures,
                weight=weights.get(arm, 0),
                revenue_per_visitor=mean_interval(sample=figures.revenue).clipped(low=0.0),
                conversion=mean_interval(sample=conversion).clipped(low=0.0, high=1.0),
                ctr=ratio_interval(sample=figures.clicks_by_impressions).clipped(low=0.0, high=1.0),
                **lifts,
            )
        )
    return ExperimentReport(
        experiment=experiment,
        start=start,
        end=end,
        control=control,
        arms=reports,
        sample_ratio=sample_ratio_test(observed={a: v.visitors for a, v in found.items()}, weights=weights),
        incremental=get_incremental_revenue(arms=found),
        interleaving=get_interleaving(store=experiment.store, start=start, end=end)
        if Arm.INTERLEAVE in weights
        else None,
        currency=currency,
    )


def get_interleaving(*, store: Store, start: date, end: date) -> Interleaving | None:
    """Clicks of the interleave arm credited to network and to local in the window; None without any."""
    rows = DailyRollup.objects.filter(store=store, day__gte=start, day__lte=end, arm=Arm.INTERLEAVE).aggregate(
        network=Sum("clicks", filter=Q(source=Source.NETWORK)), local=Sum("clicks", filter=Q(source=Source.LOCAL))
    )
    network, local = rows["network"] or 0, rows["local"] or 0
    if not network and not local:
        return None
    return Interleaving(network_clicks=network, local_clicks=local, p_value=sign_test(wins=network, losses=local))

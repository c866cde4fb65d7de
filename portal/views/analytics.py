"""A store's analytics for a date range: charts, a table and the same figures as CSV (all from the rollups)."""

import csv
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from merchants.models import Store
from portal.access import store_view
from recommendations.selectors import build_serving_store
from recommendations.selectors.analytics import (
    MAX_RANGE_DAYS,
    Analytics,
    Figures,
    default_range,
    get_store_analytics,
)

CSV_COLUMNS = [
    "section", "group", "impressions", "clicks", "ctr", "add_to_cart_rate", "orders", "conversion",
    "attributed_revenue", "assisted_orders", "assisted_revenue", "revenue_per_1000_impressions", "aov",
    "incremental_revenue", "incremental_low", "incremental_high",
]  # fmt: skip


EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)


class RangeForm(forms.Form):
    start = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def _clean_day(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not EARLIEST <= value <= LATEST:
            raise forms.ValidationError(f"Pick a {name} date between {EARLIEST.isoformat()} and {LATEST.isoformat()}.")
        return value

    def clean_start(self) -> date | None:
        return self._clean_day("start")

    def clean_end(self) -> date | None:
        return self._clean_day("end")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        default_start, default_end = default_range()
        end = data.get("end") or default_end
        start = data.get("start") or (end - (default_end - default_start))
        if end < start:
            raise forms.ValidationError("The range ends before it starts: pick an end date on or after the start.")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Pick a range of at most {MAX_RANGE_DAYS} days.")
        data["start"], data["end"] = start, end
        return data


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _money(value: Decimal | float | None) -> str:
    return "-" if value is None else f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"


def _row(label: str, figures: Figures) -> dict[str, Any]:
    return {
        "label": label,
        "impressions": figures.impressions,
        "clicks": figures.clicks,
        "ctr": _pct(figures.ctr),
        "add_to_cart_rate": _pct(figures.add_to_cart_rate),
        "orders": figures.orders,
        "conversion": _pct(figures.conversion),
        "revenue": _money(figures.revenue),
        "assisted_orders": figures.assisted_orders,
        "assisted_revenue": _money(figures.assisted_revenue),
        "rpm": _money(figures.revenue_per_mille),
    }


def _charts(analytics: Analytics) -> dict[str, dict[str, Any]]:
    labels = [day.isoformat() for day, _ in analytics.daily]
    two_axes = {"scales": {"y": {"beginAtZero": True}, "y1": {"beginAtZero": True, "position": "right"}}}

    def bars(title: str, groups: list[Any]) -> dict[str, Any]:
        return {
            "type": "bar",
            "labels": [group.label for group in groups],
            "datasets": [
                {"label": "Attributed revenue", "data": [float(g.figures.revenue) for g in groups]},
                {"label": "Assisted revenue", "data": [float(g.figures.assisted_revenue) for g in groups]},
            ],
            "options": {"plugins": {"title": {"display": True, "text": title}}},
        }

    return {
        "chart-daily-traffic": {
            "type": "line",
            "labels": labels,
            "datasets": [
                {"label": "Impressions", "data": [f.impressions for _, f in analytics.daily], "yAxisID": "y"},
                {"label": "Clicks", "data": [f.clicks for _, f in analytics.daily], "yAxisID": "y1"},
            ],
            "options": two_axes,
        },
        "chart-daily-revenue": {
            "type": "line",
            "labels": labels,
            "datasets": [
                {"label": "Attributed revenue", "data": [float(f.revenue) for _, f in analytics.daily]},
                {"label": "Assisted revenue", "data": [float(f.assisted_revenue) for _, f in analytics.daily]},
            ],
        },
        "chart-by-placement": bars("Revenue by placement", analytics.by_placement),
        "chart-by-source": bars("Revenue by source", analytics.by_source),
        "chart-by-arm": bars("Revenue by arm", analytics.by_arm),
    }


def _csv_rows(analytics: Analytics) -> Iterator[list[Any]]:
    def figures_row(section: str, group: str, f: Figures) -> list[Any]:
        return [
            section, group, f.impressions, f.clicks, _fraction(f.ctr), _fraction(f.add_to_cart_rate), f.orders,
            _fraction(f.conversion), _cents(f.revenue), f.assisted_orders, _cents(f.assisted_revenue),
            "" if f.revenue_per_mille is None else f.revenue_per_mille, "", "", "", "",
        ]  # fmt: skip

    yield figures_row("total", f"{analytics.start.isoformat()}..{analytics.end.isoformat()}", analytics.totals)
    for day, figures in analytics.daily:
        yield figures_row("day", day.isoformat(), figures)
    for section, groups in (
        ("placement", analytics.by_placement),
        ("source", analytics.by_source),
        ("arm", analytics.by_arm),
    ):
        for group in groups:
            yield figures_row(section, group.key or "unknown", group.figures)
    value = analytics.order_value
    blank = [""] * 4
    for name, orders, revenue, aov in (
        ("with_recommendations", value.orders_with, value.revenue_with, value.aov_with),
        ("without_recommendations", value.orders_without, value.revenue_without, value.aov_without),
    ):
        yield ["orders", name, "", "", "", "", orders, "", _cents(revenue), "", "", "", _cents(aov), *blank]
    incremental = analytics.incremental
    if incremental is not None:
        interval = incremental.revenue
        yield [
            "incremental", "vs_holdout", *[""] * 12, round(interval.estimate, 2),
            "" if interval.low is None else round(interval.low, 2),
            "" if interval.high is None else round(interval.high, 2),
        ]  # fmt: skip


def _cents(value: Decimal | None) -> str:
    return "" if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


@require_GET
@store_view
def analytics_page(request: HttpRequest, store: Store, as_csv: bool = False) -> HttpResponse:
    """The store's figures for ?start=YYYY-MM-DD&end=YYYY-MM-DD (default: the last 30 days); CSV with ?format=csv."""
    form = RangeForm(request.GET or None)
    if request.GET and not form.is_valid():
        errors = " ".join(str(e) for errs in form.errors.values() for e in errs)
        if as_csv or request.GET.get("format") == "csv":
            return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
        return render(request, "portal/analytics.html", {"store": store, "form": form, "errors": errors}, status=400)
    if request.GET:
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    else:
        start, end = default_range()
        form = RangeForm(initial={"start": start, "end": end})
    currency = build_serving_store(store=store).currency
    analytics = get_store_analytics(store=store, start=start, end=end, currency=currency)
    if as_csv or request.GET.get("format") == "csv":
        return _csv_response(analytics, store=store)
    return render(
        request,
        "portal/analytics.html",
        {
            "store": store,
            "form": form,
            "analytics": analytics,
            "currency": currency,
            "totals": _row("All", analytics.totals),
            "sections": [
                ("Placement", [_row(g.label, g.figures) for g in analytics.by_placement]),
                ("Source", [_row(g.label, g.figures) for g in analytics.by_source]),
                ("Arm", [_row(g.label, g.figures) for g in analytics.by_arm]),
            ],
            "order_value": {
                "with": _money(analytics.order_value.aov_with),
                "without": _money(analytics.order_value.aov_without),
            },
            "incremental": _incremental(analytics),
            "charts": _charts(analytics),
            "csv_query": f"start={start.isoformat()}&end={end.isoformat()}",
            "previous_days": (end - start).days + 1,
            "has_data": analytics.totals.impressions > 0 or analytics.totals.orders > 0,
        },
    )


def _incremental(analytics: Analytics) -> dict[str, str] | None:
    if analytics.incremental is None:
        return None
    interval = analytics.incremental.revenue
    return {
        "estimate": _money(interval.estimate),
        "low": _money(interval.low),
        "high": _money(interval.high),
        "treated": str(analytics.incremental.treated_visitors),
        "holdout": str(analytics.incremental.holdout_visitors),
    }


def _csv_response(analytics: Analytics, *, store: Store) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"bitrecs-{store.pk}-{analytics.start.isoformat()}-{analytics.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_rows(analytics))
    return response


def analytics_csv(request: HttpRequest, store_id: int) -> HttpResponse:
    """The same figures as CSV (`.../analytics.csv`)."""
    return analytics_page(request, store_id, as_csv=True)


urlpatterns = [
    path("portal/stores/<int:store_id>/analytics", analytics_page, name="portal-analytics"),
    path("portal/stores/<int:store_id>/analytics.csv", analytics_csv, name="portal-analytics-csv"),
]

"""A store's experiments: set up arms and weights, start and stop, and the report per arm."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from portal.access import store_view
from recommendations.experiments import MAX_WEIGHT
from recommendations.models import Arm, Experiment
from recommendations.selectors import build_serving_store
from recommendations.selectors.analytics import (
    MIN_VISITORS_PER_ARM,
    ExperimentReport,
    get_experiment_for_store,
    get_experiment_report,
    list_experiments,
)
from recommendations.services.experiments import start_experiment, stop_experiment
from recommendations.statistics import Interval

ARM_HELP: dict[str, str] = {
    Arm.NETWORK: "the Bitrecs network's lists",
    Arm.LOCAL: "the local recommender's lists",
    Arm.HOLDOUT: "no widget: the baseline for incremental revenue",
    Arm.INTERLEAVE: "network and local lists mixed by team draft in one widget",
}


class StartForm(forms.Form):
    name = forms.CharField(max_length=200, strip=True)
    default_arm = forms.ChoiceField(choices=Arm.choices, initial=Arm.NETWORK)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for arm, label in Arm.choices:
            self.fields[f"weight_{arm}"] = forms.IntegerField(
                label=label, min_value=0, max_value=MAX_WEIGHT, required=False, initial=0
            )

    def weights(self) -> dict[str, int]:
        return {arm: self.cleaned_data.get(f"weight_{arm}") or 0 for arm in Arm.values}


def _number(value: float | None, *, percent: bool = False, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.{max(digits - 1, 1)}f}%" if percent else f"{value:,.{digits}f}"


def _interval(interval: Interval | None, *, percent: bool = False) -> str:
    if interval is None:
        return ""
    if interval.low is None or interval.high is None:
        return "not enough data"
    low, high = _number(interval.low, percent=percent), _number(interval.high, percent=percent)
    return f"{low} to {high}"


def _signed(value: float, *, percent: bool = False) -> str:
    text = _number(value, percent=percent)
    return text if value < 0 else f"+{text}"


def _report_rows(report: ExperimentReport) -> list[dict[str, Any]]:
    rows = []
    for arm in report.arms:
        f = arm.figures
        rows.append(
            {
                "arm": f.arm,
                "label": f.label,
                "weight": arm.weight,
                "is_control": f.arm == report.control,
                "visitors": f.visitors,
                "impressions": f.impressions,
                "ctr": _number(f.ctr, percent=True),
                "ctr_ci": _interval(arm.ctr, percent=True) if f.impressions else "",
                "conversion": _number(f.conversion, percent=True),
                "conversion_ci": _interval(arm.conversion, percent=True),
                "rpv": _number(f.revenue_per_visitor),
                "rpv_ci": _interval(arm.revenue_per_visitor),
                "conversion_lift": _signed(arm.conversion_lift.estimate, percent=True) if arm.conversion_lift else "",
                "conversion_lift_ci": _interval(arm.conversion_lift, percent=True),
                "revenue_lift": _signed(arm.revenue_lift.estimate) if arm.revenue_lift else "",
                "revenue_lift_ci": _interval(arm.revenue_lift),
                "significant": bool(arm.revenue_lift and arm.revenue_lift.significant),
            }
        )
    return rows


def _context(store: Store, *, form: StartForm, selected: Experiment | None) -> dict[str, Any]:
    experiments = list_experiments(store=store)
    if selected is None:
        selected = next((e for e in experiments if e.status == Experiment.Status.RUNNING), None) or next(
            iter(experiments), None
        )
    report = None
    if selected is not None:
        report = get_experiment_report(experiment=selected, currency=build_serving_store(store=store).currency)
    interleaving = report.interleaving if report else None
    incremental = report.incremental if report else None
    return {
        "store": store,
        "form": form,
        "weight_fields": [(form[f"weight_{arm}"], ARM_HELP[arm]) for arm in Arm.values],
        "experiments": experiments,
        "selected": selected,
        "report": report,
        "rows": _report_rows(report) if report else [],
        "min_visitors": MIN_VISITORS_PER_ARM,
        "incremental": None
        if incremental is None
        else {
            "estimate": _signed(incremental.revenue.estimate),
            "ci": _interval(incremental.revenue),
            "treated": incremental.treated_visitors,
            "holdout": incremental.holdout_visitors,
        },
        "interleaving": None
        if interleaving is None
        else {
            "network": interleaving.network_clicks,
            "local": interleaving.local_clicks,
            "share": _number(interleaving.network_share, percent=True),
            "p_value": f"{interleaving.p_value:.4f}",
            "winner": ""
            if interleaving.p_value >= 0.05
            else ("network" if interleaving.network_clicks > interleaving.local_clicks else "local"),
        },
        "srm": None
        if report is None or report.sample_ratio is None
        else {
            "mismatch": report.sample_ratio.mismatch,
            "p_value": f"{report.sample_ratio.p_value:.4g}",
            "statistic": f"{report.sample_ratio.statistic:.2f}",
            "df": report.sample_ratio.df,
        },
    }


@store_view
def experiments_page(request: HttpRequest, store: Store) -> HttpResponse:
    """The store's experiments and the report of the running (or chosen, ?experiment=<id>) one; POST starts one."""
    selected = None
    chosen = request.GET.get("experiment")
    if chosen is not None:
        try:
            selected = get_experiment_for_store(store=store, experiment_id=int(chosen))
        except (ValueError, OverflowError, Experiment.DoesNotExist):
            raise Http404("No such experiment in this store.") from None
    if request.method == "POST":
        form = StartForm(request.POST)
        if form.is_valid():
            try:
                experiment = start_experiment(
                    store=store,
                    name=form.cleaned_data["name"],
                    weights=form.weights(),
                    default_arm=form.cleaned_data["default_arm"],
                )
            except InvalidRequest as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Experiment “{experiment.name}” started.")
                return redirect(f"{request.path}?experiment={experiment.pk}")
        return render(request, "portal/experiments.html", _context(store, form=form, selected=selected), status=400)
    if request.method != "GET":
        return HttpResponse(status=405)
    form = StartForm(initial={"weight_network": 45, "weight_local": 45, "weight_holdout": 10})
    return render(request, "portal/experiments.html", _context(store, form=form, selected=selected))


@require_POST
@store_view
def stop_page(request: HttpRequest, store: Store, experiment_id: int) -> HttpResponse:
    """Stop one of the store's experiments (404 for another store's)."""
    try:
        experiment = get_experiment_for_store(store=store, experiment_id=experiment_id)
    except Experiment.DoesNotExist:
        raise Http404("No such experiment in this store.") from None
    stop_experiment(experiment=experiment)
    messages.success(request, f"Experiment “{experiment.name}” stopped.")
    return redirect(f"{reverse('portal-experiments', args=[store.pk])}?experiment={experiment.pk}")


urlpatterns = [
    path("portal/stores/<int:store_id>/experiments", experiments_page, name="portal-experiments"),
    path(
        "portal/stores/<int:store_id>/experiments/<int:experiment_id>/stop",
        stop_page,
        name="portal-experiment-stop",
    ),
]

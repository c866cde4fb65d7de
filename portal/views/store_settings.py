"""A store's settings: placements, merchandising rules (with a preview before saving), attribution, privacy.

One page, one form per section; each POST names its `section`. The rules form's "Preview" button renders the
effect of the typed rules without saving them (served by the widget's own code); "Save" stores them.
"""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from portal.access import store_view
from portal.settings_forms import AttributionForm, NetworkForm, PlacementsForm, RulesForm
from recommendations.experiments import get_widget_settings
from recommendations.selectors.explain import preview_merchant_rules
from recommendations.selectors.store_settings import (
    get_attribution_settings,
    get_placement_views,
    get_rules_settings,
    is_network_enabled,
)
from recommendations.services.store_settings import (
    save_attribution_settings,
    save_merchant_rules,
    save_network_sharing,
    save_placement_settings,
)
from subnet.selectors import DEFAULT_POOL_SIZE

SECTIONS = ("rules", "placements", "attribution", "network")


@store_view
def store_settings(request: HttpRequest, store: Store) -> HttpResponse:
    """GET: the settings page. POST: preview or save one section; an invalid form comes back with its errors (400)."""
    forms = _forms(store=store)
    context: dict[str, Any] = {"store": store, "preview": None}
    status = 200
    if request.method == "POST":
        section = request.POST.get("section", "")
        if section not in SECTIONS:
            return _page(request, store, forms, context, status=400, problem="Unknown settings section.")
        bound = _bound(section=section, store=store, data=request.POST)
        forms[section] = bound
        if not bound.is_valid():
            status = 400
        elif section == "rules" and request.POST.get("action") == "preview":
            context["preview"] = _preview(store=store, form=bound)
        else:
            try:
                done = _save(section=section, store=store, form=bound)
            except InvalidRequest as exc:
                return _page(request, store, forms, context, status=400, problem=exc.message)
            messages.success(request, done)
            return redirect(reverse("portal-settings", args=[store.pk]) + f"#{section}")
    elif request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return _page(request, store, forms, context, status=status)


def _forms(*, store: Store) -> dict[str, Any]:
    return {
        "rules": RulesForm(store=store, initial=RulesForm.initial_for(get_rules_settings(store=store))),
        "placements": PlacementsForm(placements=get_placement_views(store=store)),
        "attribution": AttributionForm(initial=AttributionForm.initial_for(get_attribution_settings(store=store))),
        "network": NetworkForm(initial={"enabled": is_network_enabled(store=store)}),
    }


def _bound(*, section: str, store: Store, data: Any) -> Any:
    if section == "rules":
        return RulesForm(data, store=store)
    if section == "placements":
        return PlacementsForm(data, placements=get_placement_views(store=store))
    if section == "attribution":
        return AttributionForm(data)
    return NetworkForm(data)


def _preview(*, store: Store, form: RulesForm) -> Any:
    proposed = {
        **(store.settings if isinstance(store.settings, dict) else {}),
        "recommendations": form.rules().as_settings(),
    }
    placement = form.cleaned_data["preview_placement"]
    return preview_merchant_rules(
        store=store,
        proposed_settings=proposed,
        placement=placement,
        sku=form.cleaned_data["preview_sku"],
        limit=get_widget_settings(store_id=store.id, placement=placement).count,  # as many as the widget shows
    )


def _save(*, section: str, store: Store, form: Any) -> str:
    if section == "rules":
        save_merchant_rules(store=store, rules=form.rules())
        return "Rules saved: the widget uses them now."
    if section == "placements":
        for placement, title, count, layout in form.values():
            save_placement_settings(store=store, placement=placement, title=title, count=count, layout=layout)
        return "Placements saved."
    if section == "attribution":
        data = form.cleaned_data
        save_attribution_settings(store=store, assisted=data["assisted"], window_hours=data["window_hours"])
        return "Attribution saved: it applies to orders from now on."
    save_network_sharing(store=store, enabled=form.cleaned_data["enabled"])
    return "Network setting saved."


def _page(
    request: HttpRequest,
    store: Store,
    forms: dict[str, Any],
    context: dict[str, Any],
    *,
    status: int,
    problem: str = "",
) -> HttpResponse:
    return render(
        request,
        "portal/settings.html",
        {
            **context,
            "forms": forms,
            "problem": problem,
            "network_enabled": is_network_enabled(store=store),
            "network_pool_size": DEFAULT_POOL_SIZE,
        },
        status=status,
    )


urlpatterns = [path("portal/stores/<int:store_id>/settings", store_settings, name="portal-settings")]

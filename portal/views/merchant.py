"""The merchant's pages: the list of their stores and each store's overview."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from merchants.models import Store
from merchants.selectors import stores_for_user
from portal.access import merchant_required, signed_in_hotkey, store_view
from recommendations.selectors.onboarding import RUNNING, get_onboarding_steps


@merchant_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in user's stores; one store goes straight to its overview, a hotkey to its own page."""
    if signed_in_hotkey(request) is not None:
        return redirect("portal-neuron")
    stores = list(stores_for_user(user=request.user))
    if len(stores) == 1 and not request.user.is_staff:
        return redirect("portal-store", store_id=stores[0].pk)
    return render(request, "portal/home.html", {"stores": stores})


@store_view
def overview(request: HttpRequest, store: Store) -> HttpResponse:
    """One store at a glance: the onboarding checklist as it stands now (refreshing itself while a sync runs)."""
    steps = get_onboarding_steps(store=store)
    return render(
        request,
        "portal/store_overview.html",
        {
            "store": store,
            "steps": steps,
            "steps_done": sum(1 for step in steps if step.done),
            "refresh": any(step.state == RUNNING for step in steps),
        },
    )


urlpatterns = [
    path("portal/", home, name="portal-home"),
    path("portal/stores/<int:store_id>/", overview, name="portal-store"),
]

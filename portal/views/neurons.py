"""The pages of the subnet's people: a signed-in hotkey's own page (miner or validator) and the public leaderboard.

The role is read from the chain on every load of the hotkey's page (hotkeys get deregistered, permits move),
never taken from the session or from what the person claims.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from bitrecs_site.exception_handler import error_response
from portal.access import SESSION_ROLE, signed_in_hotkey
from subnet.services import check_validator_health
from subnet.standings import (
    UPDATED_ALERT_BLOCKS,
    ChainUnavailable,
    get_miner_report,
    get_neuron,
    get_validator_report,
    list_leaderboard,
    register_hint,
)


def _chain_down(request: HttpRequest, exc: ChainUnavailable) -> HttpResponse:
    return render(request, "portal/neuron_unavailable.html", {"reason": str(exc)}, status=503)


@require_GET
def my_neuron(request: HttpRequest) -> HttpResponse:
    """The signed-in hotkey's page: a miner's figures, a validator's, or how to register."""
    hotkey = signed_in_hotkey(request)
    if hotkey is None:
        return redirect(f"{reverse('portal-hotkey')}?{urlencode({'next': request.get_full_path()})}")
    try:
        neuron = get_neuron(hotkey=hotkey)
    except ChainUnavailable as exc:
        return _chain_down(request, exc)
    request.session[SESSION_ROLE] = neuron.role if neuron else "unregistered"
    context: dict[str, Any] = {
        "hotkey": hotkey,
        "neuron": neuron,
        "network": settings.BITRECS_NETWORK,
        "netuid": settings.BITRECS_NETUID,
    }
    if neuron is None:
        return render(request, "portal/neuron_unregistered.html", {**context, "register": register_hint()})
    if neuron.validator_permit:
        validator = get_validator_report(neuron=neuron)
        health = check_validator_health(url=validator.api_url, hotkey=hotkey)
        return render(request, "portal/neuron_validator.html", {**context, "report": validator, "health": health})
    return render(request, "portal/neuron_miner.html", {**context, "report": get_miner_report(hotkey=hotkey)})


@require_GET
def neuron_of(request: HttpRequest, hotkey: str) -> HttpResponse:
    """A hotkey's private page by address: yours redirects to your page, anybody else's is refused (403)."""
    if signed_in_hotkey(request) == hotkey:
        return redirect("portal-neuron")
    raise PermissionDenied("The private page of a hotkey is only for that hotkey, signed in.")


def _wants_json(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@require_GET
def leaderboard(request: HttpRequest, as_json: bool = False) -> HttpResponse:
    """The public leaderboard: miners by score, with the chain's figures and their penalties (HTML or JSON)."""
    as_json = as_json or _wants_json(request)
    try:
        rows = list_leaderboard()
    except ChainUnavailable as exc:
        if as_json:
            return error_response(status=503, code="chain_unavailable", detail=str(exc))
        return _chain_down(request, exc)
    if as_json:
        return JsonResponse(
            {
                "network": settings.BITRECS_NETWORK,
                "netuid": settings.BITRECS_NETUID,
                "neurons": [row.as_json() for row in rows],
            }
        )
    return render(
        request,
        "portal/leaderboard.html",
        {
            "rows": rows,
            "network": settings.BITRECS_NETWORK,
            "netuid": settings.BITRECS_NETUID,
            "alert_blocks": UPDATED_ALERT_BLOCKS,
            "signed_in_hotkey": signed_in_hotkey(request),
        },
    )


urlpatterns = [
    path("portal/neuron", my_neuron, name="portal-neuron"),
    path("portal/neuron/<str:hotkey>", neuron_of, name="portal-neuron-of"),
    path("portal/leaderboard", leaderboard, name="portal-leaderboard"),
    path("portal/leaderboard.json", leaderboard, {"as_json": True}, name="portal-leaderboard-json"),
]

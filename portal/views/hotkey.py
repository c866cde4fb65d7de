"""Signing in to the portal with a hotkey: the sign-in page and its two JSON endpoints.

CSRF: both endpoints keep Django's CSRF check. The page's script sends the token of the page's form in the
X-CSRFToken header (same origin), so another site cannot make a visitor's browser ask for or redeem a
challenge. On top of that the challenge's nonce lives in the session that asked for it, and only that
session can redeem it: a signature made for someone else's browser (a login-CSRF with the attacker's own
hotkey) finds no challenge in the victim's session.
"""

import shlex
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from bitrecs_site.exception_handler import error_response
from bitrecs_site.json_intake import parse_json_object
from bitrecs_site.security import rate_setting, throttle_refusal
from portal.access import SESSION_HOTKEY, SESSION_ROLE
from recommendations.views.widget import WidgetClientRateThrottle
from subnet.signin import SignInRefused, get_hotkey_user, issue_challenge, redeem_challenge
from subnet.standings import ChainUnavailable, get_neuron, register_hint

# Session keys: the nonce of the challenge this browser asked for, and the hotkey it signed in with.
SESSION_NONCE = "portal_hotkey_nonce"
MAX_BODY_BYTES = 4_096


def chain_id() -> str:
    """The message's Chain ID: the network and netuid whose registration decides the role."""
    return f"bittensor:{settings.BITRECS_NETWORK}:{settings.BITRECS_NETUID}"


def sign_commands(message: str) -> dict[str, str]:
    """The commands that sign `message` with a hotkey: btcli 9.x, and bittensor-wallet in Python."""
    return {
        "btcli": (
            "btcli wallet sign --wallet.name WALLET --wallet.hotkey HOTKEY --use-hotkey --message "
            + shlex.quote(message)
        ),
        "python": (
            'python3 -c "from bittensor_wallet import Wallet; '
            "print('0x' + Wallet(name='WALLET', hotkey='HOTKEY').hotkey.sign("
            + repr(message).replace('"', '\\"')
            + ').hex())"'
        ),
        "local": (
            "python manage.py portal_hotkey_signature --wallet-name WALLET --hotkey HOTKEY --message "
            + shlex.quote(message)
        ),
    }


class HotkeySignInRateThrottle(WidgetClientRateThrottle):
    """PORTAL_HOTKEY_RATE_LIMIT per client IP over both endpoints: every challenge is a stored row ("off": none)."""

    scope = "portal_hotkey"

    def get_rate(self) -> str | None:
        return rate_setting(settings.PORTAL_HOTKEY_RATE_LIMIT)


def _throttled(request: HttpRequest) -> JsonResponse | None:
    retry = throttle_refusal(HotkeySignInRateThrottle(), request)
    if retry is None:
        return None
    response = error_response(
        status=429, code="throttled", detail=f"Too many sign-in attempts from here; try again in {retry} s."
    )
    response["Retry-After"] = retry
    return response


def _invalid(detail: str) -> JsonResponse:
    return error_response(status=400, code="invalid_request", detail=detail)


def _refused(exc: SignInRefused) -> JsonResponse:
    return error_response(status=exc.status_code, code=exc.code, detail=exc.message)


@require_GET
@ensure_csrf_cookie
def signin_page(request: HttpRequest) -> HttpResponse:
    """The hotkey sign-in page: ask for a message, sign it with the hotkey, paste the signature."""
    return render(
        request,
        "portal/hotkey_signin.html",
        {"network": settings.BITRECS_NETWORK, "netuid": settings.BITRECS_NETUID, "example": sign_commands("…")},
    )


@require_POST
def challenge(request: HttpRequest) -> JsonResponse:
    """`{"hotkey": "<ss58>"}` -> `{"message": ...}`: a new single-use sign-in message for this browser."""
    if limited := _throttled(request):
        return limited
    body = parse_json_object(request.body, max_bytes=MAX_BODY_BYTES)
    hotkey = body.get("hotkey")
    if set(body) != {"hotkey"} or not isinstance(hotkey, str):
        return _invalid('Send {"hotkey": "<your hotkey\'s SS58 address>"} and nothing else.')
    try:
        issued = issue_challenge(
            hotkey=hotkey.strip(),
            domain=request.get_host(),
            uri=request.build_absolute_uri(reverse("portal-hotkey")),
            chain_id=chain_id(),
            replaces=request.session.get(SESSION_NONCE),
        )
    except SignInRefused as exc:
        return _refused(exc)
    request.session[SESSION_NONCE] = issued.nonce
    return JsonResponse(
        {
            "message": issued.message,
            "hotkey": issued.hotkey,
            "expires_at": issued.expires_at.isoformat(),
            "commands": sign_commands(issued.message),
        }
    )


def _role_body(hotkey: str) -> dict[str, Any]:
    neuron = get_neuron(hotkey=hotkey)
    if neuron is None:
        return {
            "role": "unregistered",
            "uid": None,
            "detail": f"This hotkey is not registered on netuid {settings.BITRECS_NETUID} of "
            f"{settings.BITRECS_NETWORK!r}. Register it: {register_hint()}",
        }
    return {"role": neuron.role, "uid": neuron.uid, "detail": ""}


@require_POST
def verify(request: HttpRequest) -> JsonResponse:
    """`{"hotkey", "signature"}`: check the signature of this browser's message and sign the hotkey in."""
    if limited := _throttled(request):
        return limited
    body = parse_json_object(request.body, max_bytes=MAX_BODY_BYTES)
    hotkey, signature = body.get("hotkey"), body.get("signature")
    if set(body) != {"hotkey", "signature"} or not isinstance(hotkey, str) or not isinstance(signature, str):
        return _invalid('Send {"hotkey": "<ss58>", "signature": "0x<128 hex characters>"} and nothing else.')
    hotkey = hotkey.strip()
    try:
        redeemed = redeem_challenge(nonce=request.session.get(SESSION_NONCE), hotkey=hotkey, signature=signature)
    except SignInRefused as exc:
        return _refused(exc)
    try:
        role = _role_body(redeemed.hotkey)
    except ChainUnavailable as exc:
        return error_response(status=503, code="chain_unavailable", detail=f"{exc}. Try again in a minute.")
    login(request, get_hotkey_user(hotkey=redeemed.hotkey), backend="django.contrib.auth.backends.ModelBackend")
    request.session.pop(SESSION_NONCE, None)
    request.session[SESSION_HOTKEY] = redeemed.hotkey
    request.session[SESSION_ROLE] = role["role"]
    return JsonResponse({"hotkey": redeemed.hotkey, **role, "redirect": reverse("portal-neuron")})


urlpatterns = [
    path("portal/hotkey", signin_page, name="portal-hotkey"),
    path("portal/api/hotkey/challenge", challenge, name="portal-hotkey-challenge"),
    path("portal/api/hotkey/verify", verify, name="portal-hotkey-verify"),
]

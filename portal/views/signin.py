"""Signing in from a platform: the WooCommerce plugin's signed link, and the Shopify admin's embedded app.

Shopify: inside the admin's iframe third-party cookies are unreliable (Safari blocks them, Chrome partitions
them), so the embedded portal keeps no session at all. The app home (merchants.views.shopify) loads a page of
the portal with `fetch`, to which App Bridge adds `Authorization: Bearer <ID token>` (a one-minute JWT, HS256
under the app secret, `aud` = the API key); every such request is verified here and answered for the token's shop
only: the portal view runs with that store's portal user, the store being the token's, never one the request names.
"""

from urllib.parse import urlsplit

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, Resolver404, path, resolve, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from merchants.exceptions import InvalidSignature, MerchantError
from merchants.services.handoff import start_first_sync
from merchants.services.portal_signin import SignInLinkRefused, get_store_portal_user, verify_woocommerce_signin
from merchants.services.shopify import authenticate_shopify_id_token, shopify_frame_ancestors
from portal.navigation import STORE_PAGES

LINK_PARAMS = ("store_url", "key_id", "expires", "nonce", "signature")
# App Bridge retries a request answered 401 with this header once, with a fresh ID token.
RETRY_INVALID_SESSION_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
# The embedded portal's pages: "overview" is the store's overview, any other is "portal-<page>" of STORE_PAGES.
EMBEDDED_PAGES = {
    ("overview" if name == "portal-store" else name.removeprefix("portal-")): name for _, name in STORE_PAGES
}


@never_cache
@require_http_methods(["GET", "POST"])
def woocommerce_signin(request: HttpRequest) -> HttpResponse:
    """GET: verify the link and ask to continue to its store (a form that posts the link back). POST (CSRF-checked):
    verify it again, use up its nonce, sign in the store's portal user and open the store's overview. Else 403."""
    source = request.POST if request.method == "POST" else request.GET
    params = {name: source.get(name, "") for name in LINK_PARAMS}
    try:
        store = verify_woocommerce_signin(params=params, use=request.method == "POST")
    except SignInLinkRefused as exc:
        response = render(request, "portal/signin_refused.html", {"message": exc.message}, status=403)
    else:
        if request.method == "POST":
            login(request, get_store_portal_user(store=store), backend="django.contrib.auth.backends.ModelBackend")
            response = redirect("portal-store", store_id=store.pk)
        else:
            signed_in = request.user.get_username() if request.user.is_authenticated else ""
            response = render(
                request, "portal/signin_confirm.html", {"link_store": store, "params": params, "signed_in": signed_in}
            )
    # The link's signature stays out of other sites' logs. The confirmation page may send it to this site: by the Fetch
    # standard a form posted from a "no-referrer" page carries "Origin: null", which Django's CSRF check refuses
    # (Chromium did so once here, on the first try of this page; not since).
    response["Referrer-Policy"] = (
        "same-origin" if request.method == "GET" and response.status_code == 200 else "no-referrer"
    )
    return response


@never_cache
@csrf_exempt  # authenticated by the Authorization header alone, which a cross-site form cannot send
@require_http_methods(["GET", "POST"])
def shopify_embedded_page(request: HttpRequest, page: str) -> HttpResponseBase:
    """A portal page of the ID token's shop, for the embedded app home to show (401 + retry header without a token)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return _unauthorized(request, "Open Bitrecs from your Shopify admin.", shop=None)
    try:
        session = authenticate_shopify_id_token(authorization=header)
    except InvalidSignature as exc:
        return _unauthorized(request, exc.message, shop=None)
    except MerchantError as exc:
        return _problem(request, exc.message, status=exc.status_code, shop=None)
    if session.installed:
        start_first_sync(store=session.store)
    name = EMBEDDED_PAGES.get(page)
    try:
        target = reverse(name, args=[session.store.pk]) if name else ""
    except NoReverseMatch:
        target = ""
    if not target:
        return _problem(request, f"No portal page {page[:40]!r}.", status=404, shop=session.shop)
    request.user = get_store_portal_user(store=session.store)
    response = _dispatch(request, target)
    location = response.get("Location", "") if response.status_code in (301, 302, 303) else ""
    if location.startswith(f"/portal/stores/{session.store.pk}/"):
        # Saved (post/redirect/get): answer the page it redirects to, so the frame shows it with its message.
        parts = urlsplit(location)
        request.method = "GET"
        request.GET = QueryDict(parts.query)
        response = _dispatch(request, parts.path)
    response["Content-Security-Policy"] = shopify_frame_ancestors(shop=session.shop)
    return response


def _dispatch(request: HttpRequest, target: str) -> HttpResponseBase:
    try:
        match = resolve(target)
    except Resolver404:
        return _problem(request, "No such portal page.", status=404, shop=None)
    response: HttpResponseBase = match.func(request, *match.args, **match.kwargs)
    return response


def _unauthorized(request: HttpRequest, message: str, *, shop: str | None) -> HttpResponse:
    response = _problem(request, message, status=401, shop=shop)
    response[RETRY_INVALID_SESSION_HEADER] = "1"
    response["WWW-Authenticate"] = 'Bearer realm="shopify"'
    return response


def _problem(request: HttpRequest, message: str, *, status: int, shop: str | None) -> HttpResponse:
    response = render(request, "portal/embedded_problem.html", {"message": message}, status=status)
    response["Content-Security-Policy"] = shopify_frame_ancestors(shop=shop)
    return response


urlpatterns = [
    path("portal/woocommerce/signin", woocommerce_signin, name="portal-woocommerce-signin"),
    path("portal/shopify/<slug:page>", shopify_embedded_page, name="portal-shopify-page"),
]

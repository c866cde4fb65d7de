"""Signing in from a platform: the WooCommerce plugin's signed, single-use "Open Bitrecs portal" link."""

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from merchants.services.portal_signin import SignInLinkRefused, get_store_portal_user, verify_woocommerce_signin

LINK_PARAMS = ("store_url", "key_id", "expires", "nonce", "signature")


@never_cache
@require_GET
def woocommerce_signin(request: HttpRequest) -> HttpResponse:
    """Verify the link, use up its nonce, sign in the store's portal user and open the store's overview (else 403)."""
    try:
        store = verify_woocommerce_signin(params={name: request.GET.get(name, "") for name in LINK_PARAMS})
    except SignInLinkRefused as exc:
        response = render(request, "portal/signin_refused.html", {"message": exc.message}, status=403)
    else:
        login(request, get_store_portal_user(store=store), backend="django.contrib.auth.backends.ModelBackend")
        response = redirect("portal-store", store_id=store.pk)
    response["Referrer-Policy"] = "no-referrer"  # the link's signature stays out of other sites' logs
    return response


urlpatterns = [path("portal/woocommerce/signin", woocommerce_signin, name="portal-woocommerce-signin")]

"""WooCommerce onboarding and webhook views: thin HTTP glue around merchants.services.woocommerce.

Errors raised here are merchants.exceptions; bitrecs_site.exception_handler turns them into JSON answers.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.throttling import SimpleRateThrottle

from bitrecs_site.security import client_ip, rate_setting, throttle_refusal
from merchants.models import WooCommerceInstall
from merchants.services.handoff import start_first_sync
from merchants.services.webhooks import parse_json_object, read_limited_body
from merchants.services.woocommerce import (
    begin_woocommerce_install,
    complete_woocommerce_install,
    receive_woocommerce_webhook,
)


class ConnectRateThrottle(SimpleRateThrottle):
    """WOOCOMMERCE_CONNECT_RATE_LIMIT per client IP (REMOTE_ADDR; X-Forwarded-For only through trusted proxies)."""

    scope = "woocommerce_connect"

    def get_rate(self) -> str | None:
        return rate_setting(settings.WOOCOMMERCE_CONNECT_RATE_LIMIT)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """Start a key request: send the merchant to their store's /wc-auth/v1/authorize grant screen."""
    wait = throttle_refusal(ConnectRateThrottle(), request)
    if wait is not None:
        body = {"error": "rate_limited", "detail": f"Too many connection requests; try again in {wait} seconds."}
        return JsonResponse(body, status=429, headers={"Retry-After": wait})
    _, authorize_url = begin_woocommerce_install(raw_url=request.GET.get("store_url", ""))
    return HttpResponseRedirect(authorize_url)


@csrf_exempt
@require_POST
def callback(request: HttpRequest) -> HttpResponse:
    """Receive the key pair WooCommerce POSTs after approval; WooCommerce deletes the key unless this answers 200."""
    data = parse_json_object(read_limited_body(request))
    store = complete_woocommerce_install(data=data)
    start_first_sync(store=store)
    return JsonResponse({"status": "connected", "site_key": store.site_key}, status=200)


@require_GET
def return_page(request: HttpRequest) -> HttpResponse:
    """Where WooCommerce sends the merchant's browser back (return_url?success=0|1&user_id=…)."""
    user_id = request.GET.get("user_id", "")
    install = WooCommerceInstall.objects.select_related("store").filter(user_id=user_id).first() if user_id else None
    if install is None:
        outcome, status = "unknown", 404
    elif install.completed_at is not None and install.store is not None:
        outcome, status = "connected", 200
    elif request.GET.get("success") == "0":
        outcome, status = "denied", 200
    else:
        outcome, status = "failed", 200
    context = {"outcome": outcome, "install": install, "store": install.store if install else None}
    return render(request, "merchants/woocommerce_return.html", context, status=status)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, site_key: str) -> HttpResponse:
    """Take one WooCommerce delivery: ping → 200; otherwise verify, dedupe, store and answer 200 at once."""
    outcome = receive_woocommerce_webhook(site_key=site_key, headers=request.headers, body=read_limited_body(request))
    return JsonResponse({"status": outcome}, status=200)


urlpatterns = [
    path("woocommerce/connect", connect, name="woocommerce-connect"),
    path("woocommerce/callback", callback, name="woocommerce-callback"),
    path("woocommerce/return", return_page, name="woocommerce-return"),
    path("webhooks/woocommerce/<str:site_key>", webhook, name="woocommerce-webhook"),
]

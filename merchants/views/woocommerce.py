"""WooCommerce onboarding and webhook views: thin HTTP glue around merchants.services.woocommerce.

Errors raised here are merchants.exceptions; bitrecs_site.exception_handler turns them into JSON answers.
"""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from merchants.models import Store, WooCommerceInstall
from merchants.services.handoff import start_first_sync
from merchants.services.webhooks import parse_json_object, read_limited_body, record_webhook_event
from merchants.services.woocommerce import (
    begin_woocommerce_install,
    complete_woocommerce_install,
    get_webhook_store,
    has_webhook_secrets,
    is_ping,
    verify_woocommerce_webhook,
    webhook_dedup_key,
)

logger = logging.getLogger(__name__)


@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """Start a key request: send the merchant to their store's /wc-auth/v1/authorize grant screen."""
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
    store = get_webhook_store(site_key=site_key)
    body = read_limited_body(request)
    if is_ping(headers=request.headers, body=body):
        logger.info("woocommerce.webhook_ping", extra={"store_id": store.id})
        return JsonResponse({"status": "pong"}, status=200)
    if not store.is_active and not has_webhook_secrets(store=store):
        return _ignored(store)  # nothing to verify with, and nothing would be stored anyway
    delivery = verify_woocommerce_webhook(store=store, headers=request.headers, body=body)
    if not store.is_active:
        return _ignored(store)
    payload = parse_json_object(body)
    _, created = record_webhook_event(
        platform=Store.Platform.WOOCOMMERCE,
        store=store,
        shop_domain=store.domain,
        topic=delivery.topic,
        dedup_key=webhook_dedup_key(delivery=delivery, body=body),
        payload=payload,
    )
    return JsonResponse({"status": "accepted" if created else "duplicate"}, status=200)


def _ignored(store: Store) -> HttpResponse:
    logger.info("woocommerce.webhook_ignored", extra={"store_id": store.id, "status": store.status})
    return JsonResponse({"status": "ignored"}, status=200)


urlpatterns = [
    path("woocommerce/connect", connect, name="woocommerce-connect"),
    path("woocommerce/callback", callback, name="woocommerce-callback"),
    path("woocommerce/return", return_page, name="woocommerce-return"),
    path("webhooks/woocommerce/<str:site_key>", webhook, name="woocommerce-webhook"),
]

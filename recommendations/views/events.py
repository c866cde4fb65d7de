"""The widget's event intake: POST /api/v1/events (sendBeacon batches, text/plain or application/json).

A plain Django view (no DRF): the batch is checked by hand and spooled, so intake costs about what a bare view
costs. Answers: 204 accepted; 400 junk (the message names the field); 404 unknown site key; 405 other methods;
413 over 64 KiB; 415 another content type; 429 rate limited (the widget's limits, per client IP and site key);
503 when neither the spool nor the database can keep the batch.
"""

import logging
from typing import Any

from django.db import DatabaseError, InterfaceError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from bitrecs_site.security import throttle_refusal
from merchants.exceptions import MerchantError, PayloadTooLarge, StoreNotFound
from recommendations.selectors import get_serving_store
from recommendations.services.events import MAX_BATCH_BYTES, accept_event_batch, parse_event_batch
from recommendations.views.widget import WidgetClientRateThrottle, WidgetSiteRateThrottle

logger = logging.getLogger(__name__)

_CONTENT_TYPES = frozenset({"", "text/plain", "application/json"})


class EventsClientRateThrottle(WidgetClientRateThrottle):
    """The widget's per-client-IP limit (WIDGET_RATE_LIMIT), counted apart from recommendation requests."""

    scope = "events_client"


class EventsSiteRateThrottle(WidgetSiteRateThrottle):
    """The widget's per-site-key limit (WIDGET_SITE_RATE_LIMIT) for event batches; the key is in the body."""

    scope = "events_site"

    def __init__(self, *, site_key: str) -> None:
        super().__init__()
        self.site_key = site_key

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.site_key}


def _error(status: int, code: str, detail: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _throttled(throttle: SimpleRateThrottle, request: HttpRequest) -> JsonResponse | None:
    retry = throttle_refusal(throttle, request)
    if retry is None:
        return None
    return _error(429, "throttled", f"Too many event batches; send again in {retry} s.", Retry_After=retry)


def _with_cors(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    # Any page may post events (they are checked by site key); the widget never reads the answer's body.
    if request.META.get("HTTP_ORIGIN"):  # META: request.headers would copy every header first
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


@csrf_exempt
def events_view(request: HttpRequest) -> HttpResponse:
    """Accept one batch of widget events (see the module docstring for every answer)."""
    return _with_cors(_handle(request), request)


def _handle(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Send event batches with POST.", Allow="POST, OPTIONS")
    if request.content_type not in _CONTENT_TYPES:
        return _error(
            415, "unsupported_media_type", "Send the batch as JSON with Content-Type text/plain or application/json."
        )
    limited = _throttled(EventsClientRateThrottle(), request)
    if limited is not None:
        return limited
    try:
        body = _read_body(request)
        batch = parse_event_batch(body=body)
        limited = _throttled(EventsSiteRateThrottle(site_key=batch.site_key), request)
        if limited is not None:
            return limited
        accept_event_batch(batch=batch, body=body, store_id=_store_id(batch.site_key))
    except MerchantError as exc:
        return _error(exc.status_code, exc.code, exc.message)
    response = HttpResponse(status=204)
    response["Cache-Control"] = "no-store"
    return response


def _store_id(site_key: str) -> int | None:
    """The serving store's id (cached per process); None when the database is down (the drain resolves it)."""
    try:
        store = get_serving_store(site_key=site_key)
    except (DatabaseError, InterfaceError):
        logger.warning("events.store_lookup_deferred", extra={"site_key": site_key})
        return None
    if store is None:
        raise StoreNotFound("No store has this site key; copy it from the Bitrecs app settings.")
    return store.id


def _read_body(request: HttpRequest) -> bytes:
    """The body, refusing (413) one over MAX_BATCH_BYTES whether or not it declares its length."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"A batch is at most {MAX_BATCH_BYTES} bytes ({declared} sent); send fewer events.")
    body: Any = request.read(MAX_BATCH_BYTES + 1)
    if len(body) > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"A batch is at most {MAX_BATCH_BYTES} bytes; send fewer events.")
    return bytes(body)

"""Content-Security-Policy on the HTML pages (django-csp), keeping a view's own `frame-ancestors`.

The Shopify embedded admin's pages set `frame-ancestors https://<shop> https://admin.shopify.com` themselves
(merchants.services.shopify.shopify_frame_ancestors); here that directive goes into the full policy instead of
being the whole policy, with App Bridge's sources added. JSON answers and /widget.js (a script other sites load)
get no policy: CSP governs documents, and the widget's CORS headers are left as they are.

NulInRequestMiddleware refuses a NUL character in a URL or a form before any view uses it in a lookup; `client_ip`
is the one reading of the client's address behind proxies, `rate_setting` and `throttle_refusal` the one reading of
a rate-limit setting and of a throttle's refusal (its Retry-After).
"""

import math
from collections.abc import Callable
from typing import Any, Final

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from bitrecs_site.exception_handler import error_response

# What a Shopify embedded admin page (the one kind that sets its own frame-ancestors) needs on top of the policy:
# App Bridge, which Shopify requires to be loaded from its CDN, and its calls to Shopify.
SHOPIFY_EMBEDDED_SOURCES: Final = {"script-src": ["https://cdn.shopify.com"], "connect-src": ["https://*.shopify.com"]}


class HtmlContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware for text/html answers only; a bare `frame-ancestors` policy is merged, not kept."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Set the policy on an HTML answer; leave every other answer as it is."""
        if not settings.CONTENT_SECURITY_POLICY or not response.get("Content-Type", "").startswith("text/html"):
            return response
        own = response.get(HEADER, "")
        directive, _, sources = own.partition(" ")
        if directive == "frame-ancestors" and ";" not in sources:
            del response[HEADER]
            response._csp_replace = {"frame-ancestors": sources.split()}  # type: ignore[attr-defined]
            response._csp_update = SHOPIFY_EMBEDDED_SOURCES  # type: ignore[attr-defined]
        return super().process_response(request, response)


_NUL_MARKS: Final = ("%00", "\x00")


class NulInRequestMiddleware:
    """Refuse (400 JSON) a URL or form body that carries a NUL character, before any view looks anything up with it.

    PostgreSQL refuses NUL in text, so a lookup by such a value (a site key, a shop domain, a SKU) would answer
    500; no identifier of ours, nor any text a person types, holds one. JSON bodies are the intake normaliser's
    (bitrecs_site.json_intake), which strips it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path_info or any(mark in query for mark in _NUL_MARKS) or _form_has_nul(request):
            return error_response(
                status=400, code="bad_request", detail="The request carries a NUL character (%00); remove it."
            )
        return self.get_response(request)


def _form_has_nul(request: HttpRequest) -> bool:
    if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
        return False
    try:
        body = request.body
    except RequestDataTooBig:
        return False  # Django's own limit answers it (413) when the view reads the form
    return b"%00" in body or b"\x00" in body


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For's hop WIDGET_TRUSTED_PROXIES from the end."""
    trusted = int(getattr(settings, "WIDGET_TRUSTED_PROXIES", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if trusted > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(trusted, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


def rate_setting(value: object) -> str | None:
    """A rate-limit setting as DRF's throttles read it ("600/min"), or None when it is empty or "off"."""
    text = str(value).strip()
    return None if not text or text.lower() == "off" else text


def throttle_refusal(throttle: Any, request: HttpRequest) -> str | None:
    """None when the throttle (a DRF SimpleRateThrottle) lets the request through or has no rate; else the whole
    seconds to wait, for the 429's Retry-After."""
    if throttle.rate is None or throttle.allow_request(request, None):
        return None
    wait = throttle.wait()
    return str(max(1, math.ceil(wait))) if wait is not None else "60"

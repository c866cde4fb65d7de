"""One error path: every HTTP error of the service answers {"error": "<code>", "detail": "<what to do>"}.

Errors reach it from four places, all mapped here:
- domain errors (MerchantError, JsonIntakeError) raised in DRF views (`handle_exception`, DRF's EXCEPTION_HANDLER)
  and in plain Django views (`DomainErrorMiddleware`);
- DRF's own errors (validation, 404, 405, parse errors), by `handle_exception`;
- Django's: the URL resolver's 404, SuspiciousOperation (DisallowedHost, too many fields) and oversized bodies
  (400/413), PermissionDenied, CSRF failures and uncaught exceptions, by the `handler400/403/404/500` views that
  bitrecs_site.urls names and `csrf_failure` (CSRF_FAILURE_VIEW);
- anything else that answers an error without a JSON body (`require_POST`'s bare 405, Django's debug pages in
  local mode), rewritten by `JsonErrorMiddleware`, the outermost middleware.

The pages for people (HTML_PATHS: the admin, the demo storefront, the API docs, the WooCommerce return page)
keep their HTML error pages.
"""

import logging
import re
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import csrf, defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bitrecs_site.json_intake import JsonIntakeError
from merchants.exceptions import MerchantError

# Pages for people, which keep Django's HTML error pages (the WooCommerce return page is one: a merchant's browser;
# the portal's pages are, its /portal/api/ endpoints are not).
HTML_PATHS = re.compile(r"^/(admin|demo|api/docs|woocommerce/return|portal(?!/api/))(/|$)")

# Codes and details for errors that carry no message of their own.
_GENERIC: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed; check it against the API description at /api/docs/."),
    401: ("unauthorized", "The request needs valid credentials."),
    403: ("forbidden", "The request is not allowed."),
    404: ("not_found", "Nothing is served at this path; the API is described at /api/docs/."),
    405: ("method_not_allowed", "This path does not take this method."),
    406: ("not_acceptable", "This path answers application/json only."),
    413: ("payload_too_large", "The body is larger than this path accepts."),
    414: ("uri_too_long", "The request line is too long; send a shorter query."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    429: ("rate_limited", "Too many requests; wait for Retry-After seconds."),
    500: ("server_error", "Something failed on our side; try again later."),
    502: ("bad_gateway", "An upstream service did not answer properly; try again later."),
    503: ("unavailable", "The service is unavailable for a moment; try again later."),
}


def _generic(status: int) -> tuple[str, str]:
    if status in _GENERIC:
        return _GENERIC[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return phrase.lower().replace(" ", "_").replace("-", "_"), f"{phrase}."


class ErrorSerializer(serializers.Serializer):
    """The one shape of an error answer, as the OpenAPI schema documents it (component `Error`)."""

    error = serializers.CharField()
    detail = serializers.CharField()


def error_body(*, code: str, detail: str) -> dict[str, str]:
    """The one shape of an error answer."""
    return {"error": code, "detail": detail}


def error_response(*, status: int, code: str = "", detail: str = "") -> JsonResponse:
    """A JSON error answer; code and detail default to the status's generic ones."""
    generic_code, generic_detail = _generic(status)
    return JsonResponse(error_body(code=code or generic_code, detail=detail or generic_detail), status=status)


def wants_html_errors(request: HttpRequest) -> bool:
    """Whether the path is a page for people (admin, demo storefront, API docs), which keeps HTML error pages."""
    return bool(HTML_PATHS.match(request.path_info or "/"))


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


_R = TypeVar("_R", bound=HttpResponseBase)

# A database that is down or stalls: 503 with Retry-After, which platforms retry (a webhook is not lost).
DATABASE_RETRY_AFTER_SECONDS = 30
_DATABASE_UNAVAILABLE = (
    503,
    "database_unavailable",
    "The service cannot reach its database for a moment; send the request again later.",
)


def _domain_error(exc: BaseException | None) -> tuple[int, str, str] | None:
    if isinstance(exc, MerchantError | JsonIntakeError):
        return exc.status_code, exc.code, exc.message
    if isinstance(exc, OperationalError | InterfaceError):
        return _DATABASE_UNAVAILABLE
    return None


def _with_retry_after(response: _R) -> _R:
    if response.status_code == 503:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: domain errors and DRF's own errors in the common shape."""
    domain = _domain_error(exc)
    if domain is not None:
        status, code, message = domain
        return _with_retry_after(Response(error_body(code=code, detail=message), status=status))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = {"error": "invalid_request", "detail": _flatten(exc.detail), "fields": exc.detail}
    elif isinstance(exc, drf_exceptions.APIException):
        response.data = error_body(code=exc.default_code, detail=_flatten(exc.detail))
    return response


class DomainErrorMiddleware:
    """Maps domain errors raised in plain Django views to the same JSON error answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        domain = _domain_error(exc)
        if domain is None:
            return None
        status, code, message = domain
        return _with_retry_after(error_response(status=status, code=code, detail=message))


# --- Django's error views (handler400/403/404/500 in bitrecs_site.urls, CSRF_FAILURE_VIEW) -----------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: SuspiciousOperation, a disallowed Host, an oversized body (413), too many fields."""
    if wants_html_errors(request) and not isinstance(exception, RequestDataTooBig):
        return defaults.bad_request(request, exception or Exception())
    if isinstance(exception, RequestDataTooBig):
        return error_response(status=413, detail="The body is larger than this path accepts.")
    if isinstance(exception, DisallowedHost):
        return error_response(status=400, code="bad_host", detail="This host name is not served here.")
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return error_response(status=400, code="too_many_fields", detail="The request has too many fields.")
    return error_response(status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403."""
    if wants_html_errors(request):
        return defaults.permission_denied(request, exception or Exception())
    return error_response(status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: no route, or a view's Http404 (whose message is internal and not shown)."""
    if wants_html_errors(request):
        return defaults.page_not_found(request, exception or Exception())
    return error_response(status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an uncaught exception (logged by Django with its traceback); 503 when the database is down."""
    unavailable = _domain_error(sys.exc_info()[1])  # Django calls this handler while handling the exception
    if unavailable is not None:
        status, code, message = unavailable
        return _with_retry_after(error_response(status=status, code=code, detail=message))
    if wants_html_errors(request):
        return defaults.server_error(request)
    return error_response(status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form POST without a valid CSRF token."""
    if wants_html_errors(request):
        return csrf.csrf_failure(request, reason)
    return error_response(status=403, code="csrf_failed", detail="The CSRF token is missing or wrong; reload the page.")


class JsonErrorMiddleware:
    """Outermost middleware: an error answer without a JSON body on a JSON path gets one (headers kept).

    Catches what no handler sees: the bare 405 of require_GET / require_POST, Django's debug 404 and 400 pages in
    local mode, and any view that answers an error as text. Debug 500 pages stay, for the developer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or wants_html_errors(request):
            return response
        content_type = response.get("Content-Type", "")
        if content_type.split(";")[0].strip().endswith("json") or (settings.DEBUG and response.status_code == 500):
            return response
        code, detail = _generic(response.status_code)
        if response.status_code == 405 and response.has_header("Allow"):
            detail = f"This path takes {response['Allow']} only."
        replacement = error_response(status=response.status_code, code=code, detail=detail)
        for header, value in response.items():
            if header.lower() not in {"content-type", "content-length", "content-encoding"}:
                replacement[header] = value
        replacement.cookies = response.cookies
        return replacement


class DropRateLimitedFilter(logging.Filter):
    """On the django.request logger: no WARNING line per 429 (a flood of them would be a flood of log lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those of 429 answers."""
        return getattr(record, "status_code", None) != 429

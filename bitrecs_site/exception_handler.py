"""One mapping from domain errors to HTTP answers, for DRF views and plain Django views alike.

Every error body has the same shape: {"error": "<code>", "detail": "<what a person can act on>"}.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from merchants.exceptions import MerchantError


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: domain errors and DRF's own errors in the common shape."""
    if isinstance(exc, MerchantError):
        return Response({"error": exc.code, "detail": exc.message}, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = {"error": "invalid_request", "detail": _flatten(exc.detail), "fields": exc.detail}
    elif isinstance(exc, drf_exceptions.APIException):
        response.data = {"error": exc.default_code, "detail": _flatten(exc.detail)}
    return response


class DomainErrorMiddleware:
    """Maps MerchantError raised in plain Django views to the same JSON error answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, MerchantError):
            return JsonResponse({"error": exc.code, "detail": exc.message}, status=exc.status_code)
        return None

"""The site's URLs plus views that fail in each way Django can, for the error-path tests."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from bitrecs_site.urls import handler400, handler403, handler404, handler500
from bitrecs_site.urls import urlpatterns as site_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("an uncaught bug")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("internal reason")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("internal reason")


def form(request: HttpRequest) -> HttpResponse:
    """A view that reads a form body, guarded by CSRF like every view not marked exempt."""
    return JsonResponse({"fields": len(request.POST)})


def text_error(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("plain text failure", content_type="text/plain", status=503)
    response["Retry-After"] = "7"
    return response


urlpatterns = [
    path("api/test/boom", boom),
    path("api/test/forbidden", forbidden),
    path("api/test/suspicious", suspicious),
    path("api/test/form", form),
    path("api/test/text-error", text_error),
    path("admin-test/boom", boom),
    *site_urlpatterns,
]

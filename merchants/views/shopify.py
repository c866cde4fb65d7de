"""shopify onboarding and webhook views (to be built)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def _todo(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return JsonResponse({"error": "not_implemented"}, status=501)


install = callback = connect = _todo
webhook = csrf_exempt(_todo)


urlpatterns = [
    path("shopify/install", install, name="shopify-install"),
    path("shopify/callback", callback, name="shopify-callback"),
    path("webhooks/shopify", webhook, name="shopify-webhook"),
]

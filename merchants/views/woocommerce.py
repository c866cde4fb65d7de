"""woocommerce onboarding and webhook views (to be built)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def _todo(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return JsonResponse({"error": "not_implemented"}, status=501)


install = callback = connect = _todo
webhook = csrf_exempt(_todo)


urlpatterns = [
    path("woocommerce/connect", connect, name="woocommerce-connect"),
    path("woocommerce/callback", callback, name="woocommerce-callback"),
    path("webhooks/woocommerce/<str:site_key>", webhook, name="woocommerce-webhook"),
]

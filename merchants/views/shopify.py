"""Shopify views: OAuth install and callback, the embedded app home and admin API, and the webhook endpoint.

Views parse HTTP and shape answers; merchants.services.shopify decides. Domain errors raised here become
JSON 4xx answers through bitrecs_site.exception_handler.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bitrecs_site.exception_handler import ErrorSerializer
from merchants.exceptions import InvalidSignature, MerchantError
from merchants.models import Store
from merchants.services.handoff import start_first_sync
from merchants.services.shopify import (
    OAUTH_STATE_MAX_AGE,
    ShopifySession,
    authenticate_shopify_id_token,
    complete_shopify_install,
    get_installed_shopify_store,
    receive_shopify_webhook,
    shopify_admin_app_url,
    shopify_frame_ancestors,
    start_shopify_oauth,
    verify_shopify_request,
)
from merchants.services.webhooks import read_limited_body

STATE_COOKIE_SALT = "merchants.shopify.oauth_state"


def _state_cookie_name(request: HttpRequest) -> str:
    # A __Host- cookie must be Secure; plain-HTTP local runs fall back to an ordinary name.
    return "__Host-shopify_oauth_state" if request.is_secure() else "shopify_oauth_state"


def _query(request: HttpRequest) -> dict[str, list[str]]:
    return dict(request.GET.lists())


def _app_home(request: HttpRequest, *, shop: str, store: Store | None) -> HttpResponse:
    """The embedded app home; for a shop not installed yet it says so, and its first API call installs it."""
    response = render(
        request,
        "merchants/shopify_app_home.html",
        {
            "api_key": settings.SHOPIFY_API_KEY,
            "shop": shop,
            "site_key": store.site_key if store else "",
            "status": store.status if store else "installing",
        },
    )
    response["Content-Security-Policy"] = shopify_frame_ancestors(shop=shop)
    return response


@require_GET
@xframe_options_exempt
def install(request: HttpRequest) -> HttpResponse:
    """The app URL: the embedded app home, else the start of the OAuth grant.

    An embedded load of an installed shop gets the app home. So does one of a shop we hold no token for under
    Shopify-managed installation (SHOPIFY_MANAGED_INSTALL): Shopify installed the app before loading it, and
    the page's first API call exchanges its ID token for an offline token. Otherwise the OAuth grant starts.
    """
    shop = verify_shopify_request(params=_query(request))
    store = get_installed_shopify_store(shop=shop)
    if request.GET.get("embedded") == "1" and (store is not None or settings.SHOPIFY_MANAGED_INSTALL):
        return _app_home(request, shop=shop, store=store)
    start = start_shopify_oauth(shop=shop)
    response = HttpResponseRedirect(start.authorize_url)
    response["Content-Security-Policy"] = shopify_frame_ancestors(shop=shop)
    response.set_signed_cookie(
        _state_cookie_name(request),
        start.state,
        salt=STATE_COOKIE_SALT,
        max_age=int(OAUTH_STATE_MAX_AGE.total_seconds()),
        path="/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",  # the callback is a top-level GET navigation from Shopify, which Lax allows
    )
    return response


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """The OAuth redirect_uri: verify, exchange the code, activate the store, start its first sync."""
    shop = verify_shopify_request(params=_query(request))
    cookie_name = _state_cookie_name(request)
    store = complete_shopify_install(
        shop=shop,
        state=request.GET.get("state", ""),
        browser_state=request.get_signed_cookie(
            cookie_name, default=None, salt=STATE_COOKIE_SALT, max_age=OAUTH_STATE_MAX_AGE
        ),
        code=request.GET.get("code", ""),
    )
    start_first_sync(store=store)
    response = HttpResponseRedirect(shopify_admin_app_url(shop=store.domain))
    response.delete_cookie(cookie_name, path="/", samesite="Lax")
    return response


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """Shopify webhook deliveries: verify and store (deduplicated); Celery applies them."""
    body = read_limited_body(request)
    receive_shopify_webhook(headers=request.headers, body=body)
    return HttpResponse(status=200)


# --- Embedded admin API (App Bridge ID tokens) -------------------------------------------------------


# App Bridge retries a fetch answered 401 with this header, with a fresh ID token (they live one minute).
RETRY_INVALID_SESSION_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


class EmbeddedInstallFailed(APIException):
    """A token-exchange install that failed (403 refused, 502 Shopify unreachable), in the common error shape.

    Raised instead of the domain error because DRF marks a request unauthenticated only for an APIException;
    for anything else it would authenticate (and exchange) again when the response is finalized.
    """

    def __init__(self, error: MerchantError) -> None:
        super().__init__(detail=error.message, code=error.code)
        self.status_code = error.status_code
        self.default_code = error.code


class ShopifyIdTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <ID token>` from App Bridge; request.auth becomes a ShopifySession.

    A shop without a usable offline token is installed on the way (token exchange), and its first sync enqueued.
    """

    def authenticate(self, request: Request) -> tuple[None, ShopifySession] | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        try:
            session = authenticate_shopify_id_token(authorization=header)
        except InvalidSignature as exc:
            raise AuthenticationFailed(exc.message) from exc
        except MerchantError as exc:
            raise EmbeddedInstallFailed(exc) from exc
        if session.installed:
            start_first_sync(store=session.store)
        return None, session

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="shopify"'


class ShopifyIdTokenScheme(OpenApiAuthenticationExtension):
    """Describes ShopifyIdTokenAuthentication in the OpenAPI schema."""

    target_class = "merchants.views.shopify.ShopifyIdTokenAuthentication"
    name = "shopifyIdToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "App Bridge ID token"}


class HasShopifySession(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ShopifySession)


class ShopifyEmbeddedAPIView(APIView):
    """Base of the embedded admin API: ID-token auth, and the frame-ancestors CSP on every answer."""

    authentication_classes = [ShopifyIdTokenAuthentication]
    permission_classes = [HasShopifySession]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        session = request.auth if isinstance(request, Request) else None
        shop = session.shop if isinstance(session, ShopifySession) else None
        response["Content-Security-Policy"] = shopify_frame_ancestors(shop=shop)
        if response.status_code == 401 and request.headers.get("Authorization"):
            response[RETRY_INVALID_SESSION_HEADER] = "1"
        return response

    def session(self, request: Request) -> ShopifySession:
        if not isinstance(request.auth, ShopifySession):
            raise NotAuthenticated()
        return request.auth


class ShopifyStoreView(ShopifyEmbeddedAPIView):
    """The store behind the embedded admin: shop, widget site key, status and merchant settings."""

    @extend_schema_serializer(component_name="ShopifyAdminStore")
    class OutputSerializer(serializers.Serializer):
        shop = serializers.CharField(source="domain")
        site_key = serializers.CharField()
        status = serializers.CharField()
        settings = serializers.JSONField()

    @extend_schema(
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(ErrorSerializer, description="No App Bridge ID token, or an invalid or expired one."),
            403: OpenApiResponse(ErrorSerializer, description="Shopify refused to install the app for this shop."),
            502: OpenApiResponse(ErrorSerializer, description="Shopify could not be reached to install the app."),
        },
        operation_id="shopify_admin_store",
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(self.session(request).store).data)


urlpatterns = [
    path("shopify/install", install, name="shopify-install"),
    path("shopify/callback", callback, name="shopify-callback"),
    path("shopify/admin/api/store", xframe_options_exempt(ShopifyStoreView.as_view()), name="shopify-admin-store"),
    path("webhooks/shopify", webhook, name="shopify-webhook"),
]

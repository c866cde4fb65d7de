"""Shop domains, the app's secrets, its URLs in the Shopify admin, and the client of the token endpoint."""

from datetime import datetime, timedelta

from django.conf import settings
from shopify.utils.shop_url import sanitize_shop_domain

from merchants.clients.shopify import ShopifyOAuthClient
from merchants.exceptions import InvalidRequest

SHOPIFY_ADMIN_ORIGIN = "https://admin.shopify.com"
MYSHOPIFY_SUFFIX = ".myshopify.com"


def validate_shop_domain(shop: str | None) -> str:
    """Return `shop` when it is exactly a lowercase `<name>.myshopify.com` host, else raise InvalidRequest."""
    if not shop:
        raise InvalidRequest("The shop is missing; expected <name>.myshopify.com.")
    if len(shop) > 255 or sanitize_shop_domain(shop) != shop:
        raise InvalidRequest(
            f"{shop[:300]!r} is not a Shopify shop domain; expected <name>.myshopify.com in lowercase."
        )
    return shop


def app_secrets() -> list[str]:
    """The current app secret, then the previous one while a rotation is under way."""
    return [secret for secret in (settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS) if secret]


def admin_base_url(shop: str) -> str:
    """The base URL of the shop's admin (SHOPIFY_ADMIN_URL_TEMPLATE), without a trailing slash."""
    return str(settings.SHOPIFY_ADMIN_URL_TEMPLATE).format(shop=shop).rstrip("/")


def shopify_redirect_uri() -> str:
    """The OAuth redirect_uri registered with Shopify (APP_URL + /shopify/callback)."""
    return f"{settings.APP_URL}/shopify/callback"


def shopify_admin_app_url(*, shop: str) -> str:
    """The embedded app's page inside the Shopify admin for the shop."""
    name = shop.removesuffix(MYSHOPIFY_SUFFIX)
    return f"{SHOPIFY_ADMIN_ORIGIN}/store/{name}/apps/{settings.SHOPIFY_API_KEY}"


def shopify_frame_ancestors(*, shop: str | None) -> str:
    """The Content-Security-Policy that lets only the shop's admin frame the embedded app."""
    if shop is None:
        return f"frame-ancestors {SHOPIFY_ADMIN_ORIGIN}"
    return f"frame-ancestors https://{shop} {SHOPIFY_ADMIN_ORIGIN}"


def oauth_client(*, shop: str) -> ShopifyOAuthClient:
    """A client of the shop's token endpoint (code grant, refresh, token exchange), with the app's credentials."""
    return ShopifyOAuthClient(
        token_url=f"{admin_base_url(shop)}/admin/oauth/access_token",
        client_id=settings.SHOPIFY_API_KEY,
        client_secret=settings.SHOPIFY_API_SECRET,
        timeout=float(settings.PLATFORM_HTTP_TIMEOUT_SECONDS),
    )


def expiry(now: datetime, seconds: int | None) -> datetime | None:
    """When a token given `seconds` to live at `now` expires; None for a token that does not."""
    return None if seconds is None else now + timedelta(seconds=seconds)

"""OAuth install and callback (authorization code grant), and what every install shares: scopes, store row, tokens."""

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from merchants.clients.shopify import ShopifyToken
from merchants.exceptions import InvalidRequest, PlatformRejected, StaleRequest
from merchants.models import OAuthState, PlatformCredential, Store, StoreEvent
from merchants.services.shopify.shop import admin_base_url, expiry, oauth_client, shopify_redirect_uri
from merchants.services.stores import record_store_event

logger = logging.getLogger(__name__)

# Long enough for a merchant to read the scope screen, short enough that a leaked state is useless.
OAUTH_STATE_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class OAuthStart:
    """Where to send the merchant, and the one-time state to bind to their browser."""

    authorize_url: str
    state: str


def get_installed_shopify_store(*, shop: str) -> Store | None:
    """Return the shop's store when the app is installed and active there."""
    return Store.objects.filter(platform=Store.Platform.SHOPIFY, domain=shop, status=Store.Status.ACTIVE).first()


def start_shopify_oauth(*, shop: str) -> OAuthStart:
    """Store a one-time `state` for the shop and build the URL of its authorization (scope consent) page."""
    now = timezone.now()
    OAuthState.objects.filter(created_at__lt=now - timedelta(days=1)).delete()  # abandoned installs
    nonce = secrets.token_urlsafe(32)
    OAuthState.objects.create(nonce=nonce, shop=shop, created_at=now)
    query = urlencode(
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "scope": settings.SHOPIFY_SCOPES,
            "redirect_uri": shopify_redirect_uri(),
            "state": nonce,
        }
    )
    return OAuthStart(authorize_url=f"{admin_base_url(shop)}/admin/oauth/authorize?{query}", state=nonce)


def complete_shopify_install(*, shop: str, state: str, browser_state: str | None, code: str) -> Store:
    """Consume the state, exchange the code for an expiring offline token, and activate the store.

    Stores both tokens encrypted and records an INSTALLED or REINSTALLED event. Nothing is stored when the
    token endpoint refuses (PlatformRejected) or fails (PlatformUnavailable). `shop` must come from
    verify_shopify_request.
    """
    if not code:
        raise InvalidRequest("The code parameter is missing.")
    _consume_oauth_state(shop=shop, state=state, browser_state=browser_state)
    token = oauth_client(shop=shop).exchange_code(code=code)
    problem = scope_problem(token)
    if problem:
        raise PlatformRejected(f"{problem} Install the app again and accept every requested permission.")
    with transaction.atomic():
        store, created = lock_shopify_store(shop=shop)
        activate_store(store=store, created=created, token=token, by="shopify_oauth")
    logger.info("shopify.installed", extra={"shop": shop, "store_id": store.id, "by": "shopify_oauth"})
    return store


def _consume_oauth_state(*, shop: str, state: str, browser_state: str | None) -> None:
    if not state:
        raise InvalidRequest("The state parameter is missing.")
    if not browser_state or not hmac.compare_digest(browser_state.encode(), state.encode()):
        raise InvalidRequest(
            "The state does not belong to this browser session; start the installation again from the Shopify admin."
        )
    now = timezone.now()
    # One conditional UPDATE: of two concurrent callbacks with the same state, exactly one wins.
    claimed = OAuthState.objects.filter(
        nonce=state, shop=shop, used_at__isnull=True, created_at__gte=now - OAUTH_STATE_MAX_AGE
    ).update(used_at=now)
    if claimed == 1:
        return
    row = OAuthState.objects.filter(nonce=state).first()
    if row is None:
        raise InvalidRequest("The state is unknown; start the installation again from the Shopify admin.")
    if row.shop != shop:
        raise InvalidRequest("The state was issued for another shop.")
    if row.used_at is not None:
        raise StaleRequest("The state has already been used; this callback is a replay.")
    raise StaleRequest("The state has expired; start the installation again from the Shopify admin.")


def scope_problem(token: ShopifyToken) -> str | None:
    """What the grant lacks of SHOPIFY_SCOPES, in words; None when it covers them."""
    missing = _missing_scopes(granted=token.scope)
    if not missing:
        return None
    return f"Shopify granted {token.scope or 'no scopes'}; the app needs {', '.join(missing)} as well."


def _missing_scopes(*, granted: str) -> list[str]:
    granted_scopes = {scope.strip() for scope in granted.split(",") if scope.strip()}
    missing = []
    for scope in (scope.strip() for scope in str(settings.SHOPIFY_SCOPES).split(",")):
        implied_by_write = scope.startswith("read_") and f"write_{scope.removeprefix('read_')}" in granted_scopes
        if scope and scope not in granted_scopes and not implied_by_write:
            missing.append(scope)
    return missing


def lock_shopify_store(*, shop: str) -> tuple[Store, bool]:
    """Get or create (PENDING) the shop's store, row-locked until the transaction ends; True when created here.

    Call inside a transaction. Two requests creating the same shop at once meet on the unique (platform, domain)
    constraint: the second insert waits for the first transaction, fails, and reads (and locks) its row.
    """
    return Store.objects.select_for_update().get_or_create(
        platform=Store.Platform.SHOPIFY, domain=shop, defaults={"name": shop, "status": Store.Status.PENDING}
    )


def activate_store(*, store: Store, created: bool, token: ShopifyToken, by: str) -> None:
    """Finish an install on a locked store: activate it, store both tokens encrypted, record INSTALLED or REINSTALLED.

    Shared by the OAuth callback and token exchange; `by` names the grant in the event.
    """
    now = timezone.now()
    previous_status = None if created else store.status
    first_install = created or store.installed_at is None
    store.status = Store.Status.ACTIVE
    store.installed_at = now
    store.uninstalled_at = None
    store.save(update_fields=["status", "installed_at", "uninstalled_at", "updated_at"])
    PlatformCredential.objects.update_or_create(
        store=store,
        defaults={
            "access_token": token.access_token,
            "access_token_expires_at": expiry(now, token.expires_in),
            "refresh_token": token.refresh_token,
            "refresh_token_expires_at": expiry(now, token.refresh_token_expires_in),
            "scopes": token.scope,
        },
    )
    detail: dict[str, Any] = {"by": by, "scopes": token.scope}
    if previous_status is not None:
        detail["previous_status"] = previous_status
    kind = StoreEvent.Kind.INSTALLED if first_install else StoreEvent.Kind.REINSTALLED
    record_store_event(store=store, kind=kind, detail=detail)


def prune_oauth_states(*, now: datetime | None = None) -> int:
    """Delete OAuth states past their 10 minutes, used or not (a used one is never accepted again anyway)."""
    deleted, _ = OAuthState.objects.filter(created_at__lt=(now or timezone.now()) - OAUTH_STATE_MAX_AGE).delete()
    return deleted

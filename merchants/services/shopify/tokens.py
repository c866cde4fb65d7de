"""Expiring offline tokens: refresh before expiry under a per-store lock, and re-authorisation when refused."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from merchants.clients.shopify import ShopifyToken, ShopifyTokenRejected
from merchants.exceptions import MerchantError, PlatformRejected, TokenRefreshRefused
from merchants.models import PlatformCredential, Store, StoreEvent
from merchants.services.shopify.shop import expiry, oauth_client
from merchants.services.stores import mark_store_needs_reauth, record_store_event

logger = logging.getLogger(__name__)

# The token endpoint answers 400/401 to a revoked or already-rotated grant: only a new install fixes that.
REAUTH_STATUSES = frozenset({400, 401})


def _refresh_margin() -> timedelta:
    return timedelta(seconds=int(settings.SHOPIFY_TOKEN_REFRESH_MARGIN_SECONDS))


def _expires_soon(credential: PlatformCredential, *, now: datetime) -> bool:
    expires_at = credential.access_token_expires_at
    return expires_at is not None and expires_at <= now + _refresh_margin()


def _ensure_usable(credential: PlatformCredential | None, *, store: Store) -> PlatformCredential:
    if credential is None or not credential.access_token or store.platform != Store.Platform.SHOPIFY:
        raise PlatformRejected(f"{store.domain} holds no Shopify access token; the app must be installed again.")
    if credential.store.status != Store.Status.ACTIVE:
        raise PlatformRejected(
            f"{store.domain} is not active ({credential.store.get_status_display()}); "
            "the merchant must open the app from the Shopify admin again."
        )
    return credential


def get_shopify_access_token(*, store: Store) -> str:
    """Return a usable offline access token for the store, refreshing it first when it expires soon.

    The refresh runs under a per-store row lock and re-checks the expiry once the lock is held, because
    Shopify rotates the refresh token on every use and two workers must not both spend it. A refresh
    answered 400/401 (or impossible: no refresh token left) marks the store NEEDS_REAUTH with an event, and
    raises TokenRefreshRefused once that mark is committed.
    """
    credential = PlatformCredential.objects.select_related("store").filter(store_id=store.id).first()
    credential = _ensure_usable(credential, store=store)
    if not _expires_soon(credential, now=timezone.now()):
        return credential.access_token
    return _refresh_locked(store=store)


def _refresh_locked(*, store: Store) -> str:
    refused: TokenRefreshRefused | None = None
    with transaction.atomic():
        credential = (
            PlatformCredential.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(store_id=store.id)
            .first()
        )
        credential = _ensure_usable(credential, store=store)
        now = timezone.now()
        if not _expires_soon(credential, now=now):
            return credential.access_token  # another worker refreshed it while this one waited for the lock
        try:
            token = _request_refresh(credential, now=now)
        except TokenRefreshRefused as exc:
            mark_store_needs_reauth(store=credential.store, reason=exc.reason)
            refused = exc
        else:
            _store_refreshed_token(credential, token, now=now)
    if refused is not None:
        raise refused  # after the commit, so the NEEDS_REAUTH mark is kept
    logger.info("shopify.token_refreshed", extra={"store_id": store.id})
    return token.access_token


def _request_refresh(credential: PlatformCredential, *, now: datetime) -> ShopifyToken:
    """Spend the refresh token; TokenRefreshRefused when there is none left or Shopify refuses it for good."""
    refresh_expires_at = credential.refresh_token_expires_at
    if not credential.refresh_token or (refresh_expires_at is not None and refresh_expires_at <= now):
        reason = "The refresh token is missing or expired."
        raise TokenRefreshRefused(
            f"{credential.store.domain}: {reason} The merchant must open the app again.", reason=reason
        )
    try:
        return oauth_client(shop=credential.store.domain).refresh(refresh_token=credential.refresh_token)
    except ShopifyTokenRejected as exc:
        if exc.upstream_status not in REAUTH_STATUSES:
            raise
        raise TokenRefreshRefused(exc.message) from exc


def _store_refreshed_token(credential: PlatformCredential, token: ShopifyToken, *, now: datetime) -> None:
    credential.access_token = token.access_token
    credential.access_token_expires_at = expiry(now, token.expires_in)
    # Shopify answers a new refresh token each time; keep the old one only if it sent none.
    credential.refresh_token = token.refresh_token or credential.refresh_token
    if token.refresh_token:
        credential.refresh_token_expires_at = expiry(now, token.refresh_token_expires_in)
    if token.scope:
        credential.scopes = token.scope
    credential.save()
    record_store_event(
        store=credential.store,
        kind=StoreEvent.Kind.TOKEN_REFRESHED,
        detail={"access_token_expires_at": credential.access_token_expires_at.isoformat()}
        if credential.access_token_expires_at
        else {},
    )


def refresh_expiring_tokens() -> int:
    """Refresh the token of every active Shopify store that expires within the margin; returns how many succeeded."""
    cutoff = timezone.now() + _refresh_margin()
    stores = Store.objects.filter(
        platform=Store.Platform.SHOPIFY,
        status=Store.Status.ACTIVE,
        credential__access_token_expires_at__lte=cutoff,
    ).order_by("id")
    refreshed = 0
    for store in stores:
        try:
            get_shopify_access_token(store=store)
        except MerchantError as exc:
            logger.warning("shopify.token_refresh_failed", extra={"store_id": store.id, "error": exc.code})
            continue
        refreshed += 1
    return refreshed

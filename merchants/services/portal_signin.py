"""Signed, short-lived, single-use portal sign-in links from the WooCommerce plugin's settings page.

The plugin and Bitrecs share one secret per store already: the consumer secret of the read-only REST key the
merchant approved on connect (WooCommerce keeps it in its api_keys table; we keep it encrypted in
PlatformCredential). The plugin signs, with HMAC-SHA256 under that secret, the message

    "bitrecs-portal-signin\\n{store_url}\\n{key_id}\\n{expires}\\n{nonce}"

and links to /portal/woocommerce/signin?store_url=…&key_id=…&expires=…&nonce=…&signature=<64 hex>. The key id
must be the store's current key (a revoked or replaced key's secret signs nothing), `expires` a Unix time at most
LINK_MAX_LIFETIME ahead, and each nonce is accepted once.

Opening the link does not sign anyone in: it shows which store it is for, and a button (a same-site POST under
Django's CSRF protection) uses the link up and signs in. So a link made for someone else's store, put in front of a
merchant by a third site (a "login CSRF"), cannot silently sign them in to that store.
"""

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from merchants.exceptions import InvalidRequest, MerchantError
from merchants.models import PlatformCredential, PortalSignInNonce, Store
from merchants.services.stores import grant_store_access
from merchants.services.woocommerce import normalize_store_url

logger = logging.getLogger(__name__)

LINK_MAX_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=60)  # the shop's clock may run a little ahead of ours
MESSAGE_PREFIX = "bitrecs-portal-signin"
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")


class SignInLinkRefused(MerchantError):
    """A portal sign-in link that is malformed, expired, already used or not signed by the store."""

    status_code = 403
    code = "signin_link_refused"


def signin_message(*, store_url: str, key_id: str, expires: int, nonce: str) -> str:
    """The text a sign-in link's signature covers (the plugin builds the same)."""
    return f"{MESSAGE_PREFIX}\n{store_url}\n{key_id}\n{expires}\n{nonce}"


def sign_signin_link(*, secret: str, store_url: str, key_id: str, expires: int, nonce: str) -> str:
    """Hex HMAC-SHA256 of the link's message under the store's consumer secret (tests and tools sign with it)."""
    message = signin_message(store_url=store_url, key_id=key_id, expires=expires, nonce=nonce)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_woocommerce_signin(*, params: Mapping[str, str], now: datetime | None = None, use: bool = True) -> Store:
    """Check a sign-in link's parameters and (with use, the default) use up its nonce; the store it signs in to, or
    SignInLinkRefused (403). With use=False a link whose nonce was used is refused too, and the nonce stays unused."""
    now = now or timezone.now()
    store_url, key_id = params.get("store_url", ""), params.get("key_id", "")
    nonce, signature = params.get("nonce", ""), params.get("signature", "").lower()
    raw_expires = params.get("expires", "")
    if not (raw_expires.isdigit() and len(raw_expires) <= 12 and key_id.isdigit() and len(key_id) <= 20):
        raise SignInLinkRefused("This sign-in link is incomplete. Open the portal again from the plugin's page.")
    if not NONCE_RE.fullmatch(nonce) or not SIGNATURE_RE.fullmatch(signature):
        raise SignInLinkRefused("This sign-in link is incomplete. Open the portal again from the plugin's page.")
    expires = int(raw_expires)
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    if expires_at <= now:
        raise SignInLinkRefused(
            "This sign-in link has expired (links last 5 minutes). Click “Open Bitrecs portal” in "
            "WooCommerce > Bitrecs again."
        )
    if expires_at > now + LINK_MAX_LIFETIME + CLOCK_SKEW:
        raise SignInLinkRefused("This sign-in link claims to last too long; check the shop's clock and try again.")
    try:
        domain = normalize_store_url(raw_url=store_url).domain
    except InvalidRequest as exc:
        raise SignInLinkRefused(f"This sign-in link names no store: {exc.message}") from exc
    credential = (
        PlatformCredential.objects.select_related("store")
        .filter(store__platform=Store.Platform.WOOCOMMERCE, store__domain=domain)
        .first()
    )
    if credential is None or credential.store.status == Store.Status.UNINSTALLED or not credential.consumer_secret:
        raise SignInLinkRefused(
            "This store is not connected to Bitrecs. Click “Connect to Bitrecs” on the plugin's page."
        )
    if credential.key_id != key_id:
        raise SignInLinkRefused(
            "This link was signed with a REST key Bitrecs no longer uses. Click “Connect to Bitrecs” again, then "
            "open the portal."
        )
    expected = sign_signin_link(
        secret=credential.consumer_secret, store_url=store_url, key_id=key_id, expires=expires, nonce=nonce
    )
    if not hmac.compare_digest(expected, signature):
        raise SignInLinkRefused("This sign-in link's signature is not valid. Open the portal again from the plugin.")
    used = SignInLinkRefused(
        "This sign-in link was already used. Click “Open Bitrecs portal” in WooCommerce > Bitrecs for a new one."
    )
    if not use:
        if PortalSignInNonce.objects.filter(store=credential.store, nonce=nonce).exists():
            raise used
        return credential.store
    try:
        with transaction.atomic():
            PortalSignInNonce.objects.create(store=credential.store, nonce=nonce, expires_at=expires_at)
    except IntegrityError:
        raise used from None
    logger.info("portal.woocommerce_signin", extra={"store_id": credential.store.id})
    return credential.store


def get_store_portal_user(*, store: Store) -> User:
    """The store's own portal user (no password; it signs in by platform links only), with access to the store only.

    Never an existing user found by email: a shop's admin could otherwise claim the account of another store's owner.
    """
    username = f"{store.platform}-store-{store.pk}"
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    grant_store_access(user=user, store=store)
    return user


def prune_signin_nonces(*, now: datetime | None = None) -> int:
    """Forget the nonces of links that have expired (an expired link is refused before its nonce is looked at)."""
    deleted, _ = PortalSignInNonce.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted

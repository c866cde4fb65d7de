"""The embedded admin: App Bridge ID tokens, and Shopify-managed installation by token exchange."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from shopify import session_token

from merchants.clients.shopify import ShopifyTokenRejected
from merchants.exceptions import InstallRefused, InvalidRequest, InvalidSignature
from merchants.models import PlatformCredential, Store
from merchants.services.shopify.install import activate_store, lock_shopify_store, scope_problem
from merchants.services.shopify.shop import app_secrets, oauth_client, validate_shop_domain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShopifySession:
    """Who an embedded-admin request comes from, per a verified ID token."""

    store: Store
    shop: str
    user_id: str
    session_id: str
    # True when this request installed (or reinstalled) the app by token exchange: the caller starts the first sync.
    installed: bool = False


def authenticate_shopify_id_token(*, authorization: str) -> ShopifySession:
    """Verify an App Bridge ID token (`Bearer …` header) and return the session of its shop's store.

    HS256 with the app secret (or the previous one during a rotation), `aud` = the API key, `exp` and
    `nbf` required (10 s leeway), `iss` and `dest` on the same myshopify host. Raises InvalidSignature.
    When the shop holds no usable offline token (unknown, uninstalled, needing re-authorisation, or past its
    refresh token), the ID token is exchanged for one first: see install_shopify_by_token_exchange.
    """
    claims = _decode_id_token(authorization)
    if "exp" not in claims or "nbf" not in claims:
        raise InvalidSignature("The ID token must carry exp and nbf.")
    dest, issuer = urlsplit(str(claims["dest"])), urlsplit(str(claims["iss"]))
    if dest.scheme != "https" or issuer.scheme != "https" or issuer.netloc != dest.netloc:
        raise InvalidSignature("The ID token's iss and dest are not the same https shop.")
    try:
        shop = validate_shop_domain(dest.netloc)
    except InvalidRequest as exc:
        raise InvalidSignature(f"The ID token's dest is not a shop: {exc.message}") from exc
    user_id, session_id = str(claims["sub"]), str(claims["sid"])
    credential = (
        PlatformCredential.objects.select_related("store")
        .filter(store__platform=Store.Platform.SHOPIFY, store__domain=shop)
        .first()
    )
    if credential is not None and _holds_usable_token(credential.store, credential, now=timezone.now()):
        return ShopifySession(store=credential.store, shop=shop, user_id=user_id, session_id=session_id)
    id_token = authorization.removeprefix(session_token.PREFIX)
    store, installed = install_shopify_by_token_exchange(shop=shop, id_token=id_token)
    return ShopifySession(store=store, shop=shop, user_id=user_id, session_id=session_id, installed=installed)


def _holds_usable_token(store: Store, credential: PlatformCredential | None, *, now: datetime) -> bool:
    """True for an active store whose access token is valid, or expired but still refreshable."""
    if store.status != Store.Status.ACTIVE or credential is None or not credential.access_token:
        return False
    if credential.access_token_expires_at is None or credential.access_token_expires_at > now:
        return True
    refresh_expires_at = credential.refresh_token_expires_at
    return bool(credential.refresh_token) and (refresh_expires_at is None or refresh_expires_at > now)


def install_shopify_by_token_exchange(*, shop: str, id_token: str) -> tuple[Store, bool]:
    """Exchange a verified ID token for an expiring offline token and activate the shop's store with it.

    Shopify-managed installation: Shopify installs the app before its admin page loads, so a valid ID token for
    a shop without a usable token means "finish the install here". Returns (store, True) after an exchange; the
    caller enqueues the first sync.

    Runs under the store's row lock (the row is created if need be) and re-checks the token once the lock is
    held: of two concurrent first requests only one exchanges, and the other gets (store, False). A second
    exchange would be worse than wasted, since a new expiring token revokes the shop's previous ones.
    Nothing is stored when Shopify refuses the ID token (InvalidSignature, 401) or the install
    (InstallRefused, 403), or cannot be reached (PlatformUnavailable). `shop` must come from the token's dest.
    """
    with transaction.atomic():
        store, created = lock_shopify_store(shop=shop)
        credential = None if created else PlatformCredential.objects.filter(store=store).first()
        if _holds_usable_token(store, credential, now=timezone.now()):
            return store, False  # another request exchanged while this one waited for the lock
        try:
            token = oauth_client(shop=shop).exchange_id_token(id_token=id_token)
        except ShopifyTokenRejected as exc:
            if exc.upstream_error == "invalid_subject_token":
                raise InvalidSignature(f"Shopify's token exchange refused the ID token: {exc.message}") from exc
            raise InstallRefused(f"Shopify would not give the app an access token for {shop}: {exc.message}") from exc
        problem = scope_problem(token)
        if problem:
            raise InstallRefused(f"{problem} Open the app from the Shopify admin again and accept every permission.")
        activate_store(store=store, created=created, token=token, by="shopify_token_exchange")
    logger.info("shopify.installed", extra={"shop": shop, "store_id": store.id, "by": "shopify_token_exchange"})
    return store, True


def _decode_id_token(authorization: str) -> dict[str, Any]:
    errors: list[str] = []
    for secret in app_secrets():
        try:
            claims = session_token.decode_from_header(authorization, settings.SHOPIFY_API_KEY, secret)
        except session_token.SessionTokenError as exc:
            errors.append(str(exc))
            continue
        return dict(claims)
    raise InvalidSignature(f"The ID token is not valid: {errors[0] if errors else 'no app secret is configured'}.")

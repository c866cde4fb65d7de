"""Shopify onboarding: OAuth install and callback, expiring-token refresh, embedded ID tokens, webhook topics."""

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from shopify import session_token
from shopify.utils.shop_url import sanitize_shop_domain

from merchants.clients.shopify import ShopifyOAuthClient, ShopifyToken, ShopifyTokenRejected
from merchants.exceptions import (
    InstallRefused,
    InvalidRequest,
    InvalidSignature,
    MerchantError,
    PlatformRejected,
    StaleRequest,
)
from merchants.models import OAuthState, PlatformCredential, Store, StoreEvent, WebhookEvent
from merchants.services.stores import mark_store_needs_reauth, record_store_event
from merchants.services.webhooks import parse_json_object, record_webhook_event

logger = logging.getLogger(__name__)

# Long enough for a merchant to read the scope screen, short enough that a leaked state is useless.
OAUTH_STATE_MAX_AGE = timedelta(minutes=10)
# Shopify's clocks and ours drift a little; a timestamp further ahead than this is not a real request.
TIMESTAMP_FUTURE_SKEW_SECONDS = 60
# The token endpoint answers 400/401 to a revoked or already-rotated grant: only a new install fixes that.
REAUTH_STATUSES = frozenset({400, 401})
SHOPIFY_ADMIN_ORIGIN = "https://admin.shopify.com"
MYSHOPIFY_SUFFIX = ".myshopify.com"


# --- Shop domains, secrets and URLs ---------------------------------------------------------------


def validate_shop_domain(shop: str | None) -> str:
    """Return `shop` when it is exactly a lowercase `<name>.myshopify.com` host, else raise InvalidRequest."""
    if not shop:
        raise InvalidRequest("The shop is missing; expected <name>.myshopify.com.")
    if len(shop) > 255 or sanitize_shop_domain(shop) != shop:
        raise InvalidRequest(
            f"{shop[:300]!r} is not a Shopify shop domain; expected <name>.myshopify.com in lowercase."
        )
    return shop


def _app_secrets() -> list[str]:
    """The current app secret, then the previous one while a rotation is under way."""
    return [secret for secret in (settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS) if secret]


def _admin_base_url(shop: str) -> str:
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


def _oauth_client(*, shop: str) -> ShopifyOAuthClient:
    return ShopifyOAuthClient(
        token_url=f"{_admin_base_url(shop)}/admin/oauth/access_token",
        client_id=settings.SHOPIFY_API_KEY,
        client_secret=settings.SHOPIFY_API_SECRET,
        timeout=float(settings.PLATFORM_HTTP_TIMEOUT_SECONDS),
    )


# --- Install and callback (authorization code grant) ----------------------------------------------


@dataclass(frozen=True)
class OAuthStart:
    """Where to send the merchant, and the one-time state to bind to their browser."""

    authorize_url: str
    state: str


def _single(params: Mapping[str, Sequence[str]], key: str) -> str:
    values = params.get(key) or []
    if len(values) > 1:
        raise InvalidRequest(f"The parameter {key!r} appears more than once.")
    return values[0] if values else ""


def _query_hmac_message(params: Mapping[str, Sequence[str]]) -> str:
    """Shopify's signed message: every parameter but hmac/signature, delimiters escaped, sorted, joined with &."""
    pairs = []
    for raw_key, values in params.items():
        if raw_key in ("hmac", "signature"):
            continue
        if raw_key.endswith("[]"):
            key, value = raw_key[:-2], json.dumps([str(item) for item in values])
        elif len(values) == 1:
            key, value = raw_key, values[0]
        else:
            raise InvalidRequest(f"The parameter {raw_key!r} appears more than once.")
        key = key.replace("%", "%25").replace("=", "%3D")
        value = value.replace("%", "%25")
        pairs.append(f"{key}={value}".replace("&", "%26"))
    return "&".join(sorted(pairs))


def compute_query_hmac(*, params: Mapping[str, Sequence[str]], secret: str) -> str:
    """Return the hex HMAC-SHA256 Shopify puts in the `hmac` parameter of an install or callback URL."""
    return hmac.new(secret.encode(), _query_hmac_message(params).encode(), hashlib.sha256).hexdigest()


def verify_shopify_request(*, params: Mapping[str, Sequence[str]]) -> str:
    """Check a query Shopify signed (shop, hmac, timestamp) and return the shop; raise 400/401 otherwise."""
    shop = validate_shop_domain(_single(params, "shop"))
    received = _single(params, "hmac")
    if not received:
        raise InvalidSignature("The request carries no hmac parameter; open the app from the Shopify admin.")
    if not any(
        hmac.compare_digest(compute_query_hmac(params=params, secret=secret).encode(), received.encode())
        for secret in _app_secrets()
    ):
        raise InvalidSignature("The hmac parameter does not match: the request was not signed by Shopify for this app.")
    _check_timestamp(_single(params, "timestamp"))
    return shop


def _check_timestamp(raw: str) -> None:
    try:
        timestamp = int(raw)
    except ValueError as exc:
        raise InvalidRequest("The timestamp parameter is missing or not a whole number of seconds.") from exc
    now = timezone.now().timestamp()
    max_age = int(settings.SHOPIFY_HMAC_MAX_AGE_SECONDS)
    if now - timestamp > max_age:
        raise StaleRequest(
            f"The request was signed {int(now - timestamp)} s ago; the limit is {max_age} s. "
            "Open the app from the Shopify admin again."
        )
    if timestamp - now > TIMESTAMP_FUTURE_SKEW_SECONDS:
        raise StaleRequest("The request's timestamp is in the future; check the server clock.")


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
    return OAuthStart(authorize_url=f"{_admin_base_url(shop)}/admin/oauth/authorize?{query}", state=nonce)


def complete_shopify_install(*, shop: str, state: str, browser_state: str | None, code: str) -> Store:
    """Consume the state, exchange the code for an expiring offline token, and activate the store.

    Stores both tokens encrypted and records an INSTALLED or REINSTALLED event. Nothing is stored when the
    token endpoint refuses (PlatformRejected) or fails (PlatformUnavailable). `shop` must come from
    verify_shopify_request.
    """
    if not code:
        raise InvalidRequest("The code parameter is missing.")
    _consume_oauth_state(shop=shop, state=state, browser_state=browser_state)
    token = _oauth_client(shop=shop).exchange_code(code=code)
    problem = _scope_problem(token)
    if problem:
        raise PlatformRejected(f"{problem} Install the app again and accept every requested permission.")
    with transaction.atomic():
        store, created = _lock_shopify_store(shop=shop)
        _activate_store(store=store, created=created, token=token, by="shopify_oauth")
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


def _scope_problem(token: ShopifyToken) -> str | None:
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


def _expiry(now: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)


def _lock_shopify_store(*, shop: str) -> tuple[Store, bool]:
    """Get or create (PENDING) the shop's store, row-locked until the transaction ends; True when created here.

    Call inside a transaction. Two requests creating the same shop at once meet on the unique (platform, domain)
    constraint: the second insert waits for the first transaction, fails, and reads (and locks) its row.
    """
    return Store.objects.select_for_update().get_or_create(
        platform=Store.Platform.SHOPIFY, domain=shop, defaults={"name": shop, "status": Store.Status.PENDING}
    )


def _activate_store(*, store: Store, created: bool, token: ShopifyToken, by: str) -> None:
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
            "access_token_expires_at": _expiry(now, token.expires_in),
            "refresh_token": token.refresh_token,
            "refresh_token_expires_at": _expiry(now, token.refresh_token_expires_in),
            "scopes": token.scope,
        },
    )
    detail: dict[str, Any] = {"by": by, "scopes": token.scope}
    if previous_status is not None:
        detail["previous_status"] = previous_status
    kind = StoreEvent.Kind.INSTALLED if first_install else StoreEvent.Kind.REINSTALLED
    record_store_event(store=store, kind=kind, detail=detail)


# --- Expiring offline tokens ------------------------------------------------------------------------


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
    answered 400/401 marks the store NEEDS_REAUTH (with an event) and raises PlatformRejected.
    """
    credential = PlatformCredential.objects.select_related("store").filter(store_id=store.id).first()
    credential = _ensure_usable(credential, store=store)
    if not _expires_soon(credential, now=timezone.now()):
        return credential.access_token
    outcome = _refresh_locked(store=store)
    if isinstance(outcome, MerchantError):
        raise outcome  # raised after the commit, so the NEEDS_REAUTH mark is kept
    return outcome


def _refresh_locked(*, store: Store) -> str | MerchantError:
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
        refresh_expires_at = credential.refresh_token_expires_at
        if not credential.refresh_token or (refresh_expires_at is not None and refresh_expires_at <= now):
            reason = "The refresh token is missing or expired."
            mark_store_needs_reauth(store=credential.store, reason=reason)
            return PlatformRejected(f"{store.domain}: {reason} The merchant must open the app again.")
        try:
            token = _oauth_client(shop=credential.store.domain).refresh(refresh_token=credential.refresh_token)
        except ShopifyTokenRejected as exc:
            if exc.upstream_status not in REAUTH_STATUSES:
                raise
            mark_store_needs_reauth(store=credential.store, reason=exc.message)
            return exc
        credential.access_token = token.access_token
        credential.access_token_expires_at = _expiry(now, token.expires_in)
        # Shopify answers a new refresh token each time; keep the old one only if it sent none.
        credential.refresh_token = token.refresh_token or credential.refresh_token
        if token.refresh_token:
            credential.refresh_token_expires_at = _expiry(now, token.refresh_token_expires_in)
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
    logger.info("shopify.token_refreshed", extra={"store_id": store.id})
    return token.access_token


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


# --- Embedded admin: App Bridge ID tokens ---------------------------------------------------------


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
        store, created = _lock_shopify_store(shop=shop)
        credential = None if created else PlatformCredential.objects.filter(store=store).first()
        if _holds_usable_token(store, credential, now=timezone.now()):
            return store, False  # another request exchanged while this one waited for the lock
        try:
            token = _oauth_client(shop=shop).exchange_id_token(id_token=id_token)
        except ShopifyTokenRejected as exc:
            if exc.upstream_error == "invalid_subject_token":
                raise InvalidSignature(f"Shopify's token exchange refused the ID token: {exc.message}") from exc
            raise InstallRefused(f"Shopify would not give the app an access token for {shop}: {exc.message}") from exc
        problem = _scope_problem(token)
        if problem:
            raise InstallRefused(f"{problem} Open the app from the Shopify admin again and accept every permission.")
        _activate_store(store=store, created=created, token=token, by="shopify_token_exchange")
    logger.info("shopify.installed", extra={"shop": shop, "store_id": store.id, "by": "shopify_token_exchange"})
    return store, True


def _decode_id_token(authorization: str) -> dict[str, Any]:
    errors: list[str] = []
    for secret in _app_secrets():
        try:
            claims = session_token.decode_from_header(authorization, settings.SHOPIFY_API_KEY, secret)
        except session_token.SessionTokenError as exc:
            errors.append(str(exc))
            continue
        return dict(claims)
    raise InvalidSignature(f"The ID token is not valid: {errors[0] if errors else 'no app secret is configured'}.")


# --- Webhooks ---------------------------------------------------------------------------------------


def _webhook_header(headers: Mapping[str, str], name: str) -> str:
    """A Shopify header by name, case-insensitive, with or without the X- prefix."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return (lowered.get(f"x-shopify-{name}") or lowered.get(f"shopify-{name}") or "").strip()


def verify_webhook_hmac(*, body: bytes, signature: str) -> None:
    """Check X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body) against the app secret(s); 401 if not."""
    if not signature:
        raise InvalidSignature("The X-Shopify-Hmac-Sha256 header is missing.")
    for secret in _app_secrets():
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        if hmac.compare_digest(expected, signature.encode()):
            return
    raise InvalidSignature("The X-Shopify-Hmac-Sha256 header does not match the body.")


def receive_shopify_webhook(*, headers: Mapping[str, str], body: bytes) -> tuple[WebhookEvent, bool]:
    """Verify a delivery, then store it once (deduplicated on topic + event id) and enqueue its processing."""
    verify_webhook_hmac(body=body, signature=_webhook_header(headers, "hmac-sha256"))
    payload = parse_json_object(body)
    topic = _webhook_header(headers, "topic")
    if not topic or len(topic) > 100:
        raise InvalidRequest("The X-Shopify-Topic header is missing or too long.")
    shop = validate_shop_domain(_webhook_header(headers, "shop-domain"))
    delivery_id = _webhook_header(headers, "event-id") or _webhook_header(headers, "webhook-id")
    if not delivery_id:
        raise InvalidRequest("The X-Shopify-Event-Id (or X-Shopify-Webhook-Id) header is missing.")
    store = Store.objects.filter(platform=Store.Platform.SHOPIFY, domain=shop).first()
    return record_webhook_event(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=shop,
        topic=topic,
        dedup_key=f"{topic}:{delivery_id}",
        payload=payload,
    )


def handle_shopify_webhook(event: WebhookEvent) -> str:
    """Apply one stored Shopify installation or compliance delivery; returns the WebhookEvent status it ends in.

    Catalog and order topics are routed to catalog_sync (merchants.services.webhooks.WEBHOOK_ROUTES); a delivery
    for an unknown shop, or of a topic no app acts on, is ignored.
    """
    store = event.store
    if store is None:
        return WebhookEvent.Status.IGNORED
    match event.topic:
        case "app/uninstalled":
            return _handle_app_uninstalled(event, store)
        case "customers/data_request":
            return _handle_customers_data_request(event, store)
        case "customers/redact":
            return _handle_customers_redact(event, store)
        case "shop/redact":
            return _handle_shop_redact(event, store)
    logger.info("shopify.webhook_unhandled", extra={"event_id": event.id, "topic": event.topic})
    return WebhookEvent.Status.IGNORED


def _handle_app_uninstalled(event: WebhookEvent, store: Store) -> str:
    with transaction.atomic():
        store = Store.objects.select_for_update().get(id=store.id)
        if store.status == Store.Status.UNINSTALLED:
            return WebhookEvent.Status.IGNORED
        if store.installed_at is not None and store.installed_at > event.received_at:
            return WebhookEvent.Status.IGNORED  # reinstalled after this delivery arrived
        PlatformCredential.objects.filter(store=store).update(
            access_token="",
            access_token_expires_at=None,
            refresh_token="",
            refresh_token_expires_at=None,
            updated_at=timezone.now(),
        )
        store.status = Store.Status.UNINSTALLED
        store.uninstalled_at = timezone.now()
        store.save(update_fields=["status", "uninstalled_at", "updated_at"])
        record_store_event(store=store, kind=StoreEvent.Kind.UNINSTALLED, detail={"webhook_event_id": event.id})
    logger.info("shopify.uninstalled", extra={"store_id": store.id})
    return WebhookEvent.Status.PROCESSED


def _handle_customers_data_request(event: WebhookEvent, store: Store) -> str:
    request = event.payload.get("data_request") if isinstance(event.payload, dict) else None
    request_id = request.get("id") if isinstance(request, dict) else None
    if (
        request_id is not None
        and StoreEvent.objects.filter(
            store=store, kind=StoreEvent.Kind.DATA_REQUEST, detail__data_request_id=request_id
        ).exists()
    ):
        return WebhookEvent.Status.IGNORED  # the same request delivered under another event id
    # No customer personal data is held: visitors are anonymous ids and order lines carry no customer.
    record_store_event(
        store=store,
        kind=StoreEvent.Kind.DATA_REQUEST,
        detail={"data_request_id": request_id, "customer_records_held": 0},
    )
    return WebhookEvent.Status.PROCESSED


def _handle_customers_redact(event: WebhookEvent, store: Store) -> str:
    record_store_event(
        store=store,
        kind=StoreEvent.Kind.CUSTOMER_REDACTED,
        detail={"webhook_event_id": event.id, "customer_records_deleted": 0},
    )
    return WebhookEvent.Status.PROCESSED


def _handle_shop_redact(event: WebhookEvent, store: Store) -> str:
    if store.status != Store.Status.UNINSTALLED:
        # Reinstalled (or never uninstalled) since: the merchant is using the app, so its data stays.
        record_store_event(
            store=store, kind=StoreEvent.Kind.SHOP_REDACTED, detail={"webhook_event_id": event.id, "skipped": True}
        )
        logger.info("shopify.shop_redact_skipped", extra={"store_id": store.id, "status": store.status})
        return WebhookEvent.Status.IGNORED
    with transaction.atomic():
        # Every other delivery and pending install for the shop goes too; this event is pruned with the rest.
        WebhookEvent.objects.filter(platform=Store.Platform.SHOPIFY, shop_domain=store.domain).exclude(
            id=event.id
        ).delete()
        OAuthState.objects.filter(shop=store.domain).delete()
        Store.objects.filter(id=store.id).delete()  # cascades to credentials, events, catalog and stats
    logger.info("shopify.shop_redacted", extra={"store_id": store.id})
    return WebhookEvent.Status.PROCESSED


def prune_oauth_states(*, now: datetime | None = None) -> int:
    """Delete OAuth states past their 10 minutes, used or not (a used one is never accepted again anyway)."""
    deleted, _ = OAuthState.objects.filter(created_at__lt=(now or timezone.now()) - OAUTH_STATE_MAX_AGE).delete()
    return deleted

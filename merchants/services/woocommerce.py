"""WooCommerce onboarding (key provisioning through /wc-auth/v1/authorize), webhook verification and handling."""

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from merchants.clients.woocommerce import SystemStatus, WooCommerceClient
from merchants.exceptions import InvalidRequest, InvalidSignature, StaleRequest, StoreNotFound
from merchants.hosts import InternalHost, check_public_host, parse_address, resolve_host
from merchants.models import PlatformCredential, Store, StoreEvent, WebhookEvent, WooCommerceInstall
from merchants.services.stores import record_store_event
from merchants.services.webhooks import parse_json_object, record_webhook_event

logger = logging.getLogger(__name__)

AUTHORIZE_PATH = "/wc-auth/v1/authorize"
CALLBACK_PATH = "/woocommerce/callback"
RETURN_PATH = "/woocommerce/return"
REQUESTED_SCOPE = "read"
# Keys come from wc_rand_hash(): 40 lowercase hex characters after the prefix (class-wc-auth.php).
CONSUMER_KEY_RE = re.compile(r"ck_[0-9a-f]{40}")
CONSUMER_SECRET_RE = re.compile(r"cs_[0-9a-f]{40}")
READABLE_PERMISSIONS = frozenset({"read", "read_write"})
HOST_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
PATH_RE = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")
MAX_STORE_URL_LENGTH = 500  # WooCommerceInstall.store_url


@dataclass(frozen=True)
class StoreUrl:
    """A validated store base URL: `url` has no trailing slash; `domain` is what Store.domain holds."""

    url: str
    domain: str


@dataclass(frozen=True)
class KeyGrant:
    """The JSON body WooCommerce POSTs to callback_url once the merchant approves."""

    key_id: int
    user_id: str
    consumer_key: str
    consumer_secret: str
    key_permissions: str


@dataclass(frozen=True)
class WooCommerceDelivery:
    """A webhook request that is not a ping, with the headers WooCommerce sends (see WC_Webhook::deliver)."""

    topic: str
    webhook_id: str
    delivery_id: str
    signature: str
    source: str


# Connecting a store.


def normalize_store_url(*, raw_url: str) -> StoreUrl:
    """Validate a merchant-typed store address and return it normalised, or raise InvalidRequest saying why."""
    value = (raw_url or "").strip()
    if not value:
        raise InvalidRequest("store_url is required: the address of your WooCommerce store, e.g. https://shop.example.")
    if len(value) > MAX_STORE_URL_LENGTH:
        raise InvalidRequest(f"store_url is longer than {MAX_STORE_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in value) or "\\" in value:
        raise InvalidRequest("store_url must not contain spaces, control characters or backslashes.")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if settings.LOCAL_MODE else ("https",)
    if scheme not in allowed:
        raise InvalidRequest(f"store_url must start with {' or '.join(s + '://' for s in allowed)}.")
    if "?" in value or "#" in value:
        raise InvalidRequest("store_url must not have a query (?…) or a fragment (#…); give the store's base address.")
    if "@" in parts.netloc:
        raise InvalidRequest("store_url must not contain a user name or password.")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest("store_url has an invalid port.") from exc
    host = (parts.hostname or "").rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # internationalised names, in their DNS (punycode) form
        except UnicodeError as exc:
            raise InvalidRequest("store_url has an invalid host name.") from exc
    _check_host(host)
    path = parts.path.rstrip("/")
    if not PATH_RE.fullmatch(path) or "/./" in path + "/" or "/../" in path + "/":
        raise InvalidRequest("store_url has an invalid path.")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"https": 443, "http": 80}[scheme]:
        netloc = f"{netloc}:{port}"
    return StoreUrl(url=f"{scheme}://{netloc}{path}", domain=f"{netloc}{path}".lower())


def _check_host(host: str) -> None:
    if not host:
        raise InvalidRequest("store_url has no host name.")
    try:
        address = parse_address(host)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if address is not None:
        if settings.LOCAL_MODE and _is_plain_literal(host):
            return
        # The callback calls this address from our servers; an address literal could point inside our network.
        raise InvalidRequest("store_url must use the store's host name, not an IP address.")
    labels = host.split(".")
    if len(host) > 253 or not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidRequest(f"{host!r} is not a valid host name.")
    if settings.LOCAL_MODE:
        return
    if len(labels) < 2:
        raise InvalidRequest(f"{host!r} is not a public host name.")
    resolve = None if settings.PLATFORM_ALLOW_PRIVATE_HOSTS else resolve_host
    try:
        check_public_host(host=host, resolve=resolve)
    except InternalHost as exc:
        raise InvalidRequest(f"store_url must be your store's public address: {exc}") from exc
    except (OSError, UnicodeError) as exc:
        raise InvalidRequest(f"store_url names {host}, which could not be resolved; check the address.") from exc


def _is_plain_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def begin_woocommerce_install(*, raw_url: str) -> tuple[WooCommerceInstall, str]:
    """Record a pending key request for a store and return it with the store's authorize URL to redirect to."""
    store_url = normalize_store_url(raw_url=raw_url)
    install = _create_pending_install(store_url=store_url.url)
    app_url = settings.APP_URL.rstrip("/")
    query = urlencode(
        {
            "app_name": settings.WOOCOMMERCE_APP_NAME,
            "scope": REQUESTED_SCOPE,
            "user_id": install.user_id,
            "return_url": app_url + RETURN_PATH,
            "callback_url": app_url + CALLBACK_PATH,
        }
    )
    logger.info("woocommerce.install_started", extra={"install_id": install.id, "domain": store_url.domain})
    return install, f"{store_url.url}{AUTHORIZE_PATH}?{query}"


@transaction.atomic
def _create_pending_install(*, store_url: str) -> WooCommerceInstall:
    """A new key request for the store, keeping at most WOOCOMMERCE_PENDING_INSTALLS_PER_STORE pending (newest)."""
    now = timezone.now()
    pending = WooCommerceInstall.objects.filter(store_url=store_url, completed_at__isnull=True)
    expired = now - timedelta(seconds=settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS)
    pending.filter(created_at__lt=expired).delete()
    install = WooCommerceInstall.objects.create(user_id=secrets.token_urlsafe(32), store_url=store_url, created_at=now)
    keep = max(1, int(settings.WOOCOMMERCE_PENDING_INSTALLS_PER_STORE))
    stale_ids = list(pending.order_by("-created_at", "-id").values_list("id", flat=True)[keep:])
    if stale_ids:
        WooCommerceInstall.objects.filter(id__in=stale_ids).delete()
    return install


def parse_key_grant(*, data: dict[str, Any]) -> KeyGrant:
    """Check the shape of the callback body WooCommerce POSTs, or raise InvalidRequest naming the bad field."""
    key_id = data.get("key_id")
    if isinstance(key_id, str) and key_id.isdigit():
        key_id = int(key_id)
    if not isinstance(key_id, int) or isinstance(key_id, bool) or key_id <= 0:
        raise InvalidRequest("key_id must be a positive integer.")
    user_id = data.get("user_id")
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= 64:
        raise InvalidRequest("user_id must be the string this app sent to /wc-auth/v1/authorize.")
    consumer_key = data.get("consumer_key")
    if not isinstance(consumer_key, str) or not CONSUMER_KEY_RE.fullmatch(consumer_key):
        raise InvalidRequest("consumer_key must be 'ck_' followed by 40 hexadecimal characters.")
    consumer_secret = data.get("consumer_secret")
    if not isinstance(consumer_secret, str) or not CONSUMER_SECRET_RE.fullmatch(consumer_secret):
        raise InvalidRequest("consumer_secret must be 'cs_' followed by 40 hexadecimal characters.")
    permissions = data.get("key_permissions")
    if permissions not in READABLE_PERMISSIONS:
        raise InvalidRequest(f"key_permissions must be one of {', '.join(sorted(READABLE_PERMISSIONS))}.")
    return KeyGrant(
        key_id=key_id,
        user_id=user_id,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        key_permissions=str(permissions),
    )


def get_pending_install(*, user_id: str) -> WooCommerceInstall:
    """Return the install a callback's user_id names, if it still waits for keys, or raise a 400 error."""
    install = WooCommerceInstall.objects.filter(user_id=user_id).first()
    if install is None:
        raise InvalidRequest("user_id does not match a WooCommerce connection started here.")
    if install.completed_at is not None:
        raise StaleRequest("This connection has already received its keys; start again from /woocommerce/connect.")
    max_age = timedelta(seconds=settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS)
    if install.created_at < timezone.now() - max_age:
        raise StaleRequest("This connection request has expired; start again from /woocommerce/connect.")
    return install


def complete_woocommerce_install(*, data: dict[str, Any]) -> Store:
    """Accept the keys WooCommerce POSTs for a pending install: test them, then store them and activate the store.

    Nothing is written unless the keys are well formed, the install is pending and the store accepts the keys.
    The caller schedules the first catalog sync.
    """
    grant = parse_key_grant(data=data)
    install = get_pending_install(user_id=grant.user_id)
    client = WooCommerceClient(
        store_url=install.store_url, consumer_key=grant.consumer_key, consumer_secret=grant.consumer_secret
    )
    status = client.get_system_status()  # PlatformRejected / PlatformUnavailable: nothing stored
    store_url = normalize_store_url(raw_url=install.store_url)
    with transaction.atomic():
        # Two deliveries of the same callback may race past the check above: only one completes.
        install = WooCommerceInstall.objects.select_for_update().get(id=install.id)
        if install.completed_at is not None:
            raise StaleRequest("This connection has already received its keys.")
        store = _activate_store(domain=store_url.domain, grant=grant, status=status)
        install.completed_at = timezone.now()
        install.store = store
        install.save(update_fields=["completed_at", "store"])
    logger.info("woocommerce.installed", extra={"store_id": store.id, "domain": store.domain})
    return store


def _activate_store(*, domain: str, grant: KeyGrant, status: SystemStatus) -> Store:
    now = timezone.now()
    store = Store.objects.select_for_update().filter(platform=Store.Platform.WOOCOMMERCE, domain=domain).first()
    kind = StoreEvent.Kind.REINSTALLED if store is not None else StoreEvent.Kind.INSTALLED
    if store is None:
        store = Store(platform=Store.Platform.WOOCOMMERCE, domain=domain, name=domain)
    store.status = Store.Status.ACTIVE
    store.installed_at = now
    store.uninstalled_at = None
    store.save()
    credential = PlatformCredential.objects.filter(store=store).first() or PlatformCredential(store=store)
    credential.key_id = str(grant.key_id)
    credential.consumer_key = grant.consumer_key
    credential.consumer_secret = grant.consumer_secret
    credential.scopes = grant.key_permissions
    # Kept across reinstalls, so that webhooks registered with it keep verifying.
    credential.webhook_secret = credential.webhook_secret or secrets.token_urlsafe(32)
    credential.save()
    record_store_event(
        store=store,
        kind=kind,
        detail={
            "key_id": grant.key_id,
            "key_permissions": grant.key_permissions,
            "woocommerce_version": status.woocommerce_version,
            "wordpress_version": status.wordpress_version,
        },
    )
    return store


def get_store_api_url(*, store: Store) -> str:
    """The base URL (with scheme) the store was connected with, for REST calls."""
    install = (
        WooCommerceInstall.objects.filter(store=store, completed_at__isnull=False).order_by("-completed_at").first()
    )
    if install is not None:
        return install.store_url
    return f"https://{store.domain}"


def build_woocommerce_client(*, store: Store, session: requests.Session | None = None) -> WooCommerceClient:
    """A REST client for a connected store, with its stored key pair (on `session` when given, e.g. a sync's)."""
    credential = store.credential
    return WooCommerceClient(
        store_url=get_store_api_url(store=store),
        consumer_key=credential.consumer_key,
        consumer_secret=credential.consumer_secret,
        session=session,
    )


# Webhooks.


def get_webhook_store(*, site_key: str) -> Store:
    """The WooCommerce store a webhook URL names, or StoreNotFound (404)."""
    store = Store.objects.filter(platform=Store.Platform.WOOCOMMERCE, site_key=site_key).first()
    if store is None:
        raise StoreNotFound("No WooCommerce store has this webhook address.")
    return store


def has_webhook_secrets(*, store: Store) -> bool:
    """True when the store holds a secret a delivery could be verified with."""
    return PlatformCredential.objects.filter(store=store).exclude(webhook_secret="", consumer_secret="").exists()


def is_ping(*, headers: Any, body: bytes) -> bool:
    """True for the unsigned ping WooCommerce sends when a webhook is saved: `webhook_id=<id>`, no topic."""
    if headers.get("X-WC-Webhook-Topic") or headers.get("X-WC-Webhook-Signature"):
        return False
    return re.fullmatch(rb"webhook_id=\d{1,20}", body.strip()) is not None


def compute_webhook_signature(*, body: bytes, secret: str) -> str:
    """base64(HMAC-SHA256(body, secret)), as WC_Webhook::generate_signature computes it."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_woocommerce_webhook(*, store: Store, headers: Any, body: bytes) -> WooCommerceDelivery:
    """Check a delivery's signature against the store's webhook secret or consumer secret, in constant time.

    Raises InvalidSignature (401) when the signature is missing or matches neither secret, and
    InvalidRequest (400) when a header needed to file the delivery is missing.
    """
    signature = (headers.get("X-WC-Webhook-Signature") or "").strip()
    if not signature:
        raise InvalidSignature("X-WC-Webhook-Signature is missing.")
    credential = PlatformCredential.objects.filter(store=store).first()
    secrets_to_try = [s for s in (credential.webhook_secret, credential.consumer_secret) if s] if credential else []
    matched = False
    for secret in secrets_to_try:
        expected = compute_webhook_signature(body=body, secret=secret)
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    if not matched:
        raise InvalidSignature("X-WC-Webhook-Signature does not match this store's webhook secret.")
    topic = (headers.get("X-WC-Webhook-Topic") or "").strip()
    webhook_id = (headers.get("X-WC-Webhook-ID") or "").strip()
    delivery_id = (headers.get("X-WC-Webhook-Delivery-ID") or "").strip()
    if not topic or len(topic) > 100:
        raise InvalidRequest("X-WC-Webhook-Topic is missing or too long.")
    if not webhook_id or not delivery_id:
        raise InvalidRequest("X-WC-Webhook-ID and X-WC-Webhook-Delivery-ID are required.")
    return WooCommerceDelivery(
        topic=topic,
        webhook_id=webhook_id[:64],
        delivery_id=delivery_id[:128],
        signature=signature,
        source=(headers.get("X-WC-Webhook-Source") or "")[:500],
    )


def webhook_dedup_key(*, delivery: WooCommerceDelivery, body: bytes) -> str:
    """Webhook id + delivery id, plus a digest of the body.

    WooCommerce's delivery id is wp_hash(webhook id . current second), so two resources delivered by one
    webhook in the same second share it; the body digest keeps them apart while a repeat still dedupes.
    """
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f"{delivery.webhook_id}:{delivery.delivery_id}:{digest}"


def receive_woocommerce_webhook(*, site_key: str, headers: Any, body: bytes) -> str:
    """Take one delivery to a store's webhook URL; returns what became of it: pong, ignored, accepted or duplicate.

    The unsigned ping is answered at once. A delivery for a store that is not active is verified (when the store
    still holds a secret) and dropped; any other is verified, then stored once and routed (record_webhook_event).
    Raises StoreNotFound (404), InvalidSignature (401) and InvalidRequest (400).
    """
    store = get_webhook_store(site_key=site_key)
    if is_ping(headers=headers, body=body):
        logger.info("woocommerce.webhook_ping", extra={"store_id": store.id})
        return "pong"
    if not store.is_active and not has_webhook_secrets(store=store):
        return _ignored(store)  # nothing to verify with, and nothing would be stored anyway
    delivery = verify_woocommerce_webhook(store=store, headers=headers, body=body)
    if not store.is_active:
        return _ignored(store)
    _, created = record_webhook_event(
        platform=Store.Platform.WOOCOMMERCE,
        store=store,
        shop_domain=store.domain,
        topic=delivery.topic,
        dedup_key=webhook_dedup_key(delivery=delivery, body=body),
        payload=parse_json_object(body),
    )
    return "accepted" if created else "duplicate"


def _ignored(store: Store) -> str:
    logger.info("woocommerce.webhook_ignored", extra={"store_id": store.id, "status": store.status})
    return "ignored"


def handle_woocommerce_webhook(event: WebhookEvent) -> str:
    """Apply one stored WooCommerce delivery routed to merchants; returns the WebhookEvent.Status it ends in.

    WooCommerce has no installation topics: product and order topics are routed to catalog_sync
    (merchants.services.webhooks.WEBHOOK_ROUTES), and whatever reaches merchants (coupons, customers …) is ignored.
    """
    store = event.store
    if store is None or not store.is_active:
        logger.info("woocommerce.webhook_inactive_store", extra={"event_id": event.id, "topic": event.topic})
        return WebhookEvent.Status.IGNORED
    logger.info("woocommerce.webhook_unhandled", extra={"event_id": event.id, "topic": event.topic})
    return WebhookEvent.Status.IGNORED


def prune_pending_installs(*, now: datetime | None = None) -> int:
    """Delete key requests that were never completed and can no longer be (older than the install window)."""
    max_age = timedelta(seconds=settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS)
    deleted, _ = WooCommerceInstall.objects.filter(
        completed_at__isnull=True, created_at__lt=(now or timezone.now()) - max_age
    ).delete()
    return deleted

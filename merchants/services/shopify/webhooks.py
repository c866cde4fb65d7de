"""Shopify webhook intake (HMAC of the body, headers, dedup key) and the installation and compliance topics."""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from merchants.customers import stored_customer_key
from merchants.exceptions import InvalidRequest, InvalidSignature
from merchants.models import OAuthState, PlatformCredential, Store, StoreEvent, WebhookEvent
from merchants.selectors import data_request_answered
from merchants.services.handoff import REDACT_CUSTOMER_TASK, REPORT_CUSTOMER_DATA_TASK, enqueue_task_on_commit
from merchants.services.shopify.shop import app_secrets, validate_shop_domain
from merchants.services.stores import record_customer_data_request, record_store_event
from merchants.services.webhooks import parse_json_object, record_webhook_event

logger = logging.getLogger(__name__)


def _webhook_header(headers: Mapping[str, str], name: str) -> str:
    """A Shopify header by name, case-insensitive, with or without the X- prefix."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return (lowered.get(f"x-shopify-{name}") or lowered.get(f"shopify-{name}") or "").strip()


def verify_webhook_hmac(*, body: bytes, signature: str) -> None:
    """Check X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body) against the app secret(s); 401 if not."""
    if not signature:
        raise InvalidSignature("The X-Shopify-Hmac-Sha256 header is missing.")
    for secret in app_secrets():
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
    # No customer record is held (visitors are anonymous ids); the order lines the customer's anonymous key links
    # are reported by catalog_sync's task, which owns them. A request delivered again under another event id is
    # answered once.
    key = stored_customer_key(event.payload)
    if not key:
        answered = record_customer_data_request(store=store, request_id=request_id)
        return WebhookEvent.Status.PROCESSED if answered is not None else WebhookEvent.Status.IGNORED
    if data_request_answered(store=store, request_id=request_id):
        return WebhookEvent.Status.IGNORED
    enqueue_task_on_commit(REPORT_CUSTOMER_DATA_TASK, store.id, key, request_id)
    return WebhookEvent.Status.PROCESSED


def _handle_customers_redact(event: WebhookEvent, store: Store) -> str:
    # No customer record is held; the order lines the customer's anonymous key links go (catalog_sync's task).
    key = stored_customer_key(event.payload)
    if key:
        enqueue_task_on_commit(REDACT_CUSTOMER_TASK, store.id, key)
    record_store_event(
        store=store,
        kind=StoreEvent.Kind.CUSTOMER_REDACTED,
        detail={"webhook_event_id": event.id, "customer_records_deleted": 0, "keyed_order_lines_deleted": bool(key)},
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

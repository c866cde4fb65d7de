"""Webhook intake shared by every platform: body limits, JSON parsing, PII scrubbing, dedup, routing by topic.

The intake verifies, scrubs, stores and deduplicates a delivery, then hands it to the task of the app that owns
its topic (WEBHOOK_ROUTES), by task name: merchants is the bottom app and imports none of the apps above it. The
owner's task applies it through process_webhook_event, which records the outcome on the WebhookEvent.
"""

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from bitrecs_site import json_intake
from merchants.customers import CUSTOMER_KEY_FIELD, customer_key_in
from merchants.exceptions import InvalidRequest, PayloadTooLarge, PlatformUnavailable
from merchants.models import Store, WebhookEvent
from merchants.services.handoff import enqueue_task

logger = logging.getLogger(__name__)

# merchants' own task: install and compliance topics, and any topic no app owns (recorded as ignored).
MERCHANTS_WEBHOOK_TASK = "merchants.apply_webhook_event"

# The one routing table: the task that applies each platform's topics. Topics not listed go to merchants.
WEBHOOK_ROUTES: dict[str, dict[str, tuple[str, ...]]] = {
    # Installation and the mandatory compliance topics: merchants applies them.
    MERCHANTS_WEBHOOK_TASK: {
        Store.Platform.SHOPIFY: ("app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"),
    },
    # The catalog: catalog_sync applies the change and asks for the lists of the products it touched.
    "catalog_sync.apply_product_webhook": {
        Store.Platform.SHOPIFY: ("products/create", "products/update", "products/delete"),
        Store.Platform.WOOCOMMERCE: ("product.created", "product.updated", "product.restored", "product.deleted"),
    },
    # Orders: catalog_sync stores their lines (refunds are acknowledged, not stored yet).
    "catalog_sync.apply_order_webhook": {
        Store.Platform.SHOPIFY: ("orders/create", "orders/updated", "orders/paid", "refunds/create"),
        Store.Platform.WOOCOMMERCE: ("order.created", "order.updated", "order.deleted", "order.restored"),
    },
}
_TASK_BY_TOPIC = {
    (platform, topic): task
    for task, platform_topics in WEBHOOK_ROUTES.items()
    for platform, topics in platform_topics.items()
    for topic in topics
}

# Keys whose values identify a person. Removed wherever they appear in a payload before it is stored:
# we hold no customer personal data (PLATFORMS.md §5 "Identity").
PII_KEYS = frozenset(
    {
        "customer",
        "customers",
        "customer_id",
        "email",
        "contact_email",
        "phone",
        "first_name",
        "last_name",
        "billing_address",
        "shipping_address",
        "billing",
        "shipping",
        "addresses",
        "default_address",
        "browser_ip",
        "client_details",
        "customer_ip_address",
        "customer_user_agent",
        "customer_note",
        "note",
        "ip_address",
        "user_agent",
        "orders_to_redact",
        "orders_requested",
    }
)


def scrub_pii(value: Any) -> Any:
    """Return a copy of a JSON value with every PII_KEYS entry removed, at any depth."""
    if isinstance(value, dict):
        return {key: scrub_pii(item) for key, item in value.items() if key.lower() not in PII_KEYS}
    if isinstance(value, list):
        return [scrub_pii(item) for item in value]
    return value


def read_limited_body(request: HttpRequest) -> bytes:
    """Return the raw request body, refusing (413) one larger than MAX_WEBHOOK_BODY_BYTES before reading it."""
    limit = settings.MAX_WEBHOOK_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError as exc:
        raise InvalidRequest("Content-Length is not a number.") from exc
    if declared > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit} bytes.")
    body = request.body
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is {len(body)} bytes; the limit is {limit} bytes.")
    return body


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a body that must be a JSON object with the one intake normaliser, or raise InvalidRequest (400/413)."""
    try:
        return json_intake.parse_json_object(body, max_bytes=settings.MAX_WEBHOOK_BODY_BYTES)
    except json_intake.JsonTooLarge as exc:
        raise PayloadTooLarge(exc.message) from exc
    except json_intake.JsonIntakeError as exc:
        raise InvalidRequest(exc.message) from exc


def record_webhook_event(
    *,
    platform: str,
    store: Store | None,
    shop_domain: str,
    topic: str,
    dedup_key: str,
    payload: dict[str, Any],
) -> tuple[WebhookEvent, bool]:
    """Store a verified delivery once (scrubbed of PII) and hand it to the task that owns its topic, on commit.

    The customer the body names is kept only as the store's anonymous key (CUSTOMER_KEY_FIELD). A repeat (same
    platform and dedup key) stores nothing and returns the first delivery with False.
    """
    stored = scrub_pii(payload)
    key = customer_key_in(store_id=store.id, platform=platform, body=payload) if store is not None else ""
    if key:
        stored[CUSTOMER_KEY_FIELD] = key
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                platform=platform,
                store=store,
                shop_domain=json_intake.clean_text(shop_domain),
                topic=json_intake.clean_text(topic),
                dedup_key=json_intake.clean_text(dedup_key)[:255],
                payload=stored,
            )
            transaction.on_commit(
                functools.partial(_hand_off, webhook_task_name(platform=platform, topic=topic), event.id)
            )
    except IntegrityError:
        existing = WebhookEvent.objects.get(platform=platform, dedup_key=json_intake.clean_text(dedup_key)[:255])
        logger.info("webhook.duplicate", extra={"platform": platform, "topic": topic, "dedup_key": dedup_key})
        return existing, False
    logger.info("webhook.received", extra={"platform": platform, "topic": topic, "event_id": event.id})
    return event, True


def _hand_off(task: str, event_id: int) -> None:
    """Enqueue the task that applies a stored delivery; with the broker down it stays pending (and answered 200:
    it is stored), and redispatch_pending_webhooks hands it off once the broker is back."""
    try:
        enqueue_task(task, event_id)
    except (KombuOperationalError, OSError) as exc:  # the broker refused or is unreachable
        logger.warning("webhook.handoff_failed", extra={"event_id": event_id, "task": task, "error": str(exc)})


def redispatch_pending_webhooks(*, received_before: datetime, limit: int = 1000) -> int:
    """Hand off again the oldest deliveries still pending since before `received_before`; returns how many.

    They were stored while the broker was down, or their task was lost. One still waiting for a retry of a
    platform outage gets one more attempt, which process_webhook_event makes harmless (it applies a delivery once).
    """
    ids = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING, received_at__lt=received_before)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    for event_id in ids:
        dispatch_webhook_event(event_id=event_id)
    if ids:
        logger.info("webhook.redispatched", extra={"count": len(ids)})
    return len(ids)


def webhook_task_name(*, platform: str, topic: str) -> str:
    """The name of the task that applies deliveries of this topic (merchants' own for a topic nobody owns)."""
    return _TASK_BY_TOPIC.get((platform, topic), MERCHANTS_WEBHOOK_TASK)


def dispatch_webhook_event(*, event_id: int) -> None:
    """Hand a stored delivery to the task that owns its topic now (the intake does so on commit)."""
    event = WebhookEvent.objects.filter(id=event_id).only("platform", "topic").first()
    if event is not None:
        enqueue_task(webhook_task_name(platform=event.platform, topic=event.topic), event.id)


WebhookHandler = Callable[[WebhookEvent], str]


def apply_merchant_webhook(event: WebhookEvent) -> str:
    """Apply an installation or compliance delivery with its platform's handler; returns the WebhookEvent status."""
    from merchants.services import shopify, woocommerce  # the platform modules import this one

    if event.platform == Store.Platform.SHOPIFY:
        return shopify.handle_shopify_webhook(event)
    return woocommerce.handle_woocommerce_webhook(event)


def process_webhook_event(
    *, event_id: int, handler: WebhookHandler = apply_merchant_webhook, give_up: bool = False
) -> WebhookEvent | None:
    """Apply one stored delivery with its owner's handler (merchants' by default) and record the status it ends in.

    A delivery already applied (or pruned) is left alone. PlatformUnavailable (429, 5xx, timeouts) leaves it
    pending and propagates, for the owner's task to retry it; on the last attempt (`give_up`) it is recorded as
    FAILED, like any other error.
    """
    event = WebhookEvent.objects.select_related("store").filter(id=event_id).first()
    if event is None or event.status != WebhookEvent.Status.PENDING:
        return event  # pruned, or already applied by an earlier delivery of the task
    try:
        event.status = handler(event)
        event.error = ""
    except PlatformUnavailable as exc:
        if not give_up:
            logger.warning("webhook.retry", extra={"event_id": event.id, "topic": event.topic, "error": exc.message})
            raise
        _record_failure(event, exc)
    except Exception as exc:
        _record_failure(event, exc)
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "processed_at"])
    return event


def _record_failure(event: WebhookEvent, exc: Exception) -> None:
    logger.exception("webhook.failed", extra={"event_id": event.id, "topic": event.topic})
    event.status = WebhookEvent.Status.FAILED
    event.error = f"{type(exc).__name__}: {exc}"[:2000]


def prune_webhook_events(*, before: datetime) -> int:
    """Delete processed deliveries received before `before`; returns how many were deleted."""
    deleted, _ = (
        WebhookEvent.objects.filter(received_at__lt=before).exclude(status=WebhookEvent.Status.PENDING).delete()
    )
    return deleted

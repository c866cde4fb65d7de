"""Webhook intake shared by every platform: body limits, JSON parsing, PII scrubbing, dedup, routing by topic.

The intake verifies, scrubs, stores and deduplicates a delivery, then hands it to the task of the app that owns
its topic (WEBHOOK_ROUTES), by task name: merchants is the bottom app and imports none of the apps above it. The
owner's task applies it through process_webhook_event, which records the outcome on the WebhookEvent.
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from merchants.customers import CUSTOMER_KEY_FIELD, customer_key_in
from merchants.exceptions import InvalidRequest, PayloadTooLarge, PlatformUnavailable
from merchants.models import Store, WebhookEvent
from merchants.services.handoff import enqueue_task, enqueue_task_on_commit

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
    """Parse a body that must be a JSON object, or raise InvalidRequest saying what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


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
                shop_domain=shop_domain,
                topic=topic,
                dedup_key=dedup_key[:255],
                payload=stored,
            )
            enqueue_task_on_commit(webhook_task_name(platform=platform, topic=topic), event.id)
    except IntegrityError:
        existing = WebhookEvent.objects.get(platform=platform, dedup_key=dedup_key[:255])
        logger.info("webhook.duplicate", extra={"platform": platform, "topic": topic, "dedup_key": dedup_key})
        return existing, False
    logger.info("webhook.received", extra={"platform": platform, "topic": topic, "event_id": event.id})
    return event, True


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

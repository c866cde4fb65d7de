"""Webhook intake shared by every platform: body limits, JSON parsing, PII scrubbing, dedup, dispatch."""

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from merchants.exceptions import InvalidRequest, PayloadTooLarge
from merchants.models import Store, WebhookEvent

logger = logging.getLogger(__name__)

# Keys whose values identify a person. Removed wherever they appear in a payload before it is stored:
# we hold no customer personal data (PLATFORMS.md §5 "Identity").
PII_KEYS = frozenset(
    {
        "customer",
        "customers",
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
    """Store a verified delivery once (scrubbed of PII) and enqueue its processing; a repeat returns the first."""
    from merchants.tasks import process_webhook_event_task  # tasks.py imports this module

    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                platform=platform,
                store=store,
                shop_domain=shop_domain,
                topic=topic,
                dedup_key=dedup_key[:255],
                payload=scrub_pii(payload),
            )
            process_webhook_event_task.delay_on_commit(event.id)  # type: ignore[attr-defined]  # celery-types lacks it
    except IntegrityError:
        existing = WebhookEvent.objects.get(platform=platform, dedup_key=dedup_key[:255])
        logger.info("webhook.duplicate", extra={"platform": platform, "topic": topic, "dedup_key": dedup_key})
        return existing, False
    logger.info("webhook.received", extra={"platform": platform, "topic": topic, "event_id": event.id})
    return event, True


WebhookHandler = Callable[[WebhookEvent], str]


def process_webhook_event(
    *, event_id: int, catalog_handler: WebhookHandler | None = None, is_catalog_topic: Callable[..., bool] | None = None
) -> WebhookEvent | None:
    """Apply one stored delivery and record the outcome on the event.

    Installation topics go to the platform's handler here; product and order topics go to
    `catalog_handler` (catalog_sync's, passed in by the task, since merchants does not import catalog_sync).
    """
    from merchants.services import shopify, woocommerce  # the platform modules import this one

    event = WebhookEvent.objects.select_related("store").filter(id=event_id).first()
    if event is None or event.status != WebhookEvent.Status.PENDING:
        return event  # pruned, or already applied by an earlier delivery of the task
    handlers: dict[str, WebhookHandler] = {
        Store.Platform.SHOPIFY: shopify.handle_shopify_webhook,
        Store.Platform.WOOCOMMERCE: woocommerce.handle_woocommerce_webhook,
    }
    handler = handlers[Store.Platform(event.platform)]
    if (
        catalog_handler is not None
        and is_catalog_topic is not None
        and is_catalog_topic(platform=event.platform, topic=event.topic)
    ):
        handler = catalog_handler
    try:
        event.status = handler(event)
        event.error = ""
    except Exception as exc:
        logger.exception("webhook.failed", extra={"event_id": event.id, "topic": event.topic})
        event.status = WebhookEvent.Status.FAILED
        event.error = f"{type(exc).__name__}: {exc}"[:2000]
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "processed_at"])
    return event


def prune_webhook_events(*, before: datetime) -> int:
    """Delete processed deliveries received before `before`; returns how many were deleted."""
    deleted, _ = (
        WebhookEvent.objects.filter(received_at__lt=before).exclude(status=WebhookEvent.Status.PENDING).delete()
    )
    return deleted

"""Celery tasks of the merchants app: thin wrappers that take ids and call services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger(__name__)

# Shopify retries a failed delivery for 4 hours; keep ids a day to dedupe late repeats.
WEBHOOK_DEDUP_WINDOW = timedelta(days=1)


@shared_task(name="merchants.process_webhook_event", acks_late=True, ignore_result=True)
def process_webhook_event_task(event_id: int) -> None:
    """Apply one stored webhook delivery (idempotent: a processed event is left alone)."""
    from catalog_sync.services.sync import apply_catalog_webhook, is_catalog_topic
    from merchants.services.webhooks import process_webhook_event  # services enqueue this task

    # Entry points compose apps: product and order topics are applied by catalog_sync.
    process_webhook_event(event_id=event_id, catalog_handler=apply_catalog_webhook, is_catalog_topic=is_catalog_topic)


@shared_task(name="merchants.prune_webhook_events", ignore_result=True)
def prune_webhook_events_task() -> int:
    """Forget processed webhook deliveries older than the dedup window."""
    from merchants.services.webhooks import prune_webhook_events  # services enqueue tasks from here

    return prune_webhook_events(before=timezone.now() - WEBHOOK_DEDUP_WINDOW)


@shared_task(name="merchants.refresh_expiring_tokens", ignore_result=True)
def refresh_expiring_tokens_task() -> int:
    """Refresh the Shopify access tokens that expire within SHOPIFY_TOKEN_REFRESH_MARGIN_SECONDS."""
    from merchants.services.shopify import refresh_expiring_tokens  # services enqueue tasks from here

    return refresh_expiring_tokens()

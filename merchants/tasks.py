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
    """Hand a stored delivery to the task that owns its topic (the intake does this itself, on commit)."""
    from merchants.services.webhooks import dispatch_webhook_event  # services enqueue tasks from here

    dispatch_webhook_event(event_id=event_id)


@shared_task(name="merchants.apply_webhook_event", acks_late=True, ignore_result=True)
def apply_webhook_event_task(event_id: int) -> None:
    """Apply an installation or compliance delivery (or ignore a topic no app owns)."""
    from merchants.services.webhooks import apply_merchant_webhook, process_webhook_event  # services enqueue this

    process_webhook_event(event_id=event_id, handler=apply_merchant_webhook)


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


@shared_task(name="merchants.prune_expired_installs", ignore_result=True)
def prune_expired_installs_task() -> int:
    """Forget Shopify OAuth states and WooCommerce key requests that expired unused."""
    from merchants.services.shopify import prune_oauth_states  # services enqueue tasks from here
    from merchants.services.woocommerce import prune_pending_installs

    return prune_oauth_states() + prune_pending_installs()

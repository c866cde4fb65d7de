"""Celery tasks of the merchants app: thin wrappers that take ids and call services."""

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.exceptions import Retry
from django.utils import timezone

from merchants.exceptions import PlatformUnavailable

logger = logging.getLogger(__name__)

# Shopify retries a failed delivery for 4 hours; keep ids a day to dedupe late repeats.
WEBHOOK_DEDUP_WINDOW = timedelta(days=1)
# A delivery still pending after this long lost its hand-off (broker down when it arrived): hand it off again.
WEBHOOK_REDISPATCH_AFTER = timedelta(minutes=10)
# Retries of a task after a platform outage (429, 5xx, timeouts): Retry-After, else 5 s doubling (about 40 minutes).
MAX_OUTAGE_RETRIES = 8
MAX_RETRY_COUNTDOWN = 600.0


def retry_after_outage(task: Any, exc: PlatformUnavailable) -> Retry:
    """The Retry a bound task raises after a platform outage: after Retry-After, else 5 s doubling (≤ 10 min)."""
    countdown = exc.retry_after if exc.retry_after is not None else 5.0 * 2**task.request.retries
    return task.retry(exc=exc, countdown=min(countdown, MAX_RETRY_COUNTDOWN))


def is_last_attempt(task: Any) -> bool:
    """True when a bound task has no retry left."""
    return bool(task.request.retries >= task.max_retries)


@shared_task(name="merchants.process_webhook_event", acks_late=True, ignore_result=True)
def process_webhook_event_task(event_id: int) -> None:
    """Hand a stored delivery to the task that owns its topic (the intake does this itself, on commit)."""
    from merchants.services.webhooks import dispatch_webhook_event  # services enqueue tasks from here

    dispatch_webhook_event(event_id=event_id)


@shared_task(
    name="merchants.apply_webhook_event", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_OUTAGE_RETRIES
)
def apply_webhook_event_task(self: Any, event_id: int) -> None:
    """Apply an installation or compliance delivery (or ignore a topic no app owns), retrying platform outages."""
    from merchants.services.webhooks import apply_merchant_webhook, process_webhook_event  # services enqueue this

    try:
        process_webhook_event(event_id=event_id, handler=apply_merchant_webhook, give_up=is_last_attempt(self))
    except PlatformUnavailable as exc:
        raise retry_after_outage(self, exc) from exc


@shared_task(name="merchants.redispatch_pending_webhooks", ignore_result=True)
def redispatch_pending_webhooks_task() -> int:
    """Hand off again the deliveries pending for over WEBHOOK_REDISPATCH_AFTER (stored while the broker was down)."""
    from merchants.services.webhooks import redispatch_pending_webhooks  # services enqueue tasks from here

    return redispatch_pending_webhooks(received_before=timezone.now() - WEBHOOK_REDISPATCH_AFTER)


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
    """Forget Shopify OAuth states and WooCommerce key requests that expired unused, and expired sign-in nonces."""
    from merchants.services.portal_signin import prune_signin_nonces  # services enqueue tasks from here
    from merchants.services.shopify import prune_oauth_states
    from merchants.services.woocommerce import prune_pending_installs

    return prune_oauth_states() + prune_pending_installs() + prune_signin_nonces()

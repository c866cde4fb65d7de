"""Celery tasks of the merchants app: thin wrappers that take ids and call services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from merchants.models import WebhookEvent

logger = logging.getLogger(__name__)

# Shopify retries a failed delivery for 4 hours; keep ids a day to dedupe late repeats.
WEBHOOK_DEDUP_WINDOW = timedelta(days=1)
# Product topics whose delivery changes one product (its lists are then refreshed).
PRODUCT_TOPICS = frozenset(
    {
        "products/create",
        "products/update",
        "products/delete",
        "product.created",
        "product.updated",
        "product.restored",
        "product.deleted",
    }
)

# Order topics whose delivery changes an order's lines (their attribution is then recomputed).
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "order.created", "order.updated", "order.deleted"})


@shared_task(name="merchants.process_webhook_event", acks_late=True, ignore_result=True)
def process_webhook_event_task(event_id: int) -> None:
    """Apply one stored webhook delivery (idempotent: a processed event is left alone)."""
    from catalog_sync.services.sync import apply_catalog_webhook, is_catalog_topic
    from merchants.services.webhooks import process_webhook_event  # services enqueue this task

    # Entry points compose apps: product and order topics are applied by catalog_sync.
    event = process_webhook_event(
        event_id=event_id, catalog_handler=apply_catalog_webhook, is_catalog_topic=is_catalog_topic
    )
    if event is not None and event.store_id is not None and event.status == WebhookEvent.Status.PROCESSED:
        if event.topic in ORDER_TOPICS:
            _attribute_order(event)
        product_id = _webhook_product_id(event)
        if product_id:
            from recommendations.services import request_list_refresh

            # The lists that show (or should show) this product are recomputed by a delayed, coalesced task.
            request_list_refresh(store_id=event.store_id, external_ids=[product_id])


def _attribute_order(event: WebhookEvent) -> None:
    """Entry points compose apps: the order's lines, just stored, are credited to the recommendations behind them."""
    from recommendations.services.attribution import attribute_webhook_order

    try:
        attribute_webhook_order(store=event.store, platform=event.platform, body=event.payload)  # type: ignore[arg-type]
    except Exception:  # the delivery is applied; attribution is redone by the order's next update
        logger.exception("webhook.attribution_failed", extra={"event_id": event.id, "topic": event.topic})


def _webhook_product_id(event: WebhookEvent) -> str:
    """The external id of the product a product webhook changed ("" for any other topic)."""
    if event.topic not in PRODUCT_TOPICS:
        return ""
    body = event.payload if isinstance(event.payload, dict) else {}
    value = body.get("parent_id") if body.get("type") == "variation" else body.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    text = str(value).strip()
    return text.rsplit("/", 1)[-1] if text.startswith("gid://") else text


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

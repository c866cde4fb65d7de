"""Celery tasks of catalog_sync: thin wrappers that take ids and run one sync step (enqueueing the next) or webhook."""

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task

from catalog_sync.models import SyncRun
from catalog_sync.selectors import list_customer_order_ids
from catalog_sync.services.catalog import delete_customer_order_lines
from catalog_sync.services.webhooks import ProductsChanged, apply_order_webhook, apply_product_webhook
from merchants.exceptions import PlatformUnavailable
from merchants.models import Store, WebhookEvent
from merchants.services.stores import record_customer_data_request
from merchants.tasks import MAX_OUTAGE_RETRIES, is_last_attempt, retry_after_outage

logger = logging.getLogger(__name__)

MAX_STEP_RETRIES = MAX_OUTAGE_RETRIES


@shared_task(name="catalog_sync.sync_store", acks_late=True, ignore_result=True)
def sync_store_task(store_id: int, kind: str = SyncRun.Kind.FULL) -> None:
    """Open a sync of the store and enqueue its first step (a store already syncing is left alone)."""
    from catalog_sync.services.sync import begin_store_sync  # services enqueue this task

    store = Store.objects.filter(id=store_id).first()
    if store is None:  # deleted (shop/redact) while queued
        logger.info("catalog_sync.store_gone", extra={"store_id": store_id})
        return
    step = begin_store_sync(store=store, kind=kind)
    if step is not None:
        sync_step_task.apply_async((step.run_id, step.phase, step.cursor), countdown=step.countdown)


@shared_task(name="catalog_sync.sync_step", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_STEP_RETRIES)
def sync_step_task(self: Any, run_id: int, phase: str, cursor: str = "") -> None:
    """Run one step (page) of a sync; retry it on 429/5xx honouring Retry-After, then enqueue the next."""
    from catalog_sync.services.sync import fail_sync_run, run_sync_step  # services enqueue this task

    try:
        step = run_sync_step(run_id=run_id, phase=phase, cursor=cursor)
    except PlatformUnavailable as exc:
        if is_last_attempt(self):
            fail_sync_run(run_id=run_id, error=f"Gave up after {self.max_retries} retries: {exc.message}")
            return
        raise retry_after_outage(self, exc) from exc
    if step is not None:
        sync_step_task.apply_async((step.run_id, step.phase, step.cursor), countdown=step.countdown)
    elif phase == "finish":
        _rebuild_recommendations_after(run_id)


def _rebuild_recommendations_after(run_id: int) -> None:
    """Entry points compose apps: a sync that ended (fully or partially) gets the store's lists rebuilt."""
    from recommendations.tasks import rebuild_store_task

    run = SyncRun.objects.filter(id=run_id).only("store_id", "status").first()
    if run is not None and run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
        rebuild_store_task.delay(run.store_id)


@shared_task(name="catalog_sync.catch_up_all", ignore_result=True)
def catch_up_all_task() -> int:
    """Start a catch-up sync of every active platform store that is not syncing."""
    from catalog_sync.services.sync import list_stores_to_sync  # services enqueue tasks from here

    store_ids = list_stores_to_sync()
    for store_id in store_ids:
        sync_store_task.delay(store_id, SyncRun.Kind.CATCH_UP)
    return len(store_ids)


@shared_task(name="catalog_sync.full_sync_all", ignore_result=True)
def full_sync_all_task() -> int:
    """Start a full sync (which also removes deleted products) of every active platform store not syncing."""
    from catalog_sync.services.sync import list_stores_to_sync  # services enqueue tasks from here

    store_ids = list_stores_to_sync()
    for store_id in store_ids:
        sync_store_task.delay(store_id, SyncRun.Kind.FULL)
    return len(store_ids)


@shared_task(name="catalog_sync.resume_stalled", ignore_result=True)
def resume_stalled_syncs_task(older_than_seconds: float | None = None) -> int:
    """Re-enqueue the expected step of running syncs that nobody advanced for a while (default 10 minutes)."""
    from catalog_sync.services.sync import STALLED_AFTER, resume_stalled_syncs  # services enqueue tasks from here

    older_than = STALLED_AFTER if older_than_seconds is None else timedelta(seconds=older_than_seconds)
    steps = resume_stalled_syncs(older_than=older_than)
    for step in steps:
        sync_step_task.delay(step.run_id, step.phase, step.cursor)
    return len(steps)


@shared_task(
    name="catalog_sync.apply_product_webhook",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_OUTAGE_RETRIES,
)
def apply_product_webhook_task(self: Any, event_id: int) -> None:
    """Apply a product delivery (retrying 429/5xx), then have the lists of the product it changed refreshed."""
    try:
        changed = apply_product_webhook(event_id=event_id, give_up=is_last_attempt(self))
    except PlatformUnavailable as exc:
        raise retry_after_outage(self, exc) from exc
    if changed is not None:
        _refresh_lists_of(changed)


def _refresh_lists_of(changed: ProductsChanged) -> None:
    """Entry points compose apps: the lists that show (or should show) these products are recomputed, coalesced."""
    from recommendations.services import request_list_refresh

    request_list_refresh(store_id=changed.store_id, external_ids=changed.external_ids)


@shared_task(
    name="catalog_sync.apply_order_webhook",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_OUTAGE_RETRIES,
)
def apply_order_webhook_task(self: Any, event_id: int) -> None:
    """Apply an order delivery to the store's order lines (retrying 429/5xx), then attribute the order."""
    try:
        event = apply_order_webhook(event_id=event_id, give_up=is_last_attempt(self))
    except PlatformUnavailable as exc:
        raise retry_after_outage(self, exc) from exc
    if event is not None and event.store is not None and event.status == WebhookEvent.Status.PROCESSED:
        _attribute_order(event)


def _attribute_order(event: WebhookEvent) -> None:
    """Entry points compose apps: the order's lines, just stored, are credited to the recommendations behind them."""
    from recommendations.services.attribution import attribute_webhook_order

    try:
        attribute_webhook_order(store=event.store, platform=event.platform, body=event.payload)  # type: ignore[arg-type]
    except Exception:  # the delivery is applied; attribution is redone by the order's next update
        logger.exception("webhook.attribution_failed", extra={"event_id": event.id, "topic": event.topic})


@shared_task(name="catalog_sync.report_customer_data", acks_late=True, ignore_result=True)
def report_customer_data_task(store_id: int, customer_key: str, request_id: Any) -> None:
    """Record what a customer's key links, for customers/data_request (merchants hands it here by name)."""
    store = Store.objects.filter(id=store_id).first()
    if store is not None:
        lines, orders = list_customer_order_ids(store=store, customer_key=customer_key)
        record_customer_data_request(store=store, request_id=request_id, keyed_order_lines=lines, keyed_orders=orders)


@shared_task(name="catalog_sync.redact_customer", acks_late=True, ignore_result=True)
def redact_customer_task(store_id: int, customer_key: str) -> None:
    """Delete the order lines a redacted customer's key links (merchants' customers/redact hands it here by name)."""
    store = Store.objects.filter(id=store_id).first()
    if store is not None:
        delete_customer_order_lines(store=store, customer_key=customer_key)

"""Celery tasks of the subnet: thin wrappers that take ids and ask the network about stores' products."""

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from catalog_sync.models import Product
from merchants.models import Store
from subnet.models import NetworkRequest
from subnet.registry import choose_validator, client_for, mark_down
from subnet.services import ask_network_for_product, pick_products_to_ask, prune_network_requests

logger = logging.getLogger(__name__)

MAX_ASK_RETRIES = 3
# Seconds before retrying a retryable failure (doubled per retry) and the longest wait honoured.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 600


@shared_task(name="subnet.ask_network", ignore_result=True)
def ask_network_task() -> int:
    """Enqueue one ask per product worth asking (BITRECS_ASK_BATCH per active store) if a validator is healthy."""
    if int(settings.BITRECS_ASK_BATCH) <= 0:
        return 0
    if choose_validator() is None:
        logger.warning("subnet.no_healthy_validator", extra={"network": settings.BITRECS_NETWORK})
        return 0
    queued = 0
    for store in Store.objects.filter(status=Store.Status.ACTIVE).order_by("id"):
        for product in pick_products_to_ask(store=store, limit=int(settings.BITRECS_ASK_BATCH)):
            ask_network_for_product_task.delay(store.id, product.id)
            queued += 1
    return queued


@shared_task(
    name="subnet.ask_network_for_product", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_ASK_RETRIES
)
def ask_network_for_product_task(self: Any, store_id: int, product_id: int) -> None:
    """Ask a healthy validator (by stake) about one product and record the attempt; retry only a retryable failure.

    A validator whose failure another may not have (unreachable, rate limited, no miners) is marked down, so
    the retry goes to another one when there is another.
    """
    product = Product.objects.filter(id=product_id, store_id=store_id).select_related("store").first()
    if product is None or product.store.status != Store.Status.ACTIVE:  # deleted or uninstalled while queued
        logger.info("subnet.ask_target_gone", extra={"store_id": store_id, "product_id": product_id})
        return
    endpoint = choose_validator()
    if endpoint is None:  # nothing recorded: the product is picked again on a later run
        logger.warning("subnet.no_healthy_validator", extra={"store_id": store_id, "product_id": product_id})
        return
    record = ask_network_for_product(
        client=client_for(endpoint),
        store=product.store,
        product=product,
        num_results=int(settings.BITRECS_ASK_NUM_RESULTS),
    )
    if record.status != NetworkRequest.Status.FAILED or not record.retryable:
        return
    mark_down(endpoint, seconds=record.retry_after_seconds)
    if self.request.retries >= self.max_retries:
        logger.warning("subnet.ask_gave_up", extra={"store_id": store_id, "product_id": product_id})
        return
    countdown = record.retry_after_seconds or RETRY_BASE_SECONDS * 2**self.request.retries
    raise self.retry(countdown=min(countdown, RETRY_MAX_SECONDS))


@shared_task(name="subnet.prune_network_requests", ignore_result=True)
def prune_network_requests_task() -> int:
    """Forget NetworkRequest records older than BITRECS_NETWORK_REQUEST_RETENTION_DAYS."""
    days = int(settings.BITRECS_NETWORK_REQUEST_RETENTION_DAYS)
    return prune_network_requests(before=timezone.now() - timedelta(days=days))

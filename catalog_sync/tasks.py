"""Celery tasks of catalog_sync: thin wrappers that take ids and call services."""

import logging

from celery import shared_task

from merchants.models import Store

logger = logging.getLogger(__name__)


@shared_task(name="catalog_sync.sync_store", bind=True, acks_late=True, max_retries=5)
def sync_store_task(self: object, store_id: int) -> None:
    """Sync a store's catalog (a no-op until the sync issue lands; the enqueue is already real)."""
    store = Store.objects.filter(id=store_id).first()
    if store is None:
        logger.info("catalog_sync.store_gone", extra={"store_id": store_id})
        return
    logger.info("catalog_sync.sync_requested", extra={"store_id": store_id})

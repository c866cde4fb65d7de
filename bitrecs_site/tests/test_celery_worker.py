"""A real Celery worker process, on the configured broker, applying a task to the real database."""

import pytest

from bitrecs_site.testing.celery_worker import wait_for
from merchants.models import Store, WebhookEvent
from merchants.services.webhooks import record_webhook_event
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_real_worker_processes_a_webhook_event_through_the_broker(celery_worker_process) -> None:
    celery_worker_process()
    # given a stored delivery whose processing is sent to the broker, not run in this process
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    event, created = record_webhook_event(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=store.domain,
        topic="unknown/topic",
        dedup_key="evt-worker-1",
        payload={"id": 1},
    )
    assert created is True
    assert WebhookEvent.objects.get(id=event.id).status == WebhookEvent.Status.PENDING

    # when the worker process picks it up, then its outcome is written to the database
    assert wait_for(lambda: WebhookEvent.objects.get(id=event.id).status != WebhookEvent.Status.PENDING)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.processed_at is not None

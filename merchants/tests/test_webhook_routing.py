"""The webhook routing table: each topic goes, by task name, to the task of the app that owns it."""

import functools

import pytest
from celery import current_app

from merchants.models import Store, WebhookEvent
from merchants.services.handoff import SYNC_STORE_TASK
from merchants.services.webhooks import WEBHOOK_ROUTES, record_webhook_event, webhook_task_name
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

SHOPIFY, WOOCOMMERCE = Store.Platform.SHOPIFY, Store.Platform.WOOCOMMERCE


def test_every_task_merchants_names_is_registered_by_its_app():
    # when every app's tasks are loaded, as a worker loads them
    current_app.autodiscover_tasks(force=True)

    # then
    assert {*WEBHOOK_ROUTES, SYNC_STORE_TASK} - set(current_app.tasks) == set()


@pytest.mark.parametrize(
    ("platform", "topic", "task"),
    [
        (SHOPIFY, "app/uninstalled", "merchants.apply_webhook_event"),
        (SHOPIFY, "shop/redact", "merchants.apply_webhook_event"),
        (SHOPIFY, "products/update", "catalog_sync.apply_product_webhook"),
        (SHOPIFY, "products/delete", "catalog_sync.apply_product_webhook"),
        (SHOPIFY, "orders/create", "catalog_sync.apply_order_webhook"),
        (WOOCOMMERCE, "product.updated", "catalog_sync.apply_product_webhook"),
        (WOOCOMMERCE, "order.created", "catalog_sync.apply_order_webhook"),
        # a topic no app owns, or one of the other platform's topics, stays in merchants (which ignores it)
        (SHOPIFY, "unknown/topic", "merchants.apply_webhook_event"),
        (WOOCOMMERCE, "coupon.created", "merchants.apply_webhook_event"),
        (WOOCOMMERCE, "products/update", "merchants.apply_webhook_event"),
        (SHOPIFY, "product.updated", "merchants.apply_webhook_event"),
    ],
)
def test_a_topic_is_routed_to_the_task_of_the_app_that_owns_it(platform, topic, task):
    assert webhook_task_name(platform=platform, topic=topic) == task


def test_the_intake_hands_a_stored_delivery_to_its_owner_once_it_commits(django_capture_on_commit_callbacks):
    # given
    store = StoreFactory.create(platform=SHOPIFY)

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event, created = record_webhook_event(
            platform=SHOPIFY,
            store=store,
            shop_domain=store.domain,
            topic="products/update",
            dedup_key="products/update:evt-1",
            payload={"id": 1},
        )

    # then: one task, named (not imported), waits for the commit; the event is pending until it runs
    assert created is True
    enqueued = [c.args for c in callbacks if isinstance(c, functools.partial)]  # the hand-off: (task name, event)
    assert enqueued == [("catalog_sync.apply_product_webhook", event.id)]
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PENDING

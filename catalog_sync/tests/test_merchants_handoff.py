"""What merchants hands to catalog_sync by task name: an install's first sync, and a product delivery to apply.

These tests were in merchants/tests; they moved here because they assert on catalog_sync's rows, and merchants
imports nothing from the apps above it.
"""

import json
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from bitrecs_site.testing.fake_woocommerce import build_webhook_delivery, send_delivery
from catalog_sync.models import Product, SyncRun
from merchants.models import PlatformCredential, Store, StoreEvent, WebhookEvent, WooCommerceInstall
from merchants.tests import test_woocommerce_webhooks
from merchants.tests.test_shopify_token_exchange import SHOP, URL
from merchants.tests.test_woocommerce_onboarding import connect_and_approve, raw_credential_row
from merchants.tests.test_woocommerce_webhooks import PRODUCT, WEBHOOK_SECRET, url_for

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

store = test_woocommerce_webhooks.store  # the fixture: a WooCommerce store holding a webhook secret


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_calls_create_one_store_with_one_exchange(fake_shopify):
    # given: the first request is mid-exchange (Shopify has not answered) when the second arrives
    fake_shopify.hold_exchange = threading.Event()
    responses: dict[str, int] = {}

    def embedded_call(name: str) -> None:
        try:
            response = Client().get(URL, headers={"Authorization": f"Bearer {fake_shopify.id_token(SHOP)}"})
            responses[name] = response.status_code
        finally:
            connections.close_all()

    first = threading.Thread(target=embedded_call, args=("first",))
    first.start()
    assert fake_shopify.exchange_received.wait(timeout=5)
    second = threading.Thread(target=embedded_call, args=("second",))

    # when
    second.start()
    time.sleep(0.3)  # the second request finds no usable token and waits for the store's lock
    fake_shopify.hold_exchange.set()
    first.join(timeout=10)
    second.join(timeout=10)

    # then
    assert responses == {"first": 200, "second": 200}
    store = Store.objects.get()
    assert len(fake_shopify.exchange_requests()) == 1
    assert PlatformCredential.objects.get(store=store).access_token == fake_shopify.shops[SHOP].access_tokens[-1]
    assert list(store.events.values_list("kind", flat=True)) == [StoreEvent.Kind.INSTALLED]
    # Without a test transaction the first sync runs at once (eagerly): one run, failed since the fake has no GraphQL.
    assert SyncRun.objects.filter(store=store).count() == 1


@pytest.mark.usefixtures("woocommerce_settings")
def test_approving_connects_the_store_end_to_end(
    client, fake_woocommerce, woocommerce_transport, django_capture_on_commit_callbacks, caplog
):
    # when (Celery is eager in tests: the sync task runs when the enqueue's on-commit hook fires)
    with (
        django_capture_on_commit_callbacks(execute=True) as on_commit,
        caplog.at_level("INFO", logger="catalog_sync.tasks"),
    ):
        approval = connect_and_approve(client, fake_woocommerce, woocommerce_transport)

    # then: WooCommerce got exactly 200, so the merchant is sent back with success=1
    assert approval.callback_status == 200
    assert woocommerce_transport.responses[0].status_code == 200
    install = WooCommerceInstall.objects.get()
    assert approval.return_location == f"https://bitrecs.test/woocommerce/return?success=1&user_id={install.user_id}"
    # the store is active, named after host:port
    store = Store.objects.get()
    assert store.platform == Store.Platform.WOOCOMMERCE
    assert store.domain == fake_woocommerce.base_url.removeprefix("http://")
    assert store.status == Store.Status.ACTIVE
    assert store.installed_at is not None
    assert install.completed_at is not None
    assert install.store == store
    assert list(store.events.values_list("kind", flat=True)) == [StoreEvent.Kind.INSTALLED]
    # the keys are stored, readable through the model, encrypted in the column
    credential = PlatformCredential.objects.get(store=store)
    assert credential.consumer_key == approval.key.consumer_key
    assert credential.consumer_secret == approval.key.consumer_secret
    assert credential.key_id == str(approval.key.key_id)
    assert credential.scopes == "read"
    assert len(credential.webhook_secret) == 43
    raw_key, raw_secret, raw_webhook_secret = raw_credential_row(store)
    assert approval.key.consumer_secret not in raw_secret
    assert approval.key.consumer_key not in raw_key
    assert credential.webhook_secret not in raw_webhook_secret
    assert approval.key.consumer_secret.encode() not in json.dumps(raw_credential_row(store)).encode()
    # the first sync is enqueued for this store, once
    assert len(on_commit) == 1
    run = SyncRun.objects.get(store=store)
    assert (run.kind, run.status, run.error) == (SyncRun.Kind.FULL, SyncRun.Status.SUCCEEDED, "")


def test_a_delivery_signed_with_the_webhook_secret_is_stored_once_and_answered_200(
    client, store, django_capture_on_commit_callbacks
):
    # given
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get()
    assert event.platform == Store.Platform.WOOCOMMERCE
    assert event.store == store
    assert event.shop_domain == "shop.example"
    assert event.topic == "product.updated"
    assert event.payload == PRODUCT
    assert event.dedup_key.startswith(f"7:{delivery.headers['X-WC-Webhook-Delivery-ID']}:")
    # applied to the catalog by the eager task
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.processed_at is not None
    assert Product.objects.get(store=store, external_id="42").title == "Blue mug"

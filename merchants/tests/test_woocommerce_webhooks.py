"""POST /webhooks/woocommerce/<site_key>: ping, signature verification, dedup, and what the handler does."""

import pytest

from bitrecs_site.testing.fake_woocommerce import (
    build_ping,
    build_webhook_delivery,
    send_delivery,
    webhook_signature,
)
from merchants.models import PlatformCredential, Store, WebhookEvent
from merchants.services.webhooks import process_webhook_event
from merchants.services.woocommerce import handle_woocommerce_webhook

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec-" + "w" * 37
CONSUMER_SECRET = "cs_" + "c" * 40
PRODUCT = {"id": 42, "name": "Blue mug", "sku": "MUG-1", "permalink": "https://shop.example/product/blue-mug/"}
ORDER = {
    "id": 900,
    "status": "processing",
    "billing": {"email": "ann@example.com", "first_name": "Ann"},
    "customer_ip_address": "203.0.113.9",
    "line_items": [{"product_id": 42, "variation_id": 0, "quantity": 2}],
}


def make_store(*, domain: str, platform: str = Store.Platform.WOOCOMMERCE, status: str = Store.Status.ACTIVE) -> Store:
    return Store.objects.create(platform=platform, domain=domain, name=domain, status=status)


@pytest.fixture
def store() -> Store:
    store = make_store(domain="shop.example")
    PlatformCredential.objects.create(
        store=store, consumer_key="ck_" + "k" * 40, consumer_secret=CONSUMER_SECRET, webhook_secret=WEBHOOK_SECRET
    )
    return store


def url_for(store: Store) -> str:
    return f"/webhooks/woocommerce/{store.site_key}"


# Ping.


def test_the_unsigned_ping_gets_exactly_200_and_stores_nothing(client, store):
    # when
    response = send_delivery(client, url_for(store), build_ping(webhook_id=12))

    # then
    assert response.status_code == 200
    assert not WebhookEvent.objects.exists()


def test_a_ping_for_an_unknown_site_key_is_404(client):
    response = send_delivery(client, "/webhooks/woocommerce/sk_nope", build_ping())

    assert response.status_code == 404
    assert response.json()["error"] == "store_not_found"


def test_an_unsigned_body_that_is_not_a_ping_is_401(client, store):
    # given: no topic, no signature, but a JSON body
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=None)
    headers = {k: v for k, v in delivery.headers.items() if k != "X-WC-Webhook-Topic"}

    # when
    response = client.post(url_for(store), delivery.body, content_type="application/json", headers=headers)

    # then
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


# Signature verification.


def test_a_delivery_signed_with_the_consumer_secret_is_accepted(client, store):
    # given: a webhook created by a client that left its secret to the old default (the API user's consumer secret)
    delivery = build_webhook_delivery(topic="order.created", payload=ORDER, secret=CONSUMER_SECRET)

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.topic == "order.created"
    assert event.payload == {
        "id": 900,
        "status": "processing",
        "line_items": [{"product_id": 42, "variation_id": 0, "quantity": 2}],
    }


def test_the_signature_covers_the_raw_bytes_woocommerce_sent(client, store):
    # given: wp_json_encode escapes slashes, so re-serialising the JSON would not reproduce the signature
    delivery = build_webhook_delivery(topic="product.created", payload=PRODUCT, secret=WEBHOOK_SECRET)
    assert b"https:\\/\\/shop.example" in delivery.body

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 200
    assert WebhookEvent.objects.get().payload["permalink"] == "https://shop.example/product/blue-mug/"


@pytest.mark.parametrize(
    "signature",
    [
        webhook_signature(b'{"id":42}', WEBHOOK_SECRET),  # valid for another body
        webhook_signature(b'{"id":42,"name":"Blue mug"}', "some-other-secret"),
        "bm90IGEgc2lnbmF0dXJl",
        "",
    ],
)
def test_a_forged_or_missing_signature_is_401_and_stores_nothing(client, store, signature):
    # given
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=None, signature=signature)

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


def test_a_delivery_without_a_signature_header_is_401(client, store):
    # given
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=None)
    assert "X-WC-Webhook-Signature" not in delivery.headers

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_signature_made_for_another_store_is_401(client, store):
    # given
    other = make_store(domain="other.example")
    PlatformCredential.objects.create(store=other, consumer_secret="cs_" + "d" * 40, webhook_secret="other-secret")
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret="other-secret")

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


# Bad input.


def test_an_unknown_site_key_is_404(client):
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET)

    response = send_delivery(client, "/webhooks/woocommerce/sk_unknown", delivery)

    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_site_key_of_a_store_on_another_platform_is_404(client):
    shopify_store = make_store(domain="shop.myshopify.com", platform=Store.Platform.SHOPIFY)
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET)

    response = send_delivery(client, url_for(shopify_store), delivery)

    assert response.status_code == 404


def test_an_oversized_delivery_is_413_and_stores_nothing(client, store, settings):
    # given
    settings.MAX_WEBHOOK_BODY_BYTES = 64
    delivery = build_webhook_delivery(
        topic="product.updated", payload=PRODUCT | {"description": "x" * 100}, secret=WEBHOOK_SECRET
    )

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[1,2,3]", b'"text"'])
def test_a_signed_body_that_is_not_a_json_object_is_400(client, store, body):
    # given
    delivery = build_webhook_delivery(topic="product.updated", payload={}, secret=None)
    headers = delivery.headers | {"X-WC-Webhook-Signature": webhook_signature(body, WEBHOOK_SECRET)}

    # when
    response = client.post(url_for(store), body, content_type="application/json", headers=headers)

    # then
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("missing", ["X-WC-Webhook-Topic", "X-WC-Webhook-ID", "X-WC-Webhook-Delivery-ID"])
def test_a_signed_delivery_missing_a_filing_header_is_400(client, store, missing):
    # given
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET)
    headers = {k: v for k, v in delivery.headers.items() if k != missing}

    # when
    response = client.post(url_for(store), delivery.body, content_type="application/json", headers=headers)

    # then
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_get_is_405(client, store):
    assert client.get(url_for(store)).status_code == 405


# Dedup.


def test_a_repeated_delivery_creates_no_second_event(client, store):
    # given
    delivery = build_webhook_delivery(
        topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET, delivery_id="a" * 32
    )
    first = send_delivery(client, url_for(store), delivery)

    # when
    second = send_delivery(client, url_for(store), delivery)

    # then
    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


def test_two_resources_delivered_in_the_same_second_are_both_kept(client, store):
    # given: WooCommerce's delivery id is wp_hash(webhook id . second), so both carry the same one
    first = build_webhook_delivery(
        topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET, delivery_id="b" * 32
    )
    second = build_webhook_delivery(
        topic="product.updated", payload=PRODUCT | {"id": 43}, secret=WEBHOOK_SECRET, delivery_id="b" * 32
    )

    # when
    send_delivery(client, url_for(store), first)
    send_delivery(client, url_for(store), second)

    # then
    assert sorted(e.payload["id"] for e in WebhookEvent.objects.all()) == [42, 43]


# Inactive stores.


def test_a_delivery_for_an_uninstalled_store_is_accepted_but_ignored(client, store):
    # given
    Store.objects.filter(id=store.id).update(status=Store.Status.UNINSTALLED)
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret=WEBHOOK_SECRET)

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert not WebhookEvent.objects.exists()


def test_a_forged_delivery_for_an_uninstalled_store_is_still_401(client, store):
    # given
    Store.objects.filter(id=store.id).update(status=Store.Status.UNINSTALLED)
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret="forged")

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 401


def test_a_delivery_for_an_uninstalled_store_without_credentials_is_accepted_but_ignored(client):
    # given
    store = make_store(domain="gone.example", status=Store.Status.UNINSTALLED)
    delivery = build_webhook_delivery(topic="product.updated", payload=PRODUCT, secret="anything")

    # when
    response = send_delivery(client, url_for(store), delivery)

    # then
    assert response.status_code == 200
    assert not WebhookEvent.objects.exists()


# The handler.


@pytest.mark.parametrize(
    "topic",
    ["product.created", "product.updated", "product.deleted", "order.created", "order.updated", "coupon.created"],
)
def test_the_handler_ignores_every_topic_until_the_sync_applies_them(store, topic):
    # given
    event = WebhookEvent.objects.create(
        platform=Store.Platform.WOOCOMMERCE, store=store, shop_domain=store.domain, topic=topic, dedup_key=topic
    )

    # when
    status = handle_woocommerce_webhook(event)

    # then
    assert status == WebhookEvent.Status.IGNORED


def test_processing_an_event_of_a_store_uninstalled_since_receipt_ignores_it(store):
    # given
    event = WebhookEvent.objects.create(
        platform=Store.Platform.WOOCOMMERCE,
        store=store,
        shop_domain=store.domain,
        topic="product.updated",
        dedup_key="x",
    )
    Store.objects.filter(id=store.id).update(status=Store.Status.UNINSTALLED)

    # when
    processed = process_webhook_event(event_id=event.id)

    # then
    assert processed is not None
    assert processed.status == WebhookEvent.Status.IGNORED
    assert processed.error == ""

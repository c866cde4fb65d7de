"""Every JSON intake of the site goes through the one normaliser (bitrecs_site.json_intake).

Odd but valid JSON (NUL in strings and keys, lone surrogates, huge integers, repeated keys, nesting up to the
limit) is stored normalised; what JSON or PostgreSQL cannot hold (NaN, overflowing numbers, nesting past the
limit, bytes that are not UTF-8, a top level that is not an object) is a 4xx JSON answer with nothing stored.
Run on PostgreSQL (DATABASE_URL set) these prove the database accepts what is stored; SQLite accepts more.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from bitrecs_site.testing.fake_woocommerce import build_webhook_delivery, webhook_signature
from merchants.models import PlatformCredential, Store, StoreEvent, WebhookEvent, WooCommerceInstall
from merchants.tests.factories import StoreFactory
from recommendations.models import ShopperEvent
from recommendations.process_state import clear_process_caches
from recommendations.services.events import clear_event_spool, spooled_batches

pytestmark = pytest.mark.django_db

SHOP = "intake-demo.myshopify.com"
WEBHOOK_SECRET = "whsec-" + "w" * 37
HUGE = 123456789012345678901234567890123456789

# Raw JSON text a platform may legitimately send -> the payload we store.
ODD_BUT_VALID: list[tuple[bytes, dict[str, Any]]] = [
    (b'{"id": 1, "title": "Mug\\u0000 blue", "a\\u0000b": 2}', {"id": 1, "title": "Mug blue", "ab": 2}),
    (b'{"id": 1, "title": "x\\ud800y\\udfff"}', {"id": 1, "title": "x\ufffdy\ufffd"}),
    (b'{"id": 1, "title": "\\ud83d\\ude00 ok"}', {"id": 1, "title": "\U0001f600 ok"}),
    (b'{"id": ' + str(HUGE).encode() + b', "price": -1.5e-300}', {"id": HUGE, "price": -1.5e-300}),
    (b'{"id": 1, "id": 2, "title": "t", "title": "last"}', {"id": 2, "title": "last"}),
    (b'\xef\xbb\xbf{"id": 1}', {"id": 1}),
    (b'{"id": 1, "deep": ' + b"[" * 62 + b"]" * 62 + b"}", {"id": 1, "deep": json.loads("[" * 62 + "]" * 62)}),
]
# Raw bodies no intake stores -> the start of the message the sender gets.
REFUSED: list[tuple[bytes, str]] = [
    (b'{"id": NaN}', "NaN is not a number JSON allows."),
    (b'{"id": -Infinity}', "-Infinity is not a number JSON allows."),
    (b'{"id": 1e999}', "The number 1e999 is too large."),
    (b'{"id": ' + b"9" * 5000 + b"}", "The body is not valid JSON"),
    (b'{"deep": ' + b"[" * 70 + b"]" * 70 + b"}", "The JSON nests deeper than 64 levels."),
    (b'{"deep": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "The JSON nests deeper than 64 levels."),
    (b"\xff\xfe{\x00}\x00", "The body is not UTF-8 text"),
    (b'{"title": "caf\xe9"}', "The body is not UTF-8 text"),
    (b"[1, 2]", "The body must be a JSON object."),
    (b'"text"', "The body must be a JSON object."),
    (b"null", "The body must be a JSON object."),
    (b'{"id": 1', "The body is not valid JSON"),
]
REFUSED_IDS = ["nan", "-inf", "1e999", "5000-digits", "depth-70", "depth-50000", "utf16", "latin1", "array",
               "string", "null", "truncated"]  # fmt: skip


def assert_refused(response: Any, message: str) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert answer["detail"].startswith(message)


# --- Shopify webhooks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "stored"), ODD_BUT_VALID)
def test_a_signed_shopify_delivery_of_odd_but_valid_json_is_stored_normalised(fake_shopify, client, body, stored):
    response = fake_shopify.deliver_webhook(client, topic="products/update", shop=SHOP, payload=body)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    event.refresh_from_db()  # what the database gave back, not what was handed to it
    assert (event.topic, event.shop_domain, event.payload) == ("products/update", SHOP, stored)


@pytest.mark.parametrize(("body", "message"), REFUSED, ids=REFUSED_IDS)
def test_a_signed_shopify_delivery_the_database_cannot_hold_is_400_and_stores_nothing(
    fake_shopify, client, body, message
):
    response = fake_shopify.deliver_webhook(client, topic="products/update", shop=SHOP, payload=body)

    assert_refused(response, message)
    assert WebhookEvent.objects.count() == 0


def test_a_shopify_delivery_refused_once_is_not_a_duplicate_when_sent_fixed(fake_shopify, client):
    first = fake_shopify.deliver_webhook(
        client, topic="products/update", shop=SHOP, payload=b'{"a": NaN}', event_id="e1"
    )
    second = fake_shopify.deliver_webhook(
        client, topic="products/update", shop=SHOP, payload=b'{"a": 1}', event_id="e1"
    )

    assert (first.status_code, second.status_code) == (400, 200)
    assert list(WebhookEvent.objects.values_list("dedup_key", "payload")) == [("products/update:e1", {"a": 1})]


# --- WooCommerce webhooks and the key callback ------------------------------------------------------------


@pytest.fixture
def woo_store() -> Store:
    store = Store.objects.create(
        platform=Store.Platform.WOOCOMMERCE, domain="shop.example", name="shop.example", status=Store.Status.ACTIVE
    )
    PlatformCredential.objects.create(
        store=store, consumer_key="ck_" + "k" * 40, consumer_secret="cs_" + "c" * 40, webhook_secret=WEBHOOK_SECRET
    )
    return store


def post_woo(client: Client, store: Store, body: bytes) -> Any:
    delivery = build_webhook_delivery(topic="product.updated", payload={}, secret=None)
    headers = delivery.headers | {"X-WC-Webhook-Signature": webhook_signature(body, WEBHOOK_SECRET)}
    return client.post(
        f"/webhooks/woocommerce/{store.site_key}", body, content_type="application/json", headers=headers
    )


@pytest.mark.parametrize(("body", "stored"), ODD_BUT_VALID)
def test_a_signed_woocommerce_delivery_of_odd_but_valid_json_is_stored_normalised(client, woo_store, body, stored):
    response = post_woo(client, woo_store, body)

    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    event = WebhookEvent.objects.get()
    event.refresh_from_db()
    assert (event.topic, event.payload) == ("product.updated", stored)


@pytest.mark.parametrize(("body", "message"), REFUSED, ids=REFUSED_IDS)
def test_a_signed_woocommerce_delivery_the_database_cannot_hold_is_400_and_stores_nothing(
    client, woo_store, body, message
):
    response = post_woo(client, woo_store, body)

    assert_refused(response, message)
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(("body", "message"), REFUSED, ids=REFUSED_IDS)
def test_the_woocommerce_key_callback_refuses_json_it_cannot_hold_with_400(client, body, message):
    response = client.post("/woocommerce/callback", body, content_type="application/json")

    assert_refused(response, message)
    assert (Store.objects.count(), PlatformCredential.objects.count(), StoreEvent.objects.count()) == (0, 0, 0)


def test_the_woocommerce_key_callback_reads_nul_and_surrogates_as_plain_wrong_fields(client):
    WooCommerceInstall.objects.create(store_url="https://shop.example", user_id="u1")
    body = (
        b'{"key_id": 1, "user_id": "u1\\u0000", "consumer_key": "ck_\\ud800", "consumer_secret": "cs_x", '
        b'"key_permissions": "read"}'
    )

    response = client.post("/woocommerce/callback", body, content_type="application/json")

    assert_refused(response, "consumer_key must be 'ck_' followed by 40 hexadecimal characters.")
    assert Store.objects.count() == 0


# --- Widget events ----------------------------------------------------------------------------------------


@pytest.fixture
def events_store(settings: Any, tmp_path: Path) -> Any:
    settings.EVENTS_DRAIN_IN_PROCESS = False  # a Celery drain, run inline (tasks are eager), after every batch
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 0
    settings.EVENTS_SPOOL_DIR = str(tmp_path / "spool")
    settings.EVENTS_SPOOL_URL = ""
    clear_process_caches()
    cache.clear()
    yield StoreFactory.create(domain="events.example.com", site_key="sk_intake")
    clear_event_spool()


def event_batch(event: bytes) -> bytes:
    return b'{"site_key": "sk_intake", "events": [' + event + b"]}"


@pytest.mark.parametrize(
    ("event", "stored"),
    [
        (b'{"event_id": "e\\u00001", "type": "click", "ts": 1780000000000, "sku": "MUG\\u0000-1"}', ("e1", "MUG-1")),
        (b'{"event_id": "e1", "type": "click", "ts": 1780000000000, "sku": "MUG-\\ud800"}', ("e1", "MUG-\ufffd")),
        (b'{"event_id": "e1", "event_id": "e2", "type": "view", "ts": 1780000000000, "sku": "A"}', ("e2", "A")),
        (b'{"event_id": "e1", "type": "view", "ts": 1780000000000, "sku": "A", "extra": ' + b"[" * 60 + b"]" * 60
         + b"}", ("e1", "A")),
    ],
    ids=["nul", "lone-surrogate", "duplicate-key", "deep-extra"],
)  # fmt: skip
def test_an_odd_but_valid_event_batch_is_stored_normalised(client, events_store, event, stored):
    response = client.post("/api/v1/events", event_batch(event), content_type="text/plain;charset=UTF-8")

    assert response.status_code == 204
    assert list(ShopperEvent.objects.values_list("event_id", "sku")) == [stored]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (b'{"event_id": "e1", "type": "view", "ts": NaN, "sku": "A"}', "NaN is not a number JSON allows."),
        (b'{"event_id": "e1", "type": "view", "ts": 1e999, "sku": "A"}', "The number 1e999 is too large."),
        (b'{"event_id": "e1", "type": "view", "ts": ' + str(HUGE).encode() + b', "sku": "A"}', "events[0].ts:"),
        (b'{"event_id": "e1", "type": "view", "ts": 1780000000000, "sku": "A", "x": ' + b"[" * 70 + b"]" * 70
         + b"}", "The JSON nests deeper than 64 levels."),
        (b'{"event_id": "\\u0000", "type": "view", "ts": 1780000000000, "sku": "A"}', "events[0].event_id:"),
    ],
    ids=["nan", "1e999", "huge-int-ts", "depth-70", "only-nul-id"],
)  # fmt: skip
def test_an_event_batch_it_cannot_hold_is_400_and_stores_nothing(client, events_store, event, message):
    response = client.post("/api/v1/events", event_batch(event), content_type="text/plain;charset=UTF-8")

    assert_refused(response, message)
    assert (ShopperEvent.objects.count(), spooled_batches()) == (0, 0)


@pytest.mark.parametrize("body", [b"[]", b'"sk_intake"', b"1", b"null"])
def test_an_event_batch_that_is_not_an_object_is_400(client, events_store, body):
    response = client.post("/api/v1/events", body, content_type="application/json")

    assert_refused(response, "The body must be a JSON object")
    assert ShopperEvent.objects.count() == 0

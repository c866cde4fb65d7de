"""POST /webhooks/shopify: verification, deduplication, and what each topic does."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from merchants.customers import CUSTOMER_KEY_FIELD, customer_key
from merchants.exceptions import PlatformRejected
from merchants.models import OAuthState, PlatformCredential, Store, StoreEvent, WebhookEvent
from merchants.services.shopify import get_shopify_access_token
from merchants.tasks import process_webhook_event_task
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db

SHOP = "webhook-demo.myshopify.com"
CUSTOMER_EMAIL = "jane.doe.private@example.com"
CUSTOMER_PHONE = "+15555550123"


@pytest.fixture
def store():
    store = StoreFactory(domain=SHOP)
    PlatformCredentialFactory(
        store=store,
        access_token="shpat_webhook_access",
        access_token_expires_at=timezone.now() + timedelta(hours=1),
        refresh_token="shprt_webhook_refresh",
        refresh_token_expires_at=timezone.now() + timedelta(days=90),
    )
    return store


@pytest.fixture
def deliver(client, fake_shopify, django_capture_on_commit_callbacks):
    """Send a signed delivery and run the Celery processing it enqueues (eager, on commit)."""

    def send(**kwargs):
        kwargs.setdefault("shop", SHOP)
        with django_capture_on_commit_callbacks(execute=True):
            return fake_shopify.deliver_webhook(client, **kwargs)

    return send


def _data_request_payload() -> dict:
    return {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "orders_requested": [299938, 280263],
        "customer": {"id": 191167, "email": CUSTOMER_EMAIL, "phone": CUSTOMER_PHONE},
        "data_request": {"id": 9999},
    }


def _redact_payload() -> dict:
    return {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "customer": {"id": 191167, "email": CUSTOMER_EMAIL, "phone": CUSTOMER_PHONE},
        "orders_to_redact": [299938, 280263],
    }


def _dump_database() -> str:
    out = StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


# --- verification -----------------------------------------------------------------------------------

TOPICS = [
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
    "products/update",
    "orders/create",
]


@pytest.mark.parametrize("topic", TOPICS)
def test_a_delivery_signed_with_another_secret_is_refused_with_401(deliver, store, topic):
    # when
    response = deliver(topic=topic, payload={"shop_domain": SHOP}, secret="not-the-app-secret")

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE


@pytest.mark.parametrize("topic", TOPICS)
def test_a_delivery_without_an_hmac_header_is_refused_with_401(client, fake_shopify, store, topic):
    # given
    body = json.dumps({"shop_domain": SHOP}).encode()
    headers = fake_shopify.webhook_headers(topic=topic, shop=SHOP, body=body)
    del headers["X-Shopify-Hmac-Sha256"]

    # when
    response = client.post("/webhooks/shopify", data=body, content_type="application/json", headers=headers)

    # then
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_a_delivery_whose_body_was_changed_after_signing_is_refused(client, fake_shopify, store):
    # given
    headers = fake_shopify.webhook_headers(topic="app/uninstalled", shop=SHOP, body=b'{"id": 1}')

    # when
    response = client.post("/webhooks/shopify", data=b'{"id": 2}', content_type="application/json", headers=headers)

    # then
    assert response.status_code == 401
    assert (WebhookEvent.objects.count(), Store.objects.get(id=store.id).status) == (0, Store.Status.ACTIVE)


def test_header_names_are_case_insensitive_and_the_unprefixed_names_are_accepted(client, fake_shopify, store):
    # given
    body = json.dumps({"id": 1}).encode()
    digest = base64.b64encode(hmac.new(b"test-client-secret", body, hashlib.sha256).digest()).decode()
    headers = {
        "shopify-hmac-sha256": digest,
        "SHOPIFY-TOPIC": "products/update",
        "shopify-shop-domain": SHOP,
        "shopify-event-id": "evt-lowercase",
    }

    # when
    response = client.post("/webhooks/shopify", data=body, content_type="application/json", headers=headers)

    # then
    assert response.status_code == 200
    assert WebhookEvent.objects.get().dedup_key == "products/update:evt-lowercase"


def test_a_delivery_signed_with_the_previous_secret_is_accepted_during_rotation(deliver, store, settings):
    # given
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-old-secret"

    # when
    response = deliver(topic="products/update", payload={"id": 1}, secret="the-old-secret")

    # then
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_an_oversized_body_is_refused_with_413(deliver, store, settings):
    # given
    settings.MAX_WEBHOOK_BODY_BYTES = 100

    # when
    response = deliver(topic="products/update", payload={"title": "x" * 200})

    # then
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_is_refused_with_400(deliver, store, body):
    # when
    response = deliver(topic="products/update", payload=body)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Shopify-Shop-Domain": "evil.com"}, id="foreign-shop"),
        pytest.param({"X-Shopify-Shop-Domain": "Webhook-Demo.myshopify.com"}, id="uppercase-shop"),
        pytest.param({"X-Shopify-Shop-Domain": ""}, id="missing-shop"),
        pytest.param({"X-Shopify-Topic": ""}, id="missing-topic"),
        pytest.param({"X-Shopify-Event-Id": "", "X-Shopify-Webhook-Id": ""}, id="missing-ids"),
    ],
)
def test_a_signed_delivery_with_bad_headers_is_refused_with_400(deliver, store, headers):
    # when
    response = deliver(topic="app/uninstalled", payload={"id": 1}, headers=headers)

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert WebhookEvent.objects.count() == 0
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE


def test_get_is_not_allowed(client):
    # when
    response = client.get("/webhooks/shopify")

    # then
    assert response.status_code == 405


# --- dedup and unknowns -------------------------------------------------------------------------------


def test_the_webhook_id_is_the_dedup_key_when_the_event_id_is_missing(deliver, store):
    # when
    deliver(
        topic="products/update", payload={"id": 1}, headers={"X-Shopify-Event-Id": "", "X-Shopify-Webhook-Id": "wh-1"}
    )
    response = deliver(
        topic="products/update", payload={"id": 1}, headers={"X-Shopify-Event-Id": "", "X-Shopify-Webhook-Id": "wh-1"}
    )

    # then
    assert response.status_code == 200
    assert list(WebhookEvent.objects.values_list("dedup_key", flat=True)) == ["products/update:wh-1"]


def test_a_delivery_for_an_unknown_shop_is_acknowledged_recorded_without_store_and_ignored(deliver):
    # when
    response = deliver(topic="app/uninstalled", payload={"id": 1}, shop="stranger.myshopify.com")

    # then
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.store, event.shop_domain, event.status) == (None, "stranger.myshopify.com", "ignored")
    assert Store.objects.count() == 0


@pytest.mark.parametrize("topic", ["collections/update", "shop/update", "nope/nope"])
def test_topics_not_acted_on_are_ignored(deliver, store, topic):
    # when
    response = deliver(topic=topic, payload={"id": 1}, event_id="evt-1")

    # then
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.topic, event.dedup_key, event.status, event.store) == (topic, f"{topic}:evt-1", "ignored", store)


# --- app/uninstalled ----------------------------------------------------------------------------------


def test_app_uninstalled_blanks_the_tokens_and_marks_the_store_uninstalled_once(deliver, store):
    # given
    payload = {"id": 954889, "name": "Webhook demo", "email": "owner@example.com", "domain": SHOP}

    # when
    first = deliver(topic="app/uninstalled", payload=payload, event_id="evt-uninstall")
    store.refresh_from_db()
    uninstalled_at = store.uninstalled_at
    repeat = deliver(topic="app/uninstalled", payload=payload, event_id="evt-uninstall")

    # then
    assert (first.status_code, repeat.status_code) == (200, 200)
    store.refresh_from_db()
    assert store.status == Store.Status.UNINSTALLED
    assert store.is_active is False
    assert store.uninstalled_at == uninstalled_at is not None
    credential = PlatformCredential.objects.get(store=store)
    assert (credential.access_token, credential.refresh_token) == ("", "")
    assert (credential.access_token_expires_at, credential.refresh_token_expires_at) == (None, None)
    assert list(store.events.values_list("kind", flat=True)) == [StoreEvent.Kind.UNINSTALLED]
    assert list(WebhookEvent.objects.values_list("status", flat=True)) == ["processed"]
    assert "owner@example.com" not in _dump_database()


def test_a_second_uninstall_delivery_with_another_event_id_acts_once(deliver, store):
    # when
    deliver(topic="app/uninstalled", payload={"id": 1}, event_id="evt-a")
    deliver(topic="app/uninstalled", payload={"id": 1}, event_id="evt-b")

    # then
    assert list(WebhookEvent.objects.order_by("id").values_list("status", flat=True)) == ["processed", "ignored"]
    assert store.events.filter(kind=StoreEvent.Kind.UNINSTALLED).count() == 1


def test_an_uninstalled_store_gets_no_access_token(deliver, store):
    # given
    deliver(topic="app/uninstalled", payload={"id": 1})

    # when
    with pytest.raises(PlatformRejected) as raised:
        get_shopify_access_token(store=Store.objects.get(id=store.id))

    # then
    assert raised.value.message == f"{SHOP} holds no Shopify access token; the app must be installed again."


def test_an_uninstall_received_before_a_reinstall_is_ignored(client, fake_shopify, store, time_machine):
    # given: the delivery is stored, then the merchant reinstalls before the worker gets to it
    time_machine.move_to(timezone.now())
    fake_shopify.deliver_webhook(client, topic="app/uninstalled", shop=SHOP, payload={"id": 1})
    time_machine.shift(timedelta(seconds=5))
    Store.objects.filter(id=store.id).update(installed_at=timezone.now())

    # when
    process_webhook_event_task(WebhookEvent.objects.get().id)

    # then
    assert WebhookEvent.objects.get().status == "ignored"
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE
    assert PlatformCredential.objects.get(store=store).access_token == "shpat_webhook_access"


# --- compliance topics --------------------------------------------------------------------------------


def test_customers_data_request_is_reported_and_no_customer_data_is_stored_anywhere(deliver, store):
    # when
    response = deliver(topic="customers/data_request", payload=_data_request_payload(), event_id="evt-dr")
    repeat = deliver(topic="customers/data_request", payload=_data_request_payload(), event_id="evt-dr")

    # then
    assert (response.status_code, repeat.status_code) == (200, 200)
    event = store.events.get()
    assert (event.kind, event.detail) == (
        StoreEvent.Kind.DATA_REQUEST,
        {"data_request_id": 9999, "customer_records_held": 0, "keyed_order_lines": 0, "keyed_orders": []},
    )
    webhook_event = WebhookEvent.objects.get()
    assert webhook_event.status == "processed"
    assert webhook_event.payload == {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "data_request": {"id": 9999},
        CUSTOMER_KEY_FIELD: customer_key(store_id=store.id, customer_id=191167),  # the id itself is not kept
    }
    dump = _dump_database()
    assert CUSTOMER_EMAIL not in dump
    assert CUSTOMER_PHONE not in dump
    assert "191167" not in dump


def test_the_same_data_request_under_another_event_id_is_reported_once(deliver, store):
    # when
    deliver(topic="customers/data_request", payload=_data_request_payload(), event_id="evt-dr-1")
    deliver(topic="customers/data_request", payload=_data_request_payload(), event_id="evt-dr-2")

    # then
    assert store.events.filter(kind=StoreEvent.Kind.DATA_REQUEST).count() == 1
    assert list(WebhookEvent.objects.order_by("id").values_list("status", flat=True)) == ["processed", "ignored"]


def test_customers_redact_is_acknowledged_with_an_event_and_stores_no_customer_data(deliver, store):
    # when
    response = deliver(topic="customers/redact", payload=_redact_payload(), event_id="evt-redact")
    deliver(topic="customers/redact", payload=_redact_payload(), event_id="evt-redact")

    # then
    assert response.status_code == 200
    webhook_event = WebhookEvent.objects.get()
    event = store.events.get()
    assert (event.kind, event.detail) == (
        StoreEvent.Kind.CUSTOMER_REDACTED,
        {"webhook_event_id": webhook_event.id, "customer_records_deleted": 0, "keyed_order_lines_deleted": True},
    )
    assert webhook_event.status == "processed"
    dump = _dump_database()
    assert CUSTOMER_EMAIL not in dump
    assert CUSTOMER_PHONE not in dump
    assert "191167" not in dump


def test_shop_redact_deletes_everything_held_for_the_shop(deliver, store):
    # given
    other = StoreFactory(domain="other-shop.myshopify.com")
    deliver(topic="products/update", payload={"id": 1}, event_id="evt-product")
    deliver(topic="app/uninstalled", payload={"id": 1}, event_id="evt-uninstall")
    OAuthState.objects.create(nonce="pending-install", shop=SHOP)

    # when
    response = deliver(topic="shop/redact", payload={"shop_id": 954889, "shop_domain": SHOP}, event_id="evt-redact")
    repeat = deliver(topic="shop/redact", payload={"shop_id": 954889, "shop_domain": SHOP}, event_id="evt-redact")

    # then
    assert (response.status_code, repeat.status_code) == (200, 200)
    assert list(Store.objects.all()) == [other]
    assert PlatformCredential.objects.filter(store_id=store.id).count() == 0
    assert StoreEvent.objects.filter(store_id=store.id).count() == 0
    assert OAuthState.objects.filter(shop=SHOP).count() == 0
    redact = WebhookEvent.objects.get()
    assert (redact.topic, redact.status, redact.store) == ("shop/redact", "processed", None)


def test_shop_redact_keeps_a_store_that_was_reinstalled_since(deliver, store):
    # given a store that is active (uninstalled and installed again before the redaction arrived)
    product_event = deliver(topic="products/update", payload={"id": 1}, event_id="evt-product")

    # when
    response = deliver(topic="shop/redact", payload={"shop_id": 954889, "shop_domain": SHOP}, event_id="evt-redact")

    # then nothing is deleted and the skip is on record
    assert (product_event.status_code, response.status_code) == (200, 200)
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE
    assert PlatformCredential.objects.get(store_id=store.id).access_token == "shpat_webhook_access"
    assert WebhookEvent.objects.get(dedup_key__endswith="evt-redact").status == "ignored"
    skipped = StoreEvent.objects.get(store=store, kind=StoreEvent.Kind.SHOP_REDACTED)
    assert skipped.detail["skipped"] is True


def test_shop_redact_for_an_unknown_shop_is_acknowledged_and_ignored(deliver):
    # when
    response = deliver(topic="shop/redact", payload={"shop_id": 1, "shop_domain": SHOP})

    # then
    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == "ignored"


@pytest.mark.parametrize(
    "request_id",
    ["9999'; DROP TABLE merchants_storeevent;--", "%s%s", "ü\u200b" * 100, {"nested": [1, None]}, 2**63 + 1, None],
)
def test_a_data_request_with_an_unusual_id_is_answered_once_and_stored_as_sent(deliver, store, request_id):
    # given: a valid delivery whose data_request id is SQL-looking, a format string, non-ASCII, an object or huge
    payload = {**_data_request_payload(), "data_request": {"id": request_id}}

    # when: delivered twice under two event ids
    first = deliver(topic="customers/data_request", payload=payload, event_id="evt-odd-1")
    second = deliver(topic="customers/data_request", payload=payload, event_id="evt-odd-2")

    # then: one answer (two without an id: nothing links them), holding the id as it came
    assert (first.status_code, second.status_code) == (200, 200)
    answers = list(store.events.filter(kind=StoreEvent.Kind.DATA_REQUEST).values_list("detail", flat=True))
    assert len(answers) == (2 if request_id is None else 1)
    assert answers[0]["data_request_id"] == request_id
    assert answers[0]["keyed_order_lines"] == 0

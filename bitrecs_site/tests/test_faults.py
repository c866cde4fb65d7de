"""Faults of the services behind the app, with real services: a closed port for a broker or database that is down,
a socket that never answers for a database that stalls, the configured Redis and PostgreSQL when they are back.

- a webhook accepted while the broker is down is stored (200) and processed by a real worker once it is back;
- a webhook while the database is down is refused with 503 + Retry-After (platforms retry it), never a 200;
- a widget answer already cached is still served while the database stalls.
(/healthz reporting each dependency is bitrecs_site/tests/test_health.py.)
"""

import socket
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bitrecs_site.celery import app as celery_app
from bitrecs_site.testing.celery_worker import wait_for
from bitrecs_site.testing.fake_woocommerce import build_webhook_delivery, send_delivery
from catalog_sync.tests.factories import ProductFactory
from merchants.models import PlatformCredential, Store, WebhookEvent
from merchants.services.webhooks import redispatch_pending_webhooks
from merchants.tests.factories import StoreFactory
from recommendations.models import RecommendationList, generate_rec_id

SHOP = "faults-demo.myshopify.com"
CLOSED_PORT = 9  # discard: nothing listens on loopback
STALL_PORT = 9231  # in this helper's port range: a listener that never answers
DATABASE_DOWN = {
    "error": "database_unavailable",
    "detail": "The service cannot reach its database for a moment; send the request again later.",
}


def point_broker_at(url: str) -> None:
    celery_app.conf.update(broker_url=url, broker_write_url=url)
    celery_app.close()  # drop the pooled connections to the previous broker


@pytest.fixture
def database_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`move(port)` points the test database connection at a loopback port; `restore()` points it back."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server to take away (DATABASE_URL=postgres://...)")
    original = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    options = dict(connection.settings_dict.get("OPTIONS") or {})

    class Mover:
        def move(self, port: int) -> None:
            connection.close()
            connection.settings_dict.update(HOST="127.0.0.1", PORT=str(port), OPTIONS={**options, "connect_timeout": 1})

        def restore(self) -> None:
            connection.close()
            connection.settings_dict.update(**original, OPTIONS=options)

    mover = Mover()
    yield mover
    mover.restore()


@pytest.fixture
def stalled_listener() -> Iterator[int]:
    """A TCP port whose connections are accepted by the kernel and never answered: a stalled database."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", STALL_PORT))
    listener.listen(16)
    yield STALL_PORT
    listener.close()


# --- The broker is down ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_webhook_accepted_while_the_broker_is_down_is_processed_once_it_is_back(
    client, fake_shopify, celery_worker_process
):
    store = StoreFactory.create(domain=SHOP)
    broker = celery_app.conf.broker_url
    point_broker_at(f"redis://127.0.0.1:{CLOSED_PORT}/0")
    try:
        response = fake_shopify.deliver_webhook(client, topic="app/uninstalled", shop=SHOP, payload={"id": 1})
    finally:
        point_broker_at(broker)

    assert response.status_code == 200  # stored: a platform retrying it would only get "duplicate"
    assert list(WebhookEvent.objects.values_list("topic", "status")) == [("app/uninstalled", "pending")]

    # when the broker is back: a real worker on it, and the beat's sweep hands the stored delivery off
    worker = celery_worker_process()
    assert redispatch_pending_webhooks(received_before=timezone.now() + timedelta(seconds=1)) == 1

    assert wait_for(lambda: WebhookEvent.objects.get().status != WebhookEvent.Status.PENDING, timeout=90), worker
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED
    store.refresh_from_db()
    assert store.status == Store.Status.UNINSTALLED


@pytest.mark.django_db
def test_the_sweep_leaves_deliveries_younger_than_its_cut_off_and_finished_ones_alone():
    for status in ("pending", "processed", "failed"):
        WebhookEvent.objects.create(
            platform="shopify", shop_domain=SHOP, topic="shop/redact", dedup_key=status, status=status
        )

    assert redispatch_pending_webhooks(received_before=timezone.now() - timedelta(minutes=10)) == 0
    assert redispatch_pending_webhooks(received_before=timezone.now() + timedelta(seconds=1)) == 1
    assert WebhookEvent.objects.get(dedup_key="pending").status == WebhookEvent.Status.IGNORED  # shop unknown


# --- The database is down ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_shopify_webhook_while_the_database_is_down_is_503_and_stored_when_retried(client, fake_shopify, database_at):
    database_at.move(CLOSED_PORT)
    refused = fake_shopify.deliver_webhook(client, topic="shop/redact", shop=SHOP, payload={"id": 1}, event_id="e1")
    database_at.restore()
    retried = fake_shopify.deliver_webhook(client, topic="shop/redact", shop=SHOP, payload={"id": 1}, event_id="e1")

    assert (refused.status_code, refused["Retry-After"], refused.json()) == (503, "30", DATABASE_DOWN)
    assert retried.status_code == 200
    assert list(WebhookEvent.objects.values_list("dedup_key", flat=True)) == ["shop/redact:e1"]


@pytest.mark.django_db(transaction=True)
def test_a_woocommerce_webhook_while_the_database_is_down_is_503(client, database_at):
    store = Store.objects.create(
        platform=Store.Platform.WOOCOMMERCE, domain="shop.example", name="shop.example", status=Store.Status.ACTIVE
    )
    PlatformCredential.objects.create(store=store, webhook_secret="whsec-" + "w" * 37)
    delivery = build_webhook_delivery(topic="product.updated", payload={"id": 1}, secret="whsec-" + "w" * 37)

    database_at.move(CLOSED_PORT)
    refused = send_delivery(client, f"/webhooks/woocommerce/{store.site_key}", delivery)
    database_at.restore()

    assert (refused.status_code, refused["Retry-After"], refused.json()) == (503, "30", DATABASE_DOWN)
    assert WebhookEvent.objects.count() == 0


# --- The database stalls -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cached_widget_answer_is_still_served_while_the_database_stalls(
    client, settings, database_at, stalled_listener
):
    settings.RECS_ANSWER_CACHE_SECONDS = 60
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    store = StoreFactory.create(domain="widget.example.com", site_key="sk_faults")
    products = [
        ProductFactory.create(store=store, external_id=f"p{n}", sku=f"SKU-{n}", price=Decimal("10.00"))
        for n in range(4)
    ]
    RecommendationList.objects.create(
        store=store,
        product=products[0],
        query_id="p0",
        placement="product",
        source="local",
        items=[[p.external_id, 0.9, "similar"] for p in products[1:]],
        rec_id=generate_rec_id("local"),
        computed_at=timezone.now(),
    )
    url = "/api/v1/recommendations?site_key=sk_faults&sku=SKU-0&limit=3"
    warm = client.get(url)

    database_at.move(stalled_listener)
    client.raise_request_exception = False  # the uncached request's error is answered by handler500, as in production
    cached = client.get(url)
    uncached = client.get("/api/v1/recommendations?site_key=sk_faults&sku=SKU-1&limit=3")
    database_at.restore()

    assert warm.status_code == 200
    assert [item["sku"] for item in warm.json()["items"]] == ["SKU-1", "SKU-2", "SKU-3"]
    assert (cached.status_code, cached.content) == (200, warm.content)
    assert (uncached.status_code, uncached.json()) == (503, DATABASE_DOWN)

"""Product and order deliveries applied by catalog_sync, from the webhook endpoint through the routed tasks."""

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from bitrecs_site.testing.fake_woocommerce import build_webhook_delivery, send_delivery
from catalog_sync.models import OrderLine, Product, customer_key
from catalog_sync.tests import test_sync_woocommerce
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store, StoreEvent, WebhookEvent
from merchants.tests.factories import StoreFactory
from recommendations.models import PendingListRefresh, RecommendationList
from recommendations.services import rebuild_store_lists

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


# A WooCommerce store connected to the fake over plain http (local mode), as the sync tests use it.
woo_store = test_sync_woocommerce.store


def deliver_woocommerce(client: Any, store: Store, topic: str, payload: Any) -> Any:
    """POST a delivery to the store's webhook endpoint, signed with its consumer secret (WooCommerce's default)."""
    delivery = build_webhook_delivery(topic=topic, payload=payload, secret=store.credential.consumer_secret)
    return send_delivery(client, f"/webhooks/woocommerce/{store.site_key}", delivery)


def test_a_variation_webhook_whose_product_read_fails_with_503_is_retried_and_then_applied(
    client, fake_woocommerce, woo_store, django_capture_on_commit_callbacks
):
    # given a variable product, and a store that answers the next read of it 503 (Retry-After: 7)
    product = fake_woocommerce.add_variable_product(name="Rain jacket", attributes={"Size": ["S", "M"]})
    variation = {**fake_woocommerce.variations[product["id"]][0], "type": "variation", "parent_id": product["id"]}
    fake_woocommerce.fail_next(503, retry_after="7", route="products/*")

    # when the variation's delivery arrives
    with pytest.raises(Retry) as retry, django_capture_on_commit_callbacks(execute=True):
        response = deliver_woocommerce(client, woo_store, "product.updated", variation)

    # then it is acknowledged, and its task is retried after Retry-After with the delivery still pending
    assert response.status_code == 200
    assert retry.value.when == 7.0
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PENDING

    # and the retry (run as the worker would run it) applies it
    retry.value.sig.apply()  # type: ignore[attr-defined]  # celery-types lacks it
    assert fake_woocommerce.route_counts["products/*"] == 2
    event = WebhookEvent.objects.get()
    assert (event.status, event.error) == (WebhookEvent.Status.PROCESSED, "")
    stored = Product.objects.get(store=woo_store, external_id=str(product["id"]))
    assert stored.title == "Rain jacket"
    assert sorted(stored.variants.values_list("external_id", flat=True)) == [
        str(row["id"]) for row in fake_woocommerce.variations[product["id"]]
    ]


def test_a_webhook_whose_platform_stays_unavailable_is_failed_after_its_last_retry(
    client, fake_woocommerce, woo_store, django_capture_on_commit_callbacks
):
    # given a store that answers every read of the product 503, with no Retry-After
    product = fake_woocommerce.add_variable_product(name="Rain jacket", attributes={"Size": ["S"]})
    variation = {**fake_woocommerce.variations[product["id"]][0], "type": "variation", "parent_id": product["id"]}
    fake_woocommerce.fail_next(503, route="products/*", times=100)
    with pytest.raises(Retry) as first, django_capture_on_commit_callbacks(execute=True):
        deliver_woocommerce(client, woo_store, "product.updated", variation)

    # when every retry runs
    countdowns, retry = [first.value.when], first.value
    while True:
        try:
            retry.sig.apply()  # type: ignore[attr-defined]  # celery-types lacks it
        except Retry as again:
            countdowns.append(again.when)
            retry = again
        else:
            break

    # then: eight retries backing off from 5 s (at most 10 minutes), then the outage is recorded
    assert countdowns == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0]
    assert fake_woocommerce.route_counts["products/*"] == 9
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    assert event.error.startswith("PlatformUnavailable: ")
    assert not Product.objects.filter(store=woo_store).exists()


def test_a_products_update_webhook_goes_from_the_endpoint_to_the_refreshed_lists(
    client, fake_shopify, django_capture_on_commit_callbacks
):
    # given a Shopify store with five products and their lists: the kettle 504 sits next to the other kettle
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY, domain="route-demo.myshopify.com")
    titles = ["red wool scarf", "blue wool scarf", "green wool scarf", "steel tea kettle", "copper tea kettle"]
    for n, title in enumerate(titles):
        ProductFactory.create(store=store, external_id=f"50{n}", title=title, price=Decimal("10.00"))
    rebuild_store_lists(store=store)
    assert item_ids(store, "504")[:1] == ["503"]
    kettle_list = RecommendationList.objects.get(store=store, query_id="503", placement="product").rec_id

    # when Shopify says the kettle became a scarf
    body = {
        "id": 504,
        "title": "yellow wool scarf",
        "status": "active",
        "variants": [{"id": 5040, "sku": "V-504", "price": "12.00", "inventory_quantity": 3}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = fake_shopify.deliver_webhook(
            client, topic="products/update", shop=store.domain, payload=body, event_id="evt-504"
        )

    # then the delivery is applied by catalog_sync's task and the lists that show (or should show) it are redone
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.topic, event.status, event.error) == ("products/update", WebhookEvent.Status.PROCESSED, "")
    assert Product.objects.get(store=store, external_id="504").title == "yellow wool scarf"
    assert set(item_ids(store, "504")[:3]) == {"500", "501", "502"}
    assert "504" in item_ids(store, "500")[:3]
    assert RecommendationList.objects.get(store=store, query_id="503", placement="product").rec_id != kettle_list
    assert not PendingListRefresh.objects.exists()


def item_ids(store: Store, query_id: str) -> list[str]:
    return RecommendationList.objects.get(store=store, query_id=query_id, placement="product").item_ids


def test_order_updates_and_deletions_are_applied_and_refunds_acknowledged(
    client, fake_shopify, woo_store, django_capture_on_commit_callbacks
):
    # given a Shopify store with an order of 2, and a WooCommerce store with an order
    shop = StoreFactory.create(platform=Store.Platform.SHOPIFY, domain="orders-demo.myshopify.com")
    order = {
        "id": 77,
        "created_at": "2026-11-20T10:00:00Z",
        "currency": "EUR",
        "line_items": [{"id": 1, "quantity": 2}],
    }

    def deliver_shopify(topic: str, payload: dict, event_id: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fake_shopify.deliver_webhook(
                client, topic=topic, shop=shop.domain, payload=payload, event_id=event_id
            )

    deliver_shopify("orders/create", order, "o1")
    OrderLine.objects.create(store=woo_store, order_id="900", line_id="1", quantity=1, created_at=timezone.now())

    # when the order is paid with a changed quantity, refunded, and the WooCommerce order deleted
    deliver_shopify("orders/paid", {**order, "line_items": [{"id": 1, "quantity": 3}]}, "o2")
    deliver_shopify("refunds/create", {"id": 5, "order_id": 77, "refund_line_items": []}, "o3")
    with django_capture_on_commit_callbacks(execute=True):
        deliver_woocommerce(client, woo_store, "order.deleted", {"id": 900})

    # then
    assert list(OrderLine.objects.filter(store=shop).values_list("order_id", "quantity")) == [("77", 3)]
    assert not OrderLine.objects.filter(store=woo_store).exists()
    assert list(WebhookEvent.objects.order_by("id").values_list("topic", "status")) == [
        ("orders/create", "processed"),
        ("orders/paid", "processed"),
        ("refunds/create", "ignored"),
        ("order.deleted", "processed"),
    ]


def test_order_lines_carry_the_customers_key_and_customers_redact_deletes_them(
    client, fake_shopify, woo_store, django_capture_on_commit_callbacks
):
    # given a Shopify store where one customer ordered twice, another once, and a guest once; and a WooCommerce
    # order by the first customer's id (another store: another key)
    shop = StoreFactory.create(platform=Store.Platform.SHOPIFY, domain="redact-demo.myshopify.com")
    jane = {"id": 48151623, "email": "jane.private@example.com", "phone": "+15555550188", "first_name": "Jane"}
    other = {"id": 42424242, "email": "other.private@example.com"}

    def order(number: int, customer: dict | None) -> dict:
        body = {"id": number, "created_at": "2026-11-20T10:00:00Z", "currency": "EUR"}
        body["line_items"] = [{"id": number * 10, "quantity": 1, "product_id": 500 + number}]
        return {**body, "customer": customer, "email": customer["email"] if customer else None}

    def deliver_shopify(topic: str, payload: dict, event_id: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fake_shopify.deliver_webhook(
                client, topic=topic, shop=shop.domain, payload=payload, event_id=event_id
            )

    for number, customer in [(1, jane), (2, jane), (3, other), (4, None)]:
        deliver_shopify("orders/create", order(number, customer), f"order-{number}")
    woo_order = {
        "id": 900,
        "status": "processing",
        "currency": "EUR",
        "date_created_gmt": "2026-11-20T10:00:00",
        "customer_id": 48151623,
        "billing": {"email": "jane.private@example.com"},
        "line_items": [{"id": 1, "product_id": 7, "quantity": 1, "price": 5.0}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        deliver_woocommerce(client, woo_store, "order.created", woo_order)

    # then each line carries its store's key for its customer, never the id or the email
    jane_key = customer_key(store_id=shop.id, customer_id="48151623")
    keys = dict(OrderLine.objects.filter(store=shop).values_list("order_id", "customer_key"))
    assert keys == {"1": jane_key, "2": jane_key, "3": customer_key(store_id=shop.id, customer_id="42424242"), "4": ""}
    assert OrderLine.objects.get(store=woo_store).customer_key == customer_key(
        store_id=woo_store.id, customer_id="48151623"
    )
    assert OrderLine.objects.get(store=woo_store).customer_key != jane_key

    # when Shopify asks for the first customer's data, then for a customer the store never saw
    request = {"shop_id": 1, "shop_domain": shop.domain, "customer": jane, "data_request": {"id": 77}}
    assert deliver_shopify("customers/data_request", request, "request-1").status_code == 200
    stranger = {**request, "customer": {"id": 5, "email": "s@example.com"}, "data_request": {"id": 78}}
    deliver_shopify("customers/data_request", stranger, "request-2")

    # then the answers count what each key links in this store: her two orders here, not the WooCommerce one
    reports = {
        event.detail["data_request_id"]: event.detail
        for event in StoreEvent.objects.filter(store=shop, kind=StoreEvent.Kind.DATA_REQUEST)
    }
    assert reports == {
        77: {"data_request_id": 77, "customer_records_held": 0, "keyed_order_lines": 2, "keyed_orders": ["1", "2"]},
        78: {"data_request_id": 78, "customer_records_held": 0, "keyed_order_lines": 0, "keyed_orders": []},
    }

    # when Shopify asks for the first customer's data to be erased
    redact = {"shop_id": 1, "shop_domain": shop.domain, "customer": jane, "orders_to_redact": [1, 2]}
    response = deliver_shopify("customers/redact", redact, "redact-1")

    # then the lines her key linked are gone, the rest stay, and nothing held names her
    assert response.status_code == 200
    assert sorted(OrderLine.objects.filter(store=shop).values_list("order_id", flat=True)) == ["3", "4"]
    assert OrderLine.objects.filter(store=woo_store).count() == 1  # another store's key: not hers there
    assert WebhookEvent.objects.get(topic="customers/redact").status == WebhookEvent.Status.PROCESSED
    dump = _dump_database()
    for private in ("48151623", "42424242", "jane.private@example.com", "other.private@example.com", "+15555550188"):
        assert private not in dump


def _dump_database() -> str:
    out = StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()

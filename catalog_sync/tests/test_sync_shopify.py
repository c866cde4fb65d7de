"""Shopify catalog and order sync through the tasks, against the local fake Admin API."""

from datetime import timedelta
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from bitrecs_site.testing.fake_shopify_admin import FakeShopifyAdmin, make_order, make_product
from catalog_sync.models import OrderLine, Product, SyncRun, Variant, customer_key
from catalog_sync.services.sync import begin_store_sync, run_sync_step
from catalog_sync.tasks import sync_step_task, sync_store_task
from catalog_sync.tests.factories import ProductFactory
from merchants.models import PlatformCredential, Store, StoreEvent, WebhookEvent
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db

SHOP = "sync-shop.myshopify.com"


@pytest.fixture
def store(fake_shopify_admin: FakeShopifyAdmin) -> Store:
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY, domain=SHOP)
    PlatformCredentialFactory.create(
        store=store,
        access_token=fake_shopify_admin.access_token,
        access_token_expires_at=timezone.now() + timedelta(hours=1),
        refresh_token="shprt_unused",
        refresh_token_expires_at=timezone.now() + timedelta(days=30),
    )
    return store


def _catalog(count: int, *, variants: int = 2) -> list[dict]:
    return [
        make_product(
            number,
            title=f"Headphones model {number}",
            vendor="Sonic",
            category="Electronics > Audio > Headphones",
            tags=["audio", "wireless"],
            description_html=f"<p>Model <b>{number}</b> &amp; case</p>",
            price="49.90",
            variants=variants,
        )
        for number in range(1, count + 1)
    ]


def _latest_run(store: Store) -> SyncRun:
    return SyncRun.objects.filter(store=store).latest("id")


def test_full_paged_sync_lands_every_product_variant_and_recent_order_line(fake_shopify_admin, store):
    # given 120 products (three pages of 50) and two recent orders
    fake_shopify_admin.products = _catalog(120)
    recent = (timezone.now() - timedelta(days=2)).isoformat()
    fake_shopify_admin.orders = [
        make_order(1, lines=[(fake_shopify_admin.products[0], 2)], created_at=recent, rec_id="rec-abc"),
        make_order(
            2, lines=[(fake_shopify_admin.products[1], 1), (fake_shopify_admin.products[2], 1)], created_at=recent
        ),
    ]

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.kind, run.status, run.error) == (SyncRun.Kind.FULL, SyncRun.Status.SUCCEEDED, "")
    assert (run.seen, run.created, run.updated, run.deleted, run.failed) == (120, 120, 0, 0, 0)
    assert (run.total, run.done, run.detail["mode"], run.detail["order_lines"]) == (120, 120, "paged", 3)
    assert Product.objects.filter(store=store).count() == 120
    assert Variant.objects.filter(product__store=store).count() == 240
    product = Product.objects.get(store=store, external_id="7")
    assert (product.title, product.description, product.vendor) == ("Headphones model 7", "Model 7 & case", "Sonic")
    assert (product.category_path, product.tags, product.price) == (
        "Electronics > Audio > Headphones",
        ["audio", "wireless"],
        Decimal("49.90"),
    )
    lines = OrderLine.objects.filter(store=store).order_by("line_id")
    assert [(line.product_external_id, line.quantity, line.rec_id) for line in lines] == [
        ("1", 2, "rec-abc"),
        ("2", 1, ""),
        ("3", 1, ""),
    ]
    assert lines[0].product == Product.objects.get(store=store, external_id="1")


def test_a_second_full_sync_updates_in_place_and_deletes_products_gone_from_the_shop(fake_shopify_admin, store):
    # given a synced catalog, then one product deleted on Shopify and one renamed
    fake_shopify_admin.products = _catalog(5)
    sync_store_task(store.id)
    fake_shopify_admin.products = [p for p in fake_shopify_admin.products if p["legacyResourceId"] != "3"]
    fake_shopify_admin.products[0]["title"] = "Renamed headphones"

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.status, run.created, run.updated, run.deleted) == (SyncRun.Status.SUCCEEDED, 0, 4, 1)
    assert sorted(Product.objects.filter(store=store).values_list("external_id", flat=True)) == ["1", "2", "4", "5"]
    assert Product.objects.get(store=store, external_id="1").title == "Renamed headphones"


def test_a_big_catalog_is_read_with_a_bulk_operation(fake_shopify_admin, store, settings):
    # given a catalog above the bulk threshold
    settings.SHOPIFY_BULK_THRESHOLD = 20
    fake_shopify_admin.products = _catalog(45, variants=3)

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.status, run.detail["mode"], run.total, run.seen, run.created) == (
        SyncRun.Status.SUCCEEDED,
        "bulk",
        45,
        45,
        45,
    )
    assert Variant.objects.filter(product__store=store).count() == 135
    assert any("bulk_download" in request for request in fake_shopify_admin.requests)


def test_a_truncated_bulk_file_lands_the_good_products_and_keeps_the_rest(fake_shopify_admin, store, settings):
    # given a stored product that the cut-off part of the file would have updated
    settings.SHOPIFY_BULK_THRESHOLD = 1
    fake_shopify_admin.products = _catalog(10)
    ProductFactory.create(store=store, external_id="9999999", title="Kept as it was")
    fake_shopify_admin.truncate_bulk = True

    # when
    sync_store_task(store.id)

    # then the run is partial, names the broken record, and deletes nothing
    run = _latest_run(store)
    assert run.status == SyncRun.Status.PARTIAL
    assert run.failed >= 1 and run.errors[0]["reason"]
    assert "deletions_skipped" in run.detail
    assert Product.objects.get(store=store, external_id="9999999").title == "Kept as it was"
    assert Product.objects.filter(store=store).exclude(external_id="9999999").count() == run.seen


def test_a_catch_up_sync_asks_only_for_products_updated_since_the_last_sync(fake_shopify_admin, store):
    # given a completed full sync
    fake_shopify_admin.products = _catalog(3)
    sync_store_task(store.id)
    full = _latest_run(store)
    fake_shopify_admin.requests.clear()

    # when
    sync_store_task(store.id, SyncRun.Kind.CATCH_UP)

    # then
    run = _latest_run(store)
    assert (run.kind, run.status) == (SyncRun.Kind.CATCH_UP, SyncRun.Status.SUCCEEDED)
    since = full.started_at - timedelta(minutes=5)
    assert run.detail["since"] == since.isoformat()
    product_queries = [r["body"].decode() for r in fake_shopify_admin.requests if b"products(" in r.get("body", b"")]
    assert product_queries and all("updated_at:>" in query for query in product_queries)
    assert Product.objects.filter(store=store).count() == 3  # a catch-up never deletes


def test_a_revoked_token_marks_the_store_for_reauthorisation_and_stops_the_sync(fake_shopify_admin, store):
    # given Shopify refuses the token
    fake_shopify_admin.access_token = "shpat_rotated_elsewhere"

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    store.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "refused our credentials" in run.error and "re-authorise" in run.error
    assert store.status == Store.Status.NEEDS_REAUTH
    assert StoreEvent.objects.filter(store=store, kind=StoreEvent.Kind.REAUTH_REQUIRED).count() == 1
    # and no further sync starts for it
    sync_store_task(store.id)
    assert SyncRun.objects.filter(store=store).count() == 1


def test_a_sync_whose_token_cannot_be_refreshed_fails_and_asks_for_reauthorisation(fake_shopify_admin, store):
    # given an access token that has expired, and a refresh token past its expiry too
    expired = timezone.now() - timedelta(minutes=1)
    PlatformCredential.objects.filter(store=store).update(
        access_token_expires_at=expired, refresh_token_expires_at=expired
    )

    # when
    sync_store_task(store.id)

    # then the run fails saying what the merchant must do, and the store waits for re-authorisation
    run = _latest_run(store)
    assert (run.status, run.error) == (
        SyncRun.Status.FAILED,
        f"{SHOP}: The refresh token is missing or expired. The merchant must open the app again. "
        "The merchant must re-authorise the app.",
    )
    store.refresh_from_db()
    assert store.status == Store.Status.NEEDS_REAUTH
    event = StoreEvent.objects.get(store=store, kind=StoreEvent.Kind.REAUTH_REQUIRED)
    assert event.detail == {"reason": "The refresh token is missing or expired."}


@pytest.mark.parametrize(("fault", "countdown"), [(429, 1.0), (500, 5.0)])
def test_429_and_5xx_answers_retry_the_same_step_after_retry_after(fake_shopify_admin, store, fault, countdown):
    # given the first call is refused
    fake_shopify_admin.products = _catalog(3)
    fake_shopify_admin.faults = [fault]

    # when
    with pytest.raises(Retry) as retry:
        sync_store_task(store.id)

    # then the step is retried after Retry-After (429) or a back-off (5xx), without moving the run on
    assert retry.value.when == countdown
    run = _latest_run(store)
    assert (run.status, run.detail["phase"], run.seen) == (SyncRun.Status.RUNNING, "start", 0)

    # and the retried step completes the sync
    sync_step_task(run.id, "start", "")
    run.refresh_from_db()
    assert (run.status, run.seen) == (SyncRun.Status.SUCCEEDED, 3)


def test_a_malformed_product_is_recorded_and_does_not_corrupt_the_stored_one(fake_shopify_admin, store):
    # given a stored product 2, and Shopify now sends product 2 without a title
    fake_shopify_admin.products = _catalog(3)
    sync_store_task(store.id)
    fake_shopify_admin.products[1]["title"] = None

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.status, run.failed, run.seen) == (SyncRun.Status.PARTIAL, 1, 2)
    assert run.errors == [{"id": "2", "reason": run.errors[0]["reason"]}]
    assert "title" in run.errors[0]["reason"]
    assert Product.objects.get(store=store, external_id="2").title == "Headphones model 2"


def test_a_redelivered_step_is_applied_once(fake_shopify_admin, store):
    # given a run past its start step, with the first products page applied
    fake_shopify_admin.products = _catalog(60)
    step = begin_store_sync(store=store)
    assert step is not None
    products_step = run_sync_step(run_id=step.run_id, phase=step.phase, cursor=step.cursor)
    assert products_step is not None
    next_step = run_sync_step(run_id=products_step.run_id, phase=products_step.phase, cursor=products_step.cursor)
    assert next_step is not None and next_step.phase == "products"

    # when the same products step is delivered again
    again = run_sync_step(run_id=products_step.run_id, phase=products_step.phase, cursor=products_step.cursor)

    # then it does nothing
    run = SyncRun.objects.get(id=step.run_id)
    assert again is None
    assert (run.seen, run.created, run.cursor) == (
        35,
        35,
        next_step.cursor,
    )  # 35 a page keeps the query under 1,000 points


def test_only_one_sync_runs_per_store(fake_shopify_admin, store):
    first = begin_store_sync(store=store)
    second = begin_store_sync(store=store)

    assert first is not None
    assert second is None
    assert SyncRun.objects.filter(store=store, status=SyncRun.Status.RUNNING).count() == 1


# --- Webhooks ----------------------------------------------------------------------------------------


def _rest_product(product_id: int, title: str) -> dict:
    return {
        "id": product_id,
        "title": title,
        "body_html": "<p>Soft &amp; warm</p>",
        "vendor": "Woolly",
        "product_type": "Scarves",
        "handle": "wool-scarf",
        "tags": "winter, wool",
        "status": "active",
        "published_at": "2026-11-01T10:00:00-05:00",
        "updated_at": "2026-11-20T10:00:00-05:00",
        "variants": [
            {
                "id": 11,
                "sku": "SCARF-RED",
                "title": "Red",
                "price": "25.00",
                "compare_at_price": "30.00",
                "option1": "Red",
                "inventory_quantity": 4,
                "inventory_policy": "deny",
                "position": 1,
            },
            {
                "id": 12,
                "sku": "SCARF-BLUE",
                "title": "Blue",
                "price": "24.00",
                "compare_at_price": None,
                "option1": "Blue",
                "inventory_quantity": 0,
                "inventory_policy": "deny",
                "position": 2,
            },
        ],
        "options": [{"name": "Color", "values": ["Red", "Blue"]}],
        "image": {"src": "https://cdn.example.com/scarf.jpg"},
    }


def test_product_webhooks_create_update_and_delete_incrementally(
    client, fake_shopify, store, django_capture_on_commit_callbacks
):
    def deliver(topic: str, payload: dict, event_id: str):
        with django_capture_on_commit_callbacks(execute=True):
            return fake_shopify.deliver_webhook(client, topic=topic, shop=SHOP, payload=payload, event_id=event_id)

    # when created, then updated
    assert deliver("products/create", _rest_product(501, "Wool scarf"), "e1").status_code == 200
    assert deliver("products/update", _rest_product(501, "Wool scarf, long"), "e2").status_code == 200

    # then
    product = Product.objects.get(store=store, external_id="501")
    assert (product.title, product.description, product.tags) == ("Wool scarf, long", "Soft & warm", ["winter", "wool"])
    assert (product.price, product.in_stock, product.inventory) == (Decimal("24.00"), True, 4)
    assert list(product.variants.values_list("sku", "in_stock")) == [("SCARF-RED", True), ("SCARF-BLUE", False)]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}

    # when deleted
    assert deliver("products/delete", {"id": 501}, "e3").status_code == 200
    assert not Product.objects.filter(store=store, external_id="501").exists()


def test_an_order_webhook_records_lines_with_the_rec_id_and_no_customer_data(
    client, fake_shopify, store, django_capture_on_commit_callbacks
):
    order = {
        "id": 820982911946154508,
        "created_at": "2026-11-20T10:00:00-05:00",
        "currency": "EUR",
        "email": "shopper.private@example.com",
        "customer": {"id": 1, "email": "shopper.private@example.com", "first_name": "Ann"},
        "billing_address": {"address1": "1 Private Road"},
        "line_items": [
            {
                "id": 1,
                "product_id": 501,
                "variant_id": 11,
                "sku": "SCARF-RED",
                "quantity": 2,
                "price": "25.00",
                "properties": [{"name": "_bitrecs_rec_id", "value": "rec-xyz"}],
            },
        ],
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = fake_shopify.deliver_webhook(client, topic="orders/create", shop=SHOP, payload=order, event_id="o1")

    assert response.status_code == 200
    line = OrderLine.objects.get(store=store)
    assert (line.order_id, line.line_id, line.quantity, line.price, line.currency, line.rec_id) == (
        "820982911946154508",
        "1",
        2,
        Decimal("25.00"),
        "EUR",
        "rec-xyz",
    )
    assert "shopper.private" not in str(WebhookEvent.objects.get().payload)


def test_a_malformed_product_webhook_is_recorded_as_failed_and_changes_nothing(
    client, fake_shopify, store, django_capture_on_commit_callbacks
):
    ProductFactory.create(store=store, external_id="501", title="Untouched")

    with django_capture_on_commit_callbacks(execute=True):
        response = fake_shopify.deliver_webhook(
            client, topic="products/update", shop=SHOP, payload={"id": 501, "title": ""}, event_id="bad"
        )

    assert response.status_code == 200  # acknowledged: Shopify must not retry a payload that will never apply
    event = WebhookEvent.objects.get()
    assert (event.status, event.error) == ("failed", "ValueError: product 501: missing title")
    assert Product.objects.get(store=store, external_id="501").title == "Untouched"


def _currency_queries(fake: FakeShopifyAdmin) -> int:
    return sum(1 for call in fake.requests if b"BitrecsShop" in call["body"])


def test_paged_steps_keep_the_shop_currency_and_cost_bucket_between_steps(fake_shopify_admin, store):
    # given three pages of products (35 a page) and a bucket that never runs short
    fake_shopify_admin.products = _catalog(80, variants=1)
    fake_shopify_admin.set_bucket(10_000, 1_000)
    step = begin_store_sync(store=store)

    # when: the start and the three product pages run as separate steps (separate clients)
    steps = []
    while step is not None and step.phase in ("start", "products"):
        step = run_sync_step(run_id=step.run_id, phase=step.phase, cursor=step.cursor)
        steps.append(step)

    # then: the currency was asked once, by the start, and no page had to wait for the bucket
    assert [(s.phase, s.cursor) for s in steps if s is not None][-1] == ("orders", "")
    assert Product.objects.filter(store=store, currency="USD").count() == 80
    assert _currency_queries(fake_shopify_admin) == 1
    assert all(s.countdown == 0.0 for s in steps if s is not None)


def test_a_page_that_leaves_the_bucket_short_schedules_the_next_page_by_countdown(fake_shopify_admin, store):
    # given two pages, and a bucket of 400 points refilled at 10 a second: a page (2 + 35 x 11 = 387 points) after
    # the start's currency and count queries (1 point each) leaves about 11
    fake_shopify_admin.products = _catalog(36, variants=1)
    fake_shopify_admin.set_bucket(400, 10)
    step = begin_store_sync(store=store)
    assert step is not None
    start = run_sync_step(run_id=step.run_id, phase="start", cursor="")
    assert start is not None

    # when
    first = run_sync_step(run_id=start.run_id, phase="products", cursor="")

    # then: the next page waits in the queue, (387 - 11 + 1) / 10 s less what refilled meanwhile, not in a worker
    assert first is not None
    assert (first.phase, first.cursor) == ("products", "cursor:35")
    assert 30.0 < first.countdown <= 37.7
    assert fake_shopify_admin.throttled_answers == 0


def test_the_order_sync_keys_each_line_to_its_customer_never_storing_the_id(fake_shopify_admin, store):
    # given two recent orders by customer 1 (gid://shopify/Customer/1), one by a guest, and a line already stored
    fake_shopify_admin.products = _catalog(2)
    recent = (timezone.now() - timedelta(days=1)).isoformat()
    first, second = fake_shopify_admin.products
    guest = make_order(3, lines=[(second, 1)], created_at=recent)
    guest["customer"] = None
    again = make_order(2, lines=[(second, 1)], created_at=recent)
    again["customer"] = {"id": "gid://shopify/Customer/1", "email": "buyer1@example.com"}
    fake_shopify_admin.orders = [make_order(1, lines=[(first, 1)], created_at=recent), again, guest]
    OrderLine.objects.create(store=store, order_id="1", line_id="101", created_at=timezone.now())

    # when
    sync_store_task(store.id)

    # then: the key is the one the webhook intake gives the same customer (REST id 1), per store
    key = customer_key(store_id=store.id, customer_id="1")
    assert dict(OrderLine.objects.filter(store=store).values_list("order_id", "customer_key")) == {
        "1": key,
        "2": key,
        "3": "",
    }
    assert key != customer_key(store_id=store.id + 1, customer_id="1")


def test_a_shop_that_denies_the_customer_id_still_syncs_its_orders_unkeyed(fake_shopify_admin, store):
    # given an app without access to the orders' customers (scope or protected customer data)
    fake_shopify_admin.products = _catalog(1)
    recent = (timezone.now() - timedelta(days=1)).isoformat()
    fake_shopify_admin.orders = [
        make_order(n, lines=[(fake_shopify_admin.products[0], 1)], created_at=recent) for n in (1, 2)
    ]
    fake_shopify_admin.customers_readable = False

    # when
    sync_store_task(store.id)

    # then the lines land without a key, the store needs no re-authorisation, and the denied query was asked once
    run = _latest_run(store)
    assert (run.status, run.error, run.detail["order_lines"]) == (SyncRun.Status.SUCCEEDED, "", 2)
    assert list(OrderLine.objects.filter(store=store).values_list("customer_key", flat=True)) == ["", ""]
    assert Store.objects.get(id=store.id).status == Store.Status.ACTIVE
    assert sum(1 for call in fake_shopify_admin.requests if b"BitrecsOrders(" in call["body"]) == 1
    assert sum(1 for call in fake_shopify_admin.requests if b"BitrecsOrdersAnonymous" in call["body"]) == 1

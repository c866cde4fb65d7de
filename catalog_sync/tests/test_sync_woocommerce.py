"""WooCommerce catalog and order sync through the tasks and the command, against the local fake store."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone

from bitrecs_site.testing.fake_woocommerce import FakeWooCommerce
from catalog_sync.models import OrderLine, Product, SyncRun, Variant, customer_key
from catalog_sync.tasks import sync_store_task
from merchants.models import Store, WooCommerceInstall
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


@pytest.fixture
def store(fake_woocommerce: FakeWooCommerce) -> Store:
    key = fake_woocommerce.issue_key()
    store = StoreFactory.create(
        platform=Store.Platform.WOOCOMMERCE,
        domain=fake_woocommerce.base_url.removeprefix("http://"),
        site_key="woo-shop",
    )
    PlatformCredentialFactory.create(
        store=store, access_token="", consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )
    # Connected over plain http (local mode): the completed install records the URL with its scheme.
    WooCommerceInstall.objects.create(
        user_id="install-1", store_url=fake_woocommerce.base_url, completed_at=timezone.now(), store=store
    )
    return store


def _latest_run(store: Store) -> SyncRun:
    return SyncRun.objects.filter(store=store).latest("id")


def test_the_steps_of_a_sync_reuse_one_kept_alive_connection(fake_woocommerce, store):
    # given two pages of products, one of them variable (its variations are read one call after its page)
    fake_woocommerce.load_catalog(simple=100, variable=1)

    # when: every step runs in this process (eager tasks)
    sync_store_task(store.id)

    # then: currency, categories, two product pages, the variations and the orders over one connection
    run = _latest_run(store)
    assert (run.status, run.seen) == (SyncRun.Status.SUCCEEDED, 101)
    assert fake_woocommerce.request_count("*") == 6
    assert fake_woocommerce.connections == 1


def test_full_sync_lands_simple_and_variable_products_with_variations_and_recent_orders(fake_woocommerce, store):
    # given 7 simple and 3 variable products, and orders: one recent with a rec id, one too old, one cancelled
    made = fake_woocommerce.load_catalog(simple=7, variable=3)
    recent = datetime.now(tz=UTC) - timedelta(days=3)
    fake_woocommerce.add_order(lines=[{"product": made[0], "quantity": 2, "rec_id": "rec-1"}], created_at=recent)
    fake_woocommerce.add_order(lines=[{"product": made[1], "quantity": 1}], created_at=recent - timedelta(days=90))
    fake_woocommerce.add_order(lines=[{"product": made[2], "quantity": 1}], created_at=recent, status="cancelled")

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.status, run.error, run.seen, run.created, run.failed, run.total) == (
        SyncRun.Status.SUCCEEDED,
        "",
        10,
        10,
        0,
        10,
    )
    assert Product.objects.filter(store=store).count() == 10
    variable = Product.objects.get(store=store, external_id=str(made[-1]["id"]))
    assert variable.variants.count() == len(made[-1]["variations"])
    assert variable.category_path.startswith("Clothing > ")
    lines = list(OrderLine.objects.filter(store=store).values_list("product_external_id", "quantity", "rec_id"))
    assert lines == [(str(made[0]["id"]), 2, "rec-1")]
    assert run.detail["order_lines"] == 1


def test_catch_up_reads_only_products_modified_since_the_last_sync(fake_woocommerce, store):
    # given a synced catalog, then one product changed on the store
    made = fake_woocommerce.load_catalog(simple=4, variable=1)
    sync_store_task(store.id)
    fake_woocommerce.update_product(made[1]["id"], name="Renamed tee", modified_at=datetime.now(tz=UTC))
    fake_woocommerce.requests.clear()

    # when
    sync_store_task(store.id, SyncRun.Kind.CATCH_UP)

    # then
    run = _latest_run(store)
    assert (run.kind, run.status, run.seen, run.updated) == (SyncRun.Kind.CATCH_UP, SyncRun.Status.SUCCEEDED, 1, 1)
    product_calls = [r for r in fake_woocommerce.requests if r.path.endswith("/products")]
    assert product_calls and all("modified_after" in call.query for call in product_calls)
    assert Product.objects.get(store=store, external_id=str(made[1]["id"])).title == "Renamed tee"


def test_revoked_keys_mark_the_store_for_reauthorisation(fake_woocommerce, store):
    # given the merchant revoked our key
    fake_woocommerce.load_catalog(simple=2, variable=0)
    credential = store.credential
    credential.consumer_secret = "cs_" + "0" * 40
    credential.save()

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    store.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "refused our credentials" in run.error
    assert store.status == Store.Status.NEEDS_REAUTH


def test_a_bad_product_is_recorded_and_the_good_ones_land(fake_woocommerce, store):
    # given a page with a product whose price is not a number
    fake_woocommerce.load_catalog(simple=3, variable=0)
    fake_woocommerce.add_raw_product({"id": 9001, "name": "Broken", "type": "simple", "price": "abc"})

    # when
    sync_store_task(store.id)

    # then
    run = _latest_run(store)
    assert (run.status, run.seen, run.failed) == (SyncRun.Status.PARTIAL, 3, 1)
    assert run.errors[0]["id"] == "9001"
    assert not Product.objects.filter(store=store, external_id="9001").exists()


def test_sync_catalog_now_runs_in_process_and_prints_the_outcome(fake_woocommerce, store):
    fake_woocommerce.load_catalog(simple=3, variable=2)
    out = StringIO()

    call_command("sync_catalog", "--store", "woo-shop", "--now", stdout=out)

    run = _latest_run(store)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert out.getvalue().startswith(f"Sync run {run.id} succeeded: 5 products seen, 5 created, 0 updated, 0 deleted")
    assert Variant.objects.filter(product__store=store).count() > 0


def test_sync_catalog_queues_by_default(fake_woocommerce, store, django_capture_on_commit_callbacks):
    fake_woocommerce.load_catalog(simple=1, variable=0)
    out = StringIO()

    call_command("sync_catalog", "--store", "woo-shop", stdout=out)

    assert out.getvalue().strip() == f"Queued a full sync of {store.domain}; the workers will run it."
    assert _latest_run(store).status == SyncRun.Status.SUCCEEDED  # the eager test worker ran it


@pytest.mark.parametrize(
    ("site_key", "message"),
    [("nope", "No store has the site key 'nope'."), ("custom-one", "its catalog comes from import_catalog")],
)
def test_sync_catalog_refuses_unknown_and_custom_stores(site_key, message):
    StoreFactory.create(platform=Store.Platform.CUSTOM, domain="custom.example", site_key="custom-one")

    with pytest.raises(CommandError, match=message):
        call_command("sync_catalog", "--store", site_key, "--now")


def test_an_inactive_store_does_not_sync(fake_woocommerce, store):
    store.status = Store.Status.UNINSTALLED
    store.save()

    with pytest.raises(CommandError, match="uninstalled"):
        call_command("sync_catalog", "--store", "woo-shop", "--now")
    sync_store_task(store.id)
    assert not SyncRun.objects.filter(store=store).exists()


def test_the_order_sync_keys_each_line_to_its_customer_and_leaves_guests_unkeyed(fake_woocommerce, store):
    # given a recent order by customer 12 (the fake's shopper) and one by a guest (customer_id 0)
    made = fake_woocommerce.load_catalog(simple=2, variable=0)
    recent = datetime.now(tz=UTC) - timedelta(days=1)
    shopper = fake_woocommerce.add_order(lines=[{"product": made[0], "quantity": 1}], created_at=recent)
    guest = fake_woocommerce.add_order(lines=[{"product": made[1], "quantity": 1}], created_at=recent, customer_id=0)

    # when
    sync_store_task(store.id)

    # then
    assert dict(OrderLine.objects.filter(store=store).values_list("order_id", "customer_key")) == {
        str(shopper["id"]): customer_key(store_id=store.id, customer_id="12"),
        str(guest["id"]): "",
    }

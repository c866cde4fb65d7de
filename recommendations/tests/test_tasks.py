"""The recommendation tasks, and the entry points that enqueue them (end of a sync, a product webhook)."""

from decimal import Decimal
from typing import Any

import pytest

from catalog_sync.models import Product, SyncRun
from catalog_sync.tasks import sync_step_task
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store, WebhookEvent
from merchants.tasks import process_webhook_event_task
from merchants.tests.factories import StoreFactory
from recommendations.models import PendingListRefresh, RecommendationList
from recommendations.services import rebuild_store_lists
from recommendations.tasks import rebuild_store_task, refresh_products_task

pytestmark = pytest.mark.django_db

TITLES = ["red wool scarf", "blue wool scarf", "green wool scarf", "steel tea kettle", "copper tea kettle"]


def make_catalog(store: Store) -> list[Product]:
    return [
        ProductFactory.create(store=store, external_id=f"50{n}", sku=f"SKU-{n}", title=title, price=Decimal("10.00"))
        for n, title in enumerate(TITLES)
    ]


def lists_of(store: Store, placement: str) -> list[str]:
    rows = RecommendationList.objects.filter(store=store, placement=placement, source="local")
    return sorted(rows.values_list("query_id", flat=True))


def item_ids(store: Store, query_id: str) -> list[str]:
    return RecommendationList.objects.get(store=store, query_id=query_id, placement="product").item_ids


def shopify_product(product_id: int, title: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "title": title,
        "status": "active",
        "variants": [{"id": product_id * 10, "sku": f"V-{product_id}", "price": "12.00", "inventory_quantity": 3}],
    }


def test_rebuild_task_writes_lists_for_every_product() -> None:
    store = StoreFactory.create()
    make_catalog(store)

    rebuild_store_task.delay(store.id)

    assert lists_of(store, "product") == ["500", "501", "502", "503", "504"]
    assert lists_of(store, "cart") == ["500", "501", "502", "503", "504"]
    assert lists_of(store, "home") == [""]


def test_rebuild_task_for_a_deleted_store_does_nothing() -> None:
    rebuild_store_task.delay(987654)

    assert not RecommendationList.objects.exists()


@pytest.mark.parametrize(("failed", "rebuilt"), [(0, True), (2, True)])
def test_a_sync_that_finishes_rebuilds_the_stores_lists(failed: int, rebuilt: bool) -> None:
    # given a catch-up sync at its last step (succeeded, or partial with failed records)
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    make_catalog(store)
    run = SyncRun.objects.create(store=store, kind=SyncRun.Kind.CATCH_UP, detail={"phase": "finish"}, failed=failed)

    # when
    sync_step_task.delay(run.id, "finish", "")

    # then
    run.refresh_from_db()
    assert run.status == (SyncRun.Status.PARTIAL if failed else SyncRun.Status.SUCCEEDED)
    assert (lists_of(store, "product") == ["500", "501", "502", "503", "504"]) is rebuilt


def test_a_sync_that_fails_does_not_rebuild() -> None:
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY, status=Store.Status.UNINSTALLED)
    make_catalog(store)
    run = SyncRun.objects.create(store=store, kind=SyncRun.Kind.CATCH_UP, detail={"phase": "finish"})

    sync_step_task.delay(run.id, "finish", "")

    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert not RecommendationList.objects.filter(store=store).exists()


def test_a_product_update_webhook_refreshes_the_affected_lists(django_capture_on_commit_callbacks: Any) -> None:
    # given
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    make_catalog(store)
    rebuild_store_lists(store=store)
    assert set(item_ids(store, "504")[:1]) == {"503"}
    kettle_list = RecommendationList.objects.get(store=store, query_id="503", placement="product").rec_id
    event = WebhookEvent.objects.create(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=store.domain,
        topic="products/update",
        dedup_key="e1",
        payload=shopify_product(504, "yellow wool scarf"),
    )

    # when the kettle becomes a scarf
    with django_capture_on_commit_callbacks(execute=True):
        process_webhook_event_task.delay(event.id)

    # then
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert set(item_ids(store, "504")[:3]) == {"500", "501", "502"}
    assert "504" in item_ids(store, "500")[:3]
    # the other kettle's list, which showed it, was recomputed too
    assert RecommendationList.objects.get(store=store, query_id="503", placement="product").rec_id != kettle_list
    assert not PendingListRefresh.objects.exists()


def test_a_product_delete_webhook_drops_its_lists_and_refreshes_the_lists_that_showed_it(
    django_capture_on_commit_callbacks: Any,
) -> None:
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    make_catalog(store)
    rebuild_store_lists(store=store)
    assert "504" in item_ids(store, "503")
    event = WebhookEvent.objects.create(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=store.domain,
        topic="products/delete",
        dedup_key="e2",
        payload={"id": 504},
    )

    with django_capture_on_commit_callbacks(execute=True):
        process_webhook_event_task.delay(event.id)

    assert lists_of(store, "product") == ["500", "501", "502", "503"]
    assert all("504" not in item_ids(store, query_id) for query_id in ["500", "501", "502", "503"])


def test_an_order_webhook_does_not_ask_for_a_refresh(django_capture_on_commit_callbacks: Any) -> None:
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    make_catalog(store)
    event = WebhookEvent.objects.create(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=store.domain,
        topic="orders/create",
        dedup_key="e3",
        payload={"id": 1, "created_at": "2026-11-20T10:00:00Z", "line_items": []},
    )

    with django_capture_on_commit_callbacks(execute=True):
        process_webhook_event_task.delay(event.id)

    assert not PendingListRefresh.objects.exists()
    assert not RecommendationList.objects.exists()


def test_refresh_task_with_explicit_ids_recomputes_those_lists() -> None:
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store)
    before = RecommendationList.objects.get(store=store, query_id="500", placement="product").rec_id

    refresh_products_task.delay(store.id, ["500"])

    assert RecommendationList.objects.get(store=store, query_id="500", placement="product").rec_id != before

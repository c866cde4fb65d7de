"""Building, refreshing and storing recommendation lists (recommendations.services)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from catalog_sync.models import OrderLine, Product
from catalog_sync.tests.factories import ProductFactory, VariantFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, PendingListRefresh, RecommendationList
from recommendations.services import (
    rebuild_store_lists,
    refresh_pending_lists,
    refresh_product_lists,
    request_list_refresh,
    store_network_list,
)

pytestmark = pytest.mark.django_db

TITLES = [
    "red wool scarf",
    "blue wool scarf",
    "green wool scarf",
    "steel tea kettle",
    "copper tea kettle",
    "ceramic tea cup",
    "leather hiking boots",
    "suede hiking boots",
]


def make_catalog(store: Store, titles: list[str] = TITLES) -> list[Product]:
    return [
        ProductFactory.create(store=store, external_id=f"p{n}", sku=f"SKU-{n}", title=title, price=Decimal("10.00"))
        for n, title in enumerate(titles)
    ]


def order(store: Store, order_id: str, *external_ids: str) -> None:
    for line, external_id in enumerate(external_ids):
        OrderLine.objects.create(
            store=store,
            order_id=order_id,
            line_id=f"{order_id}-{line}",
            product_external_id=external_id,
            created_at=timezone.now() - timedelta(days=1),
        )


def ids_of(store: Store, query_id: str, placement: str = "product") -> list[str]:
    stored = RecommendationList.objects.get(store=store, query_id=query_id, placement=placement, source="local")
    return stored.item_ids


def test_rebuild_writes_a_product_and_a_cart_list_for_every_product_and_one_home_list() -> None:
    # given
    store = StoreFactory.create()
    products = make_catalog(store)
    order(store, "o1", "p0", "p3")
    order(store, "o2", "p0", "p3", "p5")
    other = StoreFactory.create()
    make_catalog(other)

    # when
    result = rebuild_store_lists(store=store, list_size=5)

    # then
    lists = RecommendationList.objects.filter(store=store, source="local")
    assert (result.products, result.product_lists, result.cart_lists, result.home_lists) == (8, 8, 8, 1)
    assert sorted(lists.filter(placement="product").values_list("query_id", flat=True)) == [
        p.external_id for p in products
    ]
    assert lists.filter(placement="cart").count() == 8
    home = lists.get(placement="home")
    assert (home.product_id, home.query_id) == (None, "")
    assert home.item_ids[:3] == ["p0", "p3", "p5"]  # the best sellers first
    assert ids_of(store, "p0")[0] == "p3"  # bought together twice beats a similar title
    # Then the nearest title, then the cup bought with p0 once just above the third scarf: co-purchase counts at its
    # absolute cosine, so one shared order of three is weaker evidence than a near-identical title, but with the linear
    # signal (EASE, weight 0.3) it outweighs another colour of the scarf the shopper is looking at.
    assert ids_of(store, "p0")[1:4] == ["p1", "p5", "p2"]
    assert all(len(stored.items) <= 5 for stored in lists)
    assert all("p0" not in ids_of(store, "p0", placement) for placement in ("product", "cart"))
    assert RecommendationList.objects.filter(store=other).count() == 0


def test_similar_products_lead_a_product_list() -> None:
    store = StoreFactory.create()
    make_catalog(store)

    rebuild_store_lists(store=store, list_size=4)

    assert set(ids_of(store, "p0")[:2]) == {"p1", "p2"}
    assert ids_of(store, "p6")[0] == "p7"
    entry = RecommendationList.objects.get(store=store, query_id="p6", placement="product").items[0]
    assert (entry[0], entry[2]) == ("p7", "similar")
    assert isinstance(entry[1], float)


def test_a_rebuild_replaces_lists_with_new_rec_ids_and_drops_lists_beyond_the_cart_cap(settings: Any) -> None:
    # given
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store)
    before = dict(RecommendationList.objects.filter(store=store).values_list("id", "rec_id"))

    # when the cart-list cap shrinks to the two best sellers
    settings.RECS_CART_LISTS_MAX = 2
    order(store, "o1", "p5", "p6")
    order(store, "o2", "p5", "p6")
    order(store, "o3", "p4", "p7")
    rebuild_store_lists(store=store)

    # then
    after = dict(RecommendationList.objects.filter(store=store, id__in=before).values_list("id", "rec_id"))
    assert all(after[pk] != before[pk] for pk in after)
    cart = RecommendationList.objects.filter(store=store, placement="cart")
    assert sorted(cart.values_list("query_id", flat=True)) == ["p5", "p6"]  # p5: 2 orders; p4/p6: 1, p4 < p6
    assert RecommendationList.objects.filter(store=store, placement="product").count() == 8


def test_a_deleted_product_takes_its_lists_with_it() -> None:
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store)

    Product.objects.filter(store=store, external_id="p1").delete()

    assert not RecommendationList.objects.filter(store=store, query_id="p1").exists()
    assert RecommendationList.objects.filter(store=store, placement="product").count() == 7


def test_refresh_recomputes_the_changed_product_and_the_lists_that_contain_it() -> None:
    # given
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store, list_size=3)
    rec_ids = dict(
        RecommendationList.objects.filter(store=store, placement="product").values_list("query_id", "rec_id")
    )
    containing_p6 = {
        stored.query_id for stored in RecommendationList.objects.filter(store=store) if "p6" in stored.item_ids
    }

    # when the boots become a scarf
    Product.objects.filter(store=store, external_id="p6").update(title="purple wool scarf")
    result = refresh_product_lists(store=store, external_ids=["p6"], list_size=3)

    # then
    assert result.products == 1
    assert set(ids_of(store, "p6")) == {"p0", "p1", "p2"}
    after = dict(RecommendationList.objects.filter(store=store, placement="product").values_list("query_id", "rec_id"))
    recomputed = {query_id for query_id in after if after[query_id] != rec_ids[query_id]}
    assert recomputed >= {"p6", "p0", "p1", "p2"} | (containing_p6 - {""})
    assert all("p6" in ids_of(store, scarf) for scarf in ("p0", "p1", "p2"))  # its new neighbours show it
    assert all("p6" not in ids_of(store, query_id) for query_id in containing_p6 - {"", "p0", "p1", "p2"})


def test_refresh_is_bounded(settings: Any) -> None:
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store)
    settings.RECS_REFRESH_MAX_LISTS = 2
    rec_ids = dict(
        RecommendationList.objects.filter(store=store, placement="product").values_list("query_id", "rec_id")
    )

    result = refresh_product_lists(store=store, external_ids=["p0", "p3", "p6"])

    after = dict(RecommendationList.objects.filter(store=store, placement="product").values_list("query_id", "rec_id"))
    assert result.product_lists == 2
    assert sum(1 for query_id in after if after[query_id] != rec_ids[query_id]) == 2


def test_a_big_store_gets_a_full_rebuild_instead_of_a_refresh(settings: Any) -> None:
    store = StoreFactory.create()
    make_catalog(store)
    settings.RECS_REFRESH_MAX_PRODUCTS = 5

    result = refresh_product_lists(store=store, external_ids=["p0"])

    assert result.full_rebuild_enqueued is True


def test_pending_refreshes_coalesce_into_one_refresh(django_capture_on_commit_callbacks: Any) -> None:
    # given
    store = StoreFactory.create()
    make_catalog(store)
    rebuild_store_lists(store=store)

    # when two webhooks ask, the first task drains both and the second finds nothing
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request_list_refresh(store_id=store.id, external_ids=["p1"])
        request_list_refresh(store_id=store.id, external_ids=["p2", "p1"])
    assert PendingListRefresh.objects.filter(store=store).count() == 2
    first = refresh_pending_lists(store=store)
    second = refresh_pending_lists(store=store)

    # then
    assert len(callbacks) == 2
    assert first.products == 2
    assert second.product_lists == 0
    assert not PendingListRefresh.objects.exists()


def test_store_network_list_maps_skus_drops_unknown_ones_and_keeps_the_answer() -> None:
    # given
    store = StoreFactory.create()
    products = make_catalog(store)
    VariantFactory.create(product=products[4], sku="KETTLE-RED")

    # when
    stored = store_network_list(
        store=store,
        product=products[0],
        placement="product",
        skus=["SKU-3", "NOT-SOLD", "KETTLE-RED", "SKU-3", "SKU-0", "p5"],
        miner_hotkey="5Fminer",
        validator="validator-1",
        models_used=["llama", "gpt"],
        latency_ms=3100,
    )

    # then
    assert stored.item_ids == ["p3", "p4", "p5"]
    assert [entry[1] for entry in stored.items] == [1.0, 0.6667, 0.3333]
    assert (stored.source, stored.placement, stored.query_id) == ("network", "product", "p0")
    assert (stored.miner_hotkey, stored.validator, stored.models_used, stored.latency_ms) == (
        "5Fminer",
        "validator-1",
        ["llama", "gpt"],
        3100,
    )
    assert stored.rec_id.startswith("n_")
    answer = NetworkAnswer.objects.get(rec_id=stored.rec_id)
    assert (answer.item_ids, answer.miner_hotkey) == (["p3", "p4", "p5"], "5Fminer")


def test_store_network_list_refuses_an_answer_with_no_known_sku() -> None:
    store = StoreFactory.create()
    products = make_catalog(store)

    with pytest.raises(ValueError, match=r"None of the network.s SKUs is in the store.s catalog\."):
        store_network_list(
            store=store,
            product=products[0],
            placement="product",
            skus=["NOPE"],
            miner_hotkey="m",
            validator="v",
            models_used=[],
            latency_ms=None,
        )
    assert not NetworkAnswer.objects.exists()


def test_store_network_list_for_the_home_placement_has_no_product() -> None:
    store = StoreFactory.create()
    make_catalog(store)

    stored = store_network_list(
        store=store,
        product=None,
        placement="home",
        skus=["SKU-1"],
        miner_hotkey="m",
        validator="v",
        models_used=[],
        latency_ms=10,
    )

    assert (stored.product_id, stored.query_id, stored.item_ids) == (None, "", ["p1"])

"""GET /api/v1/recommendations: stored lists served through the merchant's rules, caching, CORS, limits, errors."""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory, VariantFactory
from merchants.models import Store
from merchants.tests.factories import StoreFactory
from recommendations.models import NetworkAnswer, RecommendationList, generate_rec_id
from recommendations.process_state import clear_process_caches, warm_live_engine
from recommendations.selectors import get_external_ids_for_skus, get_rec_attribution, rec_id_source
from recommendations.services import store_network_list

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"


@pytest.fixture(autouse=True)
def _serving_settings(settings: Any) -> None:
    # The root conftest clears this process's caches around every test; the rate-limit counters live in the cache.
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0  # no background engine builds inside tests
    settings.RECS_ANSWER_CACHE_SECONDS = 0  # each request computes its answer (one test turns it on)
    cache.clear()


def make_store(**settings_: Any) -> Store:
    return StoreFactory.create(domain="shop.example.com", site_key="sk_test", settings=settings_)


def make_product(store: Store, n: int, **fields: Any) -> Product:
    values: dict[str, Any] = {
        "store": store,
        "external_id": f"p{n}",
        "sku": f"SKU-{n}",
        "title": f"Product {n}",
        "price": Decimal("10.00"),
        "url": f"https://shop.example.com/products/p{n}",
        "image_url": f"https://cdn.example.com/p{n}.jpg",
        **fields,
    }
    return ProductFactory.create(**values)


def store_list(
    store: Store,
    product: Product | None,
    ids: Sequence[str],
    *,
    placement: str = "product",
    source: str = "local",
    age: timedelta = timedelta(0),
) -> RecommendationList:
    return RecommendationList.objects.create(
        store=store,
        product=product,
        query_id=product.external_id if product else "",
        placement=placement,
        source=source,
        items=[[x, round(1 - i / 100, 4), "similar"] for i, x in enumerate(ids)],
        rec_id=generate_rec_id(source),
        computed_at=timezone.now() - age,
    )


def skus(response: Any) -> list[str]:
    return [item["sku"] for item in response.json()["items"]]


@pytest.fixture
def catalog() -> tuple[Store, list[Product]]:
    store = make_store()
    products = [make_product(store, n) for n in range(12)]
    return store, products


# --- the answer ------------------------------------------------------------------------------------------------


def test_a_stored_list_is_served_in_order_with_the_exact_response_shape(client: Client) -> None:
    # given
    store = make_store()
    query = make_product(store, 0)
    make_product(store, 1, title="Red mug", price=Decimal("12.50"))
    make_product(store, 2, title="Blue mug", price=None, image_url="")
    make_product(store, 3, sku="", title="No SKU")
    stored = store_list(store, query, ["p2", "p1", "p3"])

    # when
    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "3"})

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "rec_id": stored.rec_id,
        "source": "local",
        "placement": "product",
        "arm": None,
        "settings": {"title": "You may also like", "layout": "grid", "count": 4, "anonymous_events": True},
        "currency": "",
        "locale": "",
        "items": [
            {
                "sku": "SKU-2",
                "name": "Blue mug",
                "price": None,
                "url": "https://shop.example.com/products/p2",
                "image": "",
                "rec_id": stored.rec_id,
                "source": "local",
            },
            {
                "sku": "SKU-1",
                "name": "Red mug",
                "price": "12.50",
                "url": "https://shop.example.com/products/p1",
                "image": "https://cdn.example.com/p1.jpg",
                "rec_id": stored.rec_id,
                "source": "local",
            },
            {
                "sku": "p3",
                "name": "No SKU",
                "price": "10.00",
                "url": "https://shop.example.com/products/p3",
                "image": "https://cdn.example.com/p3.jpg",
                "rec_id": stored.rec_id,
                "source": "local",
            },
        ],
    }


def test_limit_defaults_to_four_and_caps_the_answer(client: Client, catalog: tuple[Store, list[Product]]) -> None:
    store, products = catalog
    store_list(store, products[0], [f"p{n}" for n in range(1, 12)])

    default = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})
    two = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "2"})

    assert skus(default) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    assert skus(two) == ["SKU-1", "SKU-2"]


def test_the_hot_path_costs_two_queries_once_the_store_is_cached(
    client: Client, catalog: tuple[Store, list[Product]], django_assert_num_queries: Any
) -> None:
    store, products = catalog
    store_list(store, products[0], [f"p{n}" for n in range(1, 12)])
    client.get(URL, {"site_key": "sk_test", "sku": "SKU-1"})  # caches the store

    with django_assert_num_queries(2):
        response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})

    assert skus(response) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]


def test_the_network_list_wins_while_fresh_and_the_local_list_answers_when_it_is_stale_or_absent(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    # given
    store, products = catalog
    local = store_list(store, products[0], ["p1", "p2", "p3", "p4"])
    params = {"site_key": "sk_test", "sku": "SKU-0"}
    absent = client.get(URL, params)

    # when the network answers
    network = store_network_list(
        store=store,
        product=products[0],
        placement="product",
        skus=["SKU-9", "SKU-8", "SKU-7", "SKU-6"],
        miner_hotkey="5Fminer",
        validator="validator-1",
        models_used=["gpt-x"],
        latency_ms=4200,
    )
    fresh = client.get(URL, params)

    # and when it grows older than RECS_NETWORK_MAX_AGE_SECONDS
    settings.RECS_NETWORK_MAX_AGE_SECONDS = 60
    RecommendationList.objects.filter(id=network.id).update(computed_at=timezone.now() - timedelta(seconds=61))
    stale = client.get(URL, params)

    # then
    assert (absent.json()["source"], absent.json()["rec_id"], skus(absent)) == (
        "local",
        local.rec_id,
        ["SKU-1", "SKU-2", "SKU-3", "SKU-4"],
    )
    assert (fresh.json()["source"], fresh.json()["rec_id"], skus(fresh)) == (
        "network",
        network.rec_id,
        ["SKU-9", "SKU-8", "SKU-7", "SKU-6"],
    )
    assert (stale.json()["source"], stale.json()["rec_id"], skus(stale)) == (
        "local",
        local.rec_id,
        ["SKU-1", "SKU-2", "SKU-3", "SKU-4"],
    )


def test_a_short_network_list_is_topped_up_from_the_local_list(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1", "p9", "p2", "p3"])
    network = store_network_list(
        store=store,
        product=products[0],
        placement="product",
        skus=["SKU-9", "SKU-8"],
        miner_hotkey="5Fminer",
        validator="v",
        models_used=[],
        latency_ms=None,
    )

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})

    assert (response.json()["source"], response.json()["rec_id"]) == ("network", network.rec_id)
    assert skus(response) == ["SKU-9", "SKU-8", "SKU-1", "SKU-2"]


def test_a_product_that_went_out_of_stock_after_the_list_was_stored_is_skipped_and_the_list_topped_up(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    # given
    store, products = catalog
    store_list(store, products[0], [f"p{n}" for n in range(1, 12)])
    params = {"site_key": "sk_test", "sku": "SKU-0", "limit": "4"}
    before = skus(client.get(URL, params))

    # when two items sell out, one far down the window too
    Product.objects.filter(store=store, external_id__in=["p2", "p3"]).update(in_stock=False)
    after = skus(client.get(URL, params))

    # then
    assert before == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    assert after == ["SKU-1", "SKU-4", "SKU-5", "SKU-6"]


def test_when_the_whole_window_is_filtered_out_further_candidates_and_then_the_home_list_fill_the_answer(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    store_list(store, products[0], [f"p{n}" for n in range(1, 12)])
    store_list(store, None, ["p0", "p1", "p5", "p11", "p10"], placement="home")
    Product.objects.filter(store=store, external_id__in=[f"p{n}" for n in range(1, 11)]).update(in_stock=False)

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "3"})

    # p11 from the product list; home adds nothing new that is in stock (p0 is the query itself)
    assert skus(response) == ["SKU-11"]


def test_unpublished_draft_and_deleted_products_are_not_served(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1", "p2", "gone", "p3", "p4", "p5"])
    Product.objects.filter(store=store, external_id="p1").update(is_published=False)
    Product.objects.filter(store=store, external_id="p2").update(status=Product.Status.DRAFT)

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "3"})

    assert skus(response) == ["SKU-3", "SKU-4", "SKU-5"]


def test_merchant_rules_exclusions_pins_and_relaxed_stock_and_publishing(client: Client) -> None:
    # given
    store = make_store(
        recommendations={
            "in_stock_only": False,
            "published_only": False,
            "exclude_skus": ["SKU-2"],
            "exclude_tags": ["Gift Card"],
            "exclude_categories": ["Apparel > Socks"],
            "pinned_skus": ["SKU-9", "SKU-0"],
        }
    )
    query = make_product(store, 0)
    make_product(store, 1, in_stock=False)
    make_product(store, 2)
    make_product(store, 3, tags=["gift card"])
    make_product(store, 4, category_path="Apparel > Socks > Wool")
    make_product(store, 5, category_path="Apparel > Socksets")
    make_product(store, 6, is_published=False)
    make_product(store, 9)
    store_list(store, query, ["p1", "p2", "p3", "p4", "p5", "p6", "p9"])

    # when
    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "5"})

    # then: the pin comes first (SKU-0 is the query, never shown) and is not repeated
    assert skus(response) == ["SKU-9", "SKU-1", "SKU-5", "SKU-6"]


def test_the_price_range_is_relative_to_the_query_product(client: Client) -> None:
    store = make_store(recommendations={"price_min_ratio": 0.5, "price_max_ratio": 2})
    query = make_product(store, 0, price=Decimal("40.00"))
    make_product(store, 1, price=Decimal("19.99"))
    make_product(store, 2, price=Decimal("20.00"))
    make_product(store, 3, price=Decimal("80.00"))
    make_product(store, 4, price=Decimal("80.01"))
    make_product(store, 5, price=None)
    store_list(store, query, ["p1", "p2", "p3", "p4", "p5"])

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "limit": "10"})

    assert skus(response) == ["SKU-2", "SKU-3", "SKU-5"]


def test_junk_merchant_settings_fall_back_to_the_defaults(client: Client) -> None:
    store = make_store(
        recommendations={"in_stock_only": "yes", "exclude_tags": "x", "price_min_ratio": "cheap", "pinned_skus": 3}
    )
    query = make_product(store, 0)
    make_product(store, 1, in_stock=False)
    make_product(store, 2)
    store_list(store, query, ["p1", "p2"])

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})

    assert (response.status_code, skus(response)) == (200, ["SKU-2"])


def test_an_unknown_sku_is_answered_with_the_home_list(client: Client, catalog: tuple[Store, list[Product]]) -> None:
    store, _ = catalog
    home = store_list(store, None, ["p5", "p6", "p7"], placement="home")

    response = client.get(URL, {"site_key": "sk_test", "sku": "NOPE", "limit": "2"})

    assert response.status_code == 200
    assert (response.json()["rec_id"], response.json()["placement"], skus(response)) == (
        home.rec_id,
        "product",
        ["SKU-5", "SKU-6"],
    )


def test_a_variant_sku_or_platform_id_finds_its_product(client: Client, catalog: tuple[Store, list[Product]]) -> None:
    store, products = catalog
    VariantFactory.create(product=products[0], sku="SKU-0-RED")
    store_list(store, products[0], ["p1", "p2"])

    by_variant = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0-RED"})
    by_id = client.get(URL, {"site_key": "sk_test", "sku": "p0"})

    assert skus(by_variant) == ["SKU-1", "SKU-2"]
    assert skus(by_id) == ["SKU-1", "SKU-2"]


def test_a_known_product_without_lists_gets_the_home_list_without_itself(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, _ = catalog
    store_list(store, None, ["p0", "p1", "p2"], placement="home")

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})

    assert skus(response) == ["SKU-1", "SKU-2"]


def test_a_store_with_nothing_stored_answers_an_empty_list(client: Client) -> None:
    make_store()

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0"})

    assert (response.status_code, response.json()) == (
        200,
        {
            "rec_id": None,
            "source": "local",
            "placement": "product",
            "arm": None,
            "settings": {"title": "You may also like", "layout": "grid", "count": 4, "anonymous_events": True},
            "currency": "",
            "locale": "",
            "items": [],
        },
    )


def test_cart_placement_serves_the_cart_list_and_falls_back_to_the_product_list(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    cart_list = store_list(store, products[0], ["p7", "p8"], placement="cart")
    store_list(store, products[0], ["p1", "p2"])
    product_list = store_list(store, products[1], ["p3", "p4"])

    with_cart_list = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "placement": "cart"})
    without = client.get(URL, {"site_key": "sk_test", "sku": "SKU-1", "placement": "cart"})

    assert (with_cart_list.json()["rec_id"], skus(with_cart_list)) == (cart_list.rec_id, ["SKU-7", "SKU-8"])
    assert (without.json()["rec_id"], skus(without)) == (product_list.rec_id, ["SKU-3", "SKU-4"])


def test_home_placement_serves_the_home_list_and_ignores_the_sku(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1", "p2"])
    home = store_list(store, None, ["p0", "p5", "p6"], placement="home")

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "placement": "home"})

    assert (response.json()["rec_id"], response.json()["placement"], skus(response)) == (
        home.rec_id,
        "home",
        ["SKU-0", "SKU-5", "SKU-6"],
    )


# --- personalised ------------------------------------------------------------------------------------------------


def test_a_cart_without_an_engine_blends_the_cart_items_lists_and_never_shows_cart_items(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    first = store_list(store, products[0], ["p1", "p2", "p3"], placement="cart")
    store_list(store, products[1], ["p0", "p4", "p5"])

    response = client.get(URL, {"site_key": "sk_test", "placement": "cart", "cart": "SKU-0, SKU-1"})

    assert response.json()["rec_id"] == first.rec_id
    # the cart items' lists blended as the engine blends a session (weights 0.7**position, most recent first):
    # SKU-2 .588 * .99, SKU-3 .588 * .98, SKU-4 .412 * .99, SKU-5 .412 * .98
    assert skus(response) == ["SKU-2", "SKU-3", "SKU-4", "SKU-5"]
    assert response["Cache-Control"] == "private, no-store"
    assert not response.has_header("ETag")


def test_a_session_without_an_engine_costs_four_queries_once_the_store_is_cached(
    client: Client, catalog: tuple[Store, list[Product]], django_assert_num_queries: Any
) -> None:
    # given: the query product's list and the viewed products' lists; the store, its arm and settings cached
    store, products = catalog
    store_list(store, products[0], ["p1", "p2"])
    store_list(store, products[5], ["p6", "p3"])
    store_list(store, products[7], ["p4", "p8"])
    client.get(URL, {"site_key": "sk_test", "sku": "SKU-1", "viewed": "SKU-2"})

    # when
    with django_assert_num_queries(4):  # the query's lists, the session's ids, their lists, the products
        response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "viewed": "SKU-5,SKU-7"})

    # then: the query's list and the viewed products' lists blended (weights 1, .7, .49 over 2.19): SKU-1 .457,
    # SKU-2 .452, SKU-6 .320, SKU-3 .316, SKU-4 .224
    assert skus(response) == ["SKU-1", "SKU-2", "SKU-6", "SKU-3"]


def test_viewed_items_are_excluded_from_a_product_answer(client: Client, catalog: tuple[Store, list[Product]]) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1", "p2", "p3", "p4", "p5"])

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "viewed": "SKU-2,SKU-1"})

    assert skus(response)[:2] == ["SKU-3", "SKU-4"]
    assert "SKU-1" not in skus(response)
    assert "SKU-2" not in skus(response)


def test_a_built_in_memory_engine_answers_personalised_requests(client: Client) -> None:
    # given: a store whose engine is warm in this process
    store = make_store()
    titles = ["red wool scarf", "blue wool scarf", "green wool scarf", "steel kettle", "copper kettle", "tea cup"]
    products = [make_product(store, n, title=title) for n, title in enumerate(titles)]
    local = store_list(store, products[0], ["p5"])
    assert warm_live_engine(store_id=store.id) is not None

    # when the shopper viewed a kettle before the scarf
    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "viewed": "SKU-3", "limit": "2"})

    # then the engine's answer (other scarves) is served under the query product's local list
    assert response.json()["rec_id"] == local.rec_id
    assert set(skus(response)) == {"SKU-1", "SKU-2"}
    assert response["Cache-Control"] == "private, no-store"


# --- caching, CORS, rate limits ------------------------------------------------------------------------------------


def test_non_personalised_answers_are_cacheable_with_an_etag_and_if_none_match_gives_304(
    client: Client, catalog: tuple[Store, list[Product]]
) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1", "p2"])
    params = {"site_key": "sk_test", "sku": "SKU-0"}

    first = client.get(URL, params)
    etag = first["ETag"]
    again = client.get(URL, params, headers={"If-None-Match": etag})
    weak = client.get(URL, params, headers={"If-None-Match": f'"other", W/{etag}'})
    Product.objects.filter(store=store, external_id="p1").update(in_stock=False)
    changed = client.get(URL, params, headers={"If-None-Match": etag})

    assert first["Cache-Control"] == "public, max-age=30, stale-while-revalidate=20"
    assert etag.startswith('"') and etag.endswith('"')
    assert (again.status_code, again["ETag"], again.content) == (304, etag, b"")
    assert again["Cache-Control"] == "public, max-age=30, stale-while-revalidate=20"
    assert weak.status_code == 304
    assert (changed.status_code, skus(changed)) == (200, ["SKU-2"])
    assert changed["ETag"] != etag


def test_a_process_reuses_a_rendered_answer_for_recs_answer_cache_seconds(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    # given
    store, products = catalog
    store_list(store, products[0], ["p1", "p2"])
    settings.RECS_ANSWER_CACHE_SECONDS = 300
    params = {"site_key": "sk_test", "sku": "SKU-0"}
    first = client.get(URL, params)

    # when p1 sells out: the cached answer stands until it expires, then the next request recomputes
    Product.objects.filter(store=store, external_id="p1").update(in_stock=False)
    cached = client.get(URL, params)
    personalised = client.get(URL, {**params, "viewed": "SKU-9"})
    clear_process_caches()
    recomputed = client.get(URL, params)

    # then
    assert skus(first) == skus(cached) == ["SKU-1", "SKU-2"]
    assert cached["ETag"] == first["ETag"]
    assert skus(personalised) == ["SKU-2"]  # personalised answers are never cached
    assert skus(recomputed) == ["SKU-2"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://shop.example.com"},
        {"Origin": "https://evil.example"},
        {"If-None-Match": "{etag}"},
        {"If-None-Match": "{etag}", "Origin": "https://shop.example.com"},
    ],
)
@pytest.mark.parametrize("placement", ["product", "home"])
def test_the_fast_path_answers_header_for_header_as_the_view_through_the_whole_stack(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any, headers: dict[str, str], placement: str
) -> None:
    # given: the store's lists, and the answer's ETag that a shopper's browser may hold
    store, products = catalog
    store_list(store, products[0], ["p1", "p2"])
    store_list(store, None, ["p3", "p4"], placement="home")
    settings.RECS_ANSWER_CACHE_SECONDS = 300
    params = {"site_key": "sk_test", "sku": "SKU-0", "placement": placement}
    sent = {name: value.format(etag=client.get(URL, params)["ETag"]) for name, value in headers.items()}
    fast_path = "recommendations.middleware.WidgetAnswerMiddleware"
    with_fast_path = list(settings.MIDDLEWARE)
    assert fast_path in with_fast_path

    # when the view answers through the whole stack (no fast path), then the fast path renders the answer, then
    # serves it from its cache (p1 and p3 sold out meanwhile: a recomputed answer would differ)
    clear_process_caches()
    settings.MIDDLEWARE = [name for name in with_fast_path if name != fast_path]
    by_view = Client().get(URL, params, headers=sent)
    clear_process_caches()
    settings.MIDDLEWARE = with_fast_path
    fast = Client()
    rendered = fast.get(URL, params, headers=sent)
    Product.objects.filter(store=store, external_id__in=["p1", "p3"]).update(in_stock=False)
    cached = fast.get(URL, params, headers=sent)

    # then
    expected = 304 if "If-None-Match" in headers else 200
    assert by_view.status_code == rendered.status_code == cached.status_code == expected
    assert sorted(rendered.items()) == sorted(cached.items()) == sorted(by_view.items())
    assert rendered.content == cached.content == by_view.content
    assert by_view["Allow"] == "GET, POST, HEAD, OPTIONS"
    # the fast path answered before SessionMiddleware (which gives every request a session) and the rest
    assert hasattr(by_view.wsgi_request, "session")
    assert not hasattr(rendered.wsgi_request, "session") and not hasattr(cached.wsgi_request, "session")


@pytest.mark.parametrize(
    "origin",
    ["https://shop.example.com", "http://shop.example.com", "https://www.shop.example.com", "https://brand.example"],
)
def test_cors_allows_the_stores_own_origins(client: Client, origin: str) -> None:
    make_store(allowed_origins=["https://brand.example"])

    response = client.get(URL, {"site_key": "sk_test", "placement": "home"}, headers={"Origin": origin})

    assert response["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://shop.example.com.evil.example", "null", "ftp://shop.example.com"]
)
def test_cors_refuses_other_origins(client: Client, origin: str) -> None:
    make_store(allowed_origins=["https://brand.example"])

    response = client.get(URL, {"site_key": "sk_test", "placement": "home"}, headers={"Origin": origin})

    assert response.status_code == 200
    assert not response.has_header("Access-Control-Allow-Origin")
    assert "Origin" in response["Vary"]


def test_the_rate_limit_per_client_answers_429_with_retry_after(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    settings.WIDGET_RATE_LIMIT = "2/min"
    params = {"site_key": "sk_test", "placement": "home"}

    statuses = [client.get(URL, params).status_code for _ in range(3)]
    other_client = client.get(URL, params, REMOTE_ADDR="10.0.0.2")

    assert statuses == [200, 200, 429]
    assert other_client.status_code == 200  # another client IP has its own budget
    last = client.get(URL, params)
    assert last.status_code == 429
    assert last["Retry-After"] == "60"
    assert last.json() == {"error": "throttled", "detail": "Request was throttled. Expected available in 60 seconds."}


def test_cached_answers_still_count_against_the_rate_limit_and_carry_cors_headers(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1"])
    settings.RECS_ANSWER_CACHE_SECONDS = 300
    settings.WIDGET_RATE_LIMIT = "2/min"
    params = {"site_key": "sk_test", "sku": "SKU-0"}
    origin = {"Origin": "https://shop.example.com"}

    responses = [client.get(URL, params, headers=origin) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[1]["ETag"] == responses[0]["ETag"]
    assert responses[1]["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert responses[2].json()["error"] == "throttled"


def test_the_rate_limit_per_site_key_covers_every_client(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    settings.WIDGET_RATE_LIMIT = "100/min"
    settings.WIDGET_SITE_RATE_LIMIT = "3/min"
    params = {"site_key": "sk_test", "placement": "home"}

    statuses = [client.get(URL, params, REMOTE_ADDR=f"10.0.0.{n}").status_code for n in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_off_disables_the_rate_limits(client: Client, catalog: tuple[Store, list[Product]], settings: Any) -> None:
    settings.WIDGET_RATE_LIMIT = "off"
    settings.WIDGET_SITE_RATE_LIMIT = "1/min"

    statuses = {client.get(URL, {"site_key": "sk_test", "placement": "home"}).status_code for _ in range(5)}

    assert statuses == {200}


# --- errors ----------------------------------------------------------------------------------------------------------


def test_an_unknown_or_uninstalled_site_key_is_404(client: Client) -> None:
    StoreFactory.create(site_key="sk_gone", status=Store.Status.UNINSTALLED)

    unknown = client.get(URL, {"site_key": "sk_nope", "sku": "A"})
    gone = client.get(URL, {"site_key": "sk_gone", "sku": "A"})

    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "store_not_found", "detail": "No store has this site key."},
    )
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"sku": "A"}, "site_key: This field is required."),
        ({"site_key": "sk_test", "sku": "A", "limit": "0"}, "limit: Ensure this value is greater than or equal to 1."),
        ({"site_key": "sk_test", "sku": "A", "limit": "21"}, "limit: Ensure this value is less than or equal to 20."),
        ({"site_key": "sk_test", "sku": "A", "limit": "abc"}, "limit: A valid integer is required."),
        ({"site_key": "sk_test", "sku": "A", "placement": "footer"}, 'placement: "footer" is not a valid choice.'),
        ({"site_key": "sk_test"}, "sku: This field is required when placement is product."),
        ({"site_key": "sk_test", "sku": "x" * 256}, "sku: Ensure this field has no more than 255 characters."),
        (
            {"site_key": "sk_test", "placement": "cart", "cart": ",".join(f"S{n}" for n in range(21))},
            "cart: At most 20 SKUs.",
        ),
        (
            {"site_key": "sk_test", "placement": "cart", "viewed": "a," + "y" * 256},
            "viewed: A SKU is at most 255 characters.",
        ),
    ],
)
def test_bad_parameters_are_400_with_a_message(client: Client, params: dict[str, str], detail: str) -> None:
    make_store()

    response = client.get(URL, params)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"] == detail
    assert response["Cache-Control"] == "no-store"


JUNK = [
    "",
    "site_key=",
    "site_key=%00&sku=a",
    "site_key=sk_test&sku=%00",
    "site_key=sk_test&sku=a&limit=1e3",
    "site_key=sk_test&sku=a&limit=-1",
    "site_key=sk_test&sku=a&limit=%F0%9F%92%A9",
    "site_key=sk_test&sku=a&limit=99999999999999999999999",
    "site_key=sk_test&sku=%FF%FE",
    "site_key=sk_test&sku=a&cart=,,,,",
    "site_key=sk_test&sku=a&cart=%00",
    "site_key=sk_test&sku=a&viewed=a,b%00c",
    "site_key=sk_test&placement=cart&cart=" + "%2C" * 5000,
    "site_key=" + "k" * 5000 + "&sku=a",
    "site_key=sk_test&sku=a&placement=HOME",
    "site_key=sk_test&sku=a&placement[]=home",
    "site_key[]=sk_test&sku=a",
    "site_key=sk_test&site_key=other&sku=a",
    "site_key=sk_test&sku=a&unknown=1&_=1700000000",
    "site_key=sk_test&sku=%27%3B%20DROP%20TABLE%20x%3B--",
    "site_key=sk_test&sku=a&limit=",
    "site_key=sk_test&sku=a&viewed=%E2%80%AE",
    "%%%%=&&&=",
]


@pytest.mark.parametrize("query", JUNK)
def test_junk_input_never_gives_a_server_error(client: Client, query: str) -> None:
    store = make_store()
    make_product(store, 0, sku="a")

    response = client.get(f"{URL}?{query}", headers={"Origin": "https://evil.example"})

    assert response.status_code in (200, 400, 404)
    body = response.json()
    assert ("items" in body) if response.status_code == 200 else set(body) >= {"error", "detail"}


def test_unknown_parameters_are_ignored(client: Client, catalog: tuple[Store, list[Product]]) -> None:
    store, products = catalog
    store_list(store, products[0], ["p1"])

    response = client.get(URL, {"site_key": "sk_test", "sku": "SKU-0", "utm_source": "mail", "_": "17"})

    assert (response.status_code, skus(response)) == (200, ["SKU-1"])


# --- OpenAPI and attribution ------------------------------------------------------------------------------------------


def test_the_endpoint_and_its_parameters_are_in_the_openapi_schema(client: Client) -> None:
    response = client.get("/api/schema/", {"format": "json"})

    operation = response.json()["paths"]["/api/v1/recommendations"]["get"]
    assert [p["name"] for p in operation["parameters"]] == [
        "cart",
        "limit",
        "placement",
        "sid",
        "site_key",
        "sku",
        "viewed",
    ]
    assert {"200", "304", "400", "404", "429"} <= set(operation["responses"])


def test_a_network_rec_id_still_names_its_miner_after_a_newer_answer_replaces_it(
    catalog: tuple[Store, list[Product]],
) -> None:
    store, products = catalog
    kwargs: dict[str, Any] = {
        "store": store,
        "product": products[0],
        "placement": "product",
        "validator": "v1",
        "models_used": ["m"],
        "latency_ms": 900,
    }
    first = store_network_list(skus=["SKU-1", "SKU-2"], miner_hotkey="5Fold", **kwargs)
    second = store_network_list(skus=["SKU-3"], miner_hotkey="5Fnew", **kwargs)

    old = get_rec_attribution(rec_id=first.rec_id)
    assert old is not None
    assert (old.source, old.miner_hotkey, old.item_ids, old.query_id) == ("network", "5Fold", ("p1", "p2"), "p0")
    assert RecommendationList.objects.get(id=second.id).rec_id == second.rec_id
    assert NetworkAnswer.objects.filter(store=store).count() == 2
    assert (rec_id_source(first.rec_id), rec_id_source("l_abc"), rec_id_source("zz")) == ("network", "local", None)


# --- a session too long for a URL: the same answer by POST -------------------------------------------------------


def test_a_long_session_is_answered_by_post_exactly_as_by_get(client: Client, catalog: tuple[Store, list[Product]]):
    # given: a full session (20 viewed SKUs, 20 in the cart) whose query is longer than servers take in a request line
    store, products = catalog
    store_list(store, products[0], ["p1", "p2", "p3", "p4"])
    params = {
        "site_key": store.site_key,
        "sku": "SKU-0",
        "limit": "4",
        "cart": ",".join([p.sku for p in products[5:8]] + [f"GONE-{n:03d}-" + "x" * 240 for n in range(17)]),
        "viewed": ",".join(f"OLD-{n:03d}-" + "y" * 240 for n in range(20)),
    }
    assert len(urlencode(params)) > 8190

    # when
    by_get = client.get(URL, params)
    by_post = client.post(URL, urlencode(params), content_type="application/x-www-form-urlencoded")

    # then
    assert by_post.status_code == by_get.status_code == 200
    assert by_post.content == by_get.content
    assert by_post["Cache-Control"] == "private, no-store"
    assert skus(by_post) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("site_key=sk_test&placement=home&limit=3&limit=4", "application/x-www-form-urlencoded", 400, "limit"),
        ('{"site_key": "sk_test"}', "application/json", 415, None),
        ("site_key=sk_test&placement=product", "application/x-www-form-urlencoded", 400, "sku"),
    ],
)
def test_a_post_that_is_not_one_form_of_the_parameters_is_refused(
    client: Client, catalog: tuple[Store, list[Product]], body: str, content_type: str, status: int, error: str | None
):
    response = client.post(URL, body, content_type=content_type)

    assert response.status_code == status
    if error is not None:
        assert error in response.json()["fields"]
    else:
        assert "application/x-www-form-urlencoded" in response.json()["detail"]


# --- session SKUs -> product ids ----------------------------------------------------------------------------------


def test_session_skus_map_to_ids_in_one_indexed_query(django_assert_num_queries: Any) -> None:
    # given: two products sharing a SKU (the older one answers), one asked by its external id, another store's
    store = make_store()
    older = make_product(store, 1, sku="SHARED")
    make_product(store, 2, sku="SHARED")
    make_product(store, 3)
    other = StoreFactory.create(domain="other.example.com", site_key="sk_other")
    make_product(other, 4)

    # when: the session's SKUs are mapped (all of them found: no variant query)
    with django_assert_num_queries(1) as captured:
        ids = get_external_ids_for_skus(store_id=store.id, skus=["SKU-3", "SHARED", "p2"])

    # then: in order; another store's SKU is not this store's
    assert ids == ["p3", older.external_id, "p2"]
    assert get_external_ids_for_skus(store_id=store.id, skus=["SKU-4"]) == [""]
    if connection.vendor == "sqlite":  # each half by its index, never a walk of the store's products
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + captured.captured_queries[0]["sql"])
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "product_store_sku_idx" in plan and "sqlite_autoindex_catalog_sync_product_1" in plan
        assert "catalog_sync_product_store_id" not in plan


def test_a_session_sku_of_a_variant_maps_to_its_product() -> None:
    store = make_store()
    product = make_product(store, 1)
    VariantFactory.create(product=product, sku="VAR-1")

    assert get_external_ids_for_skus(store_id=store.id, skus=["VAR-1", "nope", "SKU-1"]) == ["p1", "", "p1"]


def test_session_skus_that_look_like_sql_or_format_strings_map_as_plain_text(client: Client) -> None:
    # given: SKUs a merchant may really have (quotes, %s, a semicolon and dashes, non-ASCII, 255 characters), each
    # the key of a stored list; the query's SQL is built with placeholders, never with the values
    store = make_store()
    odd = ["O'Brien %s", "A;--DROP", "Größe-ß", "x" * 255]
    products = [make_product(store, n, sku=sku) for n, sku in enumerate(odd, start=1)]
    extra = [make_product(store, n) for n in range(5, 9)]
    store_list(store, products[0], ["p5", "p6"])
    store_list(store, products[1], ["p7"])

    # when: asked directly, and by the widget with them as the viewed products (comma-separated, most recent first)
    ids = get_external_ids_for_skus(store_id=store.id, skus=[*odd, "%", "' OR '1'='1"])
    response = client.get(URL, {"site_key": "sk_test", "sku": odd[0], "viewed": ",".join(odd[1:])})

    # then: each maps to its own product and nothing else matches; the answer blends the two stored lists
    assert ids == ["p1", "p2", "p3", "p4", "", ""]
    assert response.status_code == 200
    assert skus(response) == [extra[0].sku, extra[1].sku, extra[2].sku]


def test_a_request_the_middleware_hands_to_the_view_is_counted_once(
    client: Client, catalog: tuple[Store, list[Product]], settings: Any
) -> None:
    # given: two requests a minute; bad input in plain form (the middleware counts it, then leaves the 400 to the view)
    settings.WIDGET_RATE_LIMIT = "2/min"
    bad = {"site_key": "sk_test", "placement": "home", "limit": "many"}

    # when
    statuses = [client.get(URL, bad).status_code for _ in range(3)]

    # then: two answered (once each against the limit), the third refused
    assert statuses == [400, 400, 429]

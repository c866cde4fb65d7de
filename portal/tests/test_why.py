"""Why this list: the widget's own answer for a product, its sources, the rules that removed items, substitutions."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from recommendations.models import RecommendationList, generate_rec_id
from recommendations.services import store_network_list

pytestmark = pytest.mark.django_db

HOTKEY = "5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX"


@pytest.fixture(autouse=True)
def _serving(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0


@pytest.fixture
def shop() -> tuple[Client, Store]:
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="x")
    store = create_store(
        platform=Store.Platform.CUSTOM,
        domain="ann.example",
        name="Ann's shop",
    )
    store.settings = {"recommendations": {"exclude_tags": ["clearance"]}}
    store.save()
    grant_store_access(user=user, store=store)
    products = [
        ProductFactory.create(
            store=store, external_id=f"p{n}", sku=f"SKU-{n}", title=f"Mug {n}", price=Decimal("10.00")
        )
        for n in range(9)
    ]
    products[2].in_stock = False
    products[2].save()
    products[4].tags = ["Clearance"]
    products[4].save()
    RecommendationList.objects.create(
        store=store,
        product=products[0],
        query_id="p0",
        placement="product",
        source="local",
        items=[["p5", 0.9, "bought_together"], ["p6", 0.8, "similar"], ["p7", 0.7, "similar"], ["p8", 0.6, "popular"]],
        rec_id=generate_rec_id("local"),
    )
    store_network_list(
        store=store,
        product=products[0],
        placement="product",
        skus=["SKU-1", "SKU-2", "SKU-3", "SKU-4"],
        miner_hotkey=HOTKEY,
        validator="http://validator.example:7779",
        models_used=["qwen-2.5-7b"],
        latency_ms=840,
    )
    client = Client()
    client.force_login(user)
    return client, store


def url(store: Store) -> str:
    return f"/portal/stores/{store.pk}/why"


def test_the_list_is_the_widgets_with_its_sources_removals_and_substitutions(shop):
    client, store = shop
    widget = Client().get(
        "/api/v1/recommendations", {"site_key": store.site_key, "sku": "SKU-0"}, HTTP_ORIGIN="https://ann.example"
    )

    response = client.get(url(store), {"sku": "SKU-0"})

    assert response.status_code == 200
    explained = response.context["explained"]
    assert [item.sku for item in explained.answer.items] == [item["sku"] for item in widget.json()["items"]]
    served = [
        (c.sku, c.position, c.source, c.reason_label, c.substitute_for) for c in explained.candidates if c.position
    ]
    assert served == [
        ("SKU-1", 1, "network", "chosen by a miner", ""),
        ("SKU-3", 2, "network", "chosen by a miner", ""),
        ("SKU-5", 3, "local", "bought together (co-purchase)", "SKU-2"),
        ("SKU-6", 4, "local", "similar text (title, tags, category)", "SKU-4"),
    ]
    assert [(c.sku, c.removed_by) for c in explained.removed] == [("SKU-2", "out_of_stock"), ("SKU-4", "excluded_tag")]
    network = next(info for info in explained.lists if info.source == "network")
    assert (network.miner_hotkey, network.validator, network.models_used, network.latency_ms, network.fresh) == (
        HOTKEY,
        "http://validator.example:7779",
        ("qwen-2.5-7b",),
        840,
        True,
    )
    assert [info.source for info in explained.lists] == ["network", "local"]
    body = response.content.decode()
    assert HOTKEY in body
    assert "out of stock" in body
    assert "excluded by tag" in body


def test_an_unknown_sku_says_the_home_list_answers(shop):
    client, store = shop

    response = client.get(url(store), {"sku": "NOPE"})

    assert response.status_code == 200
    assert response.context["explained"].query_found is False
    assert b"the store's home list answers" in response.content


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sku": "SKU-0", "placement": "footer"}, "Unknown placement &#x27;footer&#x27;: use product, cart or home."),
        ({"sku": "x" * 256}, "A SKU is at most 255 characters."),
        ({"sku": "SKU\x1f-0"}, "A SKU has no control characters."),
    ],
)
def test_bad_parameters_are_a_400_page_with_the_reason(shop, params, message):
    client, store = shop

    response = client.get(url(store), params)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["explained"] is None


def test_a_nul_in_the_query_is_refused_before_the_page(shop):
    # bitrecs_site.security.NulInRequestMiddleware: no NUL reaches a view (or PostgreSQL)
    client, store = shop

    response = client.get(url(store), {"sku": "SKU\x00-0"})

    assert response.status_code == 400
    assert response.json()["detail"] == "The request carries a NUL character (%00); remove it."


def test_without_a_sku_the_page_offers_products_to_try(shop):
    client, store = shop

    response = client.get(url(store))

    assert response.status_code == 200
    assert response.context["examples"] == [("SKU-0", "Mug 0")]


def test_another_stores_list_is_404(shop):
    client, _ = shop
    other = create_store(platform=Store.Platform.CUSTOM, domain="bob.example", name="Bob's")

    response = client.get(url(other), {"sku": "SKU-0"})

    assert response.status_code == 404

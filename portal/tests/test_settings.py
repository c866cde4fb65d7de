"""The settings page: rules preview (nothing saved), saving through services, validation, tenant scoping."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from catalog_sync.models import Product
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from recommendations.models import PlacementSettings, RecommendationList, generate_rec_id

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _serving(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    settings.RECS_STORE_CACHE_SECONDS = 300  # long: a save must forget the cached config, not wait for it
    settings.RECS_ANSWER_CACHE_SECONDS = 300
    cache.clear()


def make_catalog(store: Store) -> list[Product]:
    products = [
        ProductFactory.create(
            store=store, external_id=f"p{n}", sku=f"SKU-{n}", title=f"Product {n}", price=Decimal("10")
        )
        for n in range(8)
    ]
    products[3].tags = ["Clearance"]
    products[3].save()
    products[5].in_stock = False
    products[5].save()
    RecommendationList.objects.create(
        store=store,
        product=products[0],
        query_id="p0",
        placement="product",
        source="local",
        items=[[f"p{n}", 1 - n / 10, "similar"] for n in range(1, 8)],
        rec_id=generate_rec_id("local"),
    )
    return products


@pytest.fixture
def shop() -> tuple[Client, Store]:
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="x")
    store = create_store(platform=Store.Platform.CUSTOM, domain="ann.example", name="Ann's shop")
    grant_store_access(user=user, store=store)
    make_catalog(store)
    client = Client()
    client.force_login(user)
    return client, store


def url(store: Store) -> str:
    return f"/portal/stores/{store.pk}/settings"


def rules_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "section": "rules",
        "action": "preview",
        "in_stock_only": "on",
        "published_only": "on",
        "exclude_skus": "",
        "exclude_tags": "",
        "exclude_categories": "",
        "price_min_ratio": "",
        "price_max_ratio": "",
        "pinned_skus": "",
        "preview_sku": "SKU-0",
        "preview_placement": "product",
    }
    data.update(overrides)
    return data


def widget_skus(store: Store) -> list[str]:
    response = Client().get(
        "/api/v1/recommendations",
        {"site_key": store.site_key, "sku": "SKU-0", "limit": "4"},
        HTTP_ORIGIN="https://ann.example",
    )
    assert response.status_code == 200, response.content
    return [item["sku"] for item in response.json()["items"]]


def served(response: Any, which: str) -> list[str]:
    return [item.sku for item in getattr(response.context["preview"], which).answer.items]


def test_the_page_shows_the_saved_rules_and_the_privacy_section(shop):
    client, store = shop

    response = client.get(url(store))

    assert response.status_code == 200
    assert response.context["forms"]["rules"].initial["in_stock_only"] is True
    assert b"What is sent to the network" in response.content or b"what is sent to the network" in response.content


def test_a_preview_shows_the_effect_without_saving(shop):
    client, store = shop

    response = client.post(url(store), rules_post(exclude_tags="clearance", exclude_skus="SKU-1"))

    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.catalog_size == 8
    counts = {c.rule: (c.current, c.proposed) for c in preview.counts}
    assert counts == {
        "excluded_sku": (0, 1),
        "excluded_tag": (0, 1),
        "excluded_category": (0, 0),
        "out_of_stock": (1, 1),
        "unpublished": (0, 0),
    }
    assert (preview.removed_current, preview.removed_proposed) == (1, 3)
    assert served(response, "before") == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    assert served(response, "after") == ["SKU-2", "SKU-4", "SKU-6", "SKU-7"]
    assert preview.dropped_skus == ["SKU-1", "SKU-3"]
    assert preview.added_skus == ["SKU-6", "SKU-7"]
    store.refresh_from_db()
    assert "recommendations" not in store.settings
    assert widget_skus(store) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]


def test_saving_rules_changes_what_the_widget_answers_at_once(shop):
    client, store = shop
    assert widget_skus(store) == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]  # now cached for 300 s in this process

    response = client.post(url(store), rules_post(action="save", pinned_skus="SKU-7", exclude_skus="SKU-2"))

    assert response.status_code == 302
    assert response["Location"] == url(store) + "#rules"
    store.refresh_from_db()
    assert store.settings["recommendations"] == {
        "in_stock_only": True,
        "published_only": True,
        "exclude_skus": ["SKU-2"],
        "exclude_tags": [],
        "exclude_categories": [],
        "price_min_ratio": None,
        "price_max_ratio": None,
        "pinned_skus": ["SKU-7"],
    }
    assert widget_skus(store) == ["SKU-7", "SKU-1", "SKU-3", "SKU-4"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"pinned_skus": "SKU-1, NOPE-9"}, "pinned_skus", "Not in your catalog: NOPE-9."),
        ({"price_min_ratio": "2", "price_max_ratio": "1"}, "price_max_ratio", "must not be below the lowest"),
        ({"price_min_ratio": "-1"}, "price_min_ratio", "greater than or equal to 0"),
        ({"price_max_ratio": "abc"}, "price_max_ratio", "Enter a number."),
        ({"exclude_skus": "SKU-1", "pinned_skus": "SKU-1"}, "pinned_skus", "Pinned and excluded at once: SKU-1."),
        ({"exclude_tags": "\n".join(f"t{n}" for n in range(201))}, "exclude_tags", "At most 200 entries"),
    ],
)
def test_bad_rules_come_back_with_a_clear_message_and_nothing_is_saved(shop, overrides, field, message):
    client, store = shop

    response = client.post(url(store), rules_post(action="save", **overrides))

    assert response.status_code == 400
    errors = response.context["forms"]["rules"].errors[field]
    assert any(message in error for error in errors), errors
    store.refresh_from_db()
    assert "recommendations" not in store.settings


def test_placements_are_saved_and_sent_with_the_widget_answer(shop):
    client, store = shop
    data = {"section": "placements"}
    for placement in ("product", "cart", "home"):
        data |= {f"{placement}_title": "", f"{placement}_count": "4", f"{placement}_layout": "grid"}
    data |= {"product_title": "Goes with it", "product_count": "6", "product_layout": "row"}

    response = client.post(url(store), data)

    assert response.status_code == 302
    row = PlacementSettings.objects.get(store=store, placement="product")
    assert (row.title, row.count, row.layout) == ("Goes with it", 6, "row")
    answer = Client().get(
        "/api/v1/recommendations", {"site_key": store.site_key, "sku": "SKU-0"}, HTTP_ORIGIN="https://ann.example"
    )
    assert answer.json()["settings"] == {"title": "Goes with it", "layout": "row", "count": 6, "anonymous_events": True}


def test_a_placement_count_out_of_range_is_refused(shop):
    client, store = shop
    data = {"section": "placements"}
    for placement in ("product", "cart", "home"):
        data |= {f"{placement}_title": "", f"{placement}_count": "4", f"{placement}_layout": "grid"}
    data["cart_count"] = "21"

    response = client.post(url(store), data)

    assert response.status_code == 400
    assert response.context["forms"]["placements"].errors["cart_count"] == [
        "Ensure this value is less than or equal to 20."
    ]
    assert not PlacementSettings.objects.filter(store=store).exists()


def test_attribution_and_network_settings_are_saved(shop):
    client, store = shop

    first = client.post(url(store), {"section": "attribution", "assisted": "on", "window_hours": "48"})
    second = client.post(url(store), {"section": "network"})  # the box unticked

    assert (first.status_code, second.status_code) == (302, 302)
    store.refresh_from_db()
    assert store.settings["attribution"] == {"assisted": True, "window_hours": 48}
    assert store.settings["network"] == {"enabled": False}
    page = client.get(url(store))
    assert page.context["forms"]["attribution"].initial == {"assisted": True, "window_hours": 48}
    assert page.context["network_enabled"] is False


def test_an_unknown_section_is_a_400(shop):
    client, store = shop

    response = client.post(url(store), {"section": "billing"})

    assert response.status_code == 400
    assert b"Unknown settings section." in response.content


def test_another_stores_settings_are_404_and_unchanged(shop):
    client, _ = shop
    other = create_store(platform=Store.Platform.CUSTOM, domain="bob.example", name="Bob's")

    get = client.get(url(other))
    post = client.post(url(other), rules_post(action="save", exclude_tags="x"))

    assert (get.status_code, post.status_code) == (404, 404)
    other.refresh_from_db()
    assert other.settings == {}


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(shop):
    _, store = shop

    response = Client().get(url(store))

    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login?next=")


def test_a_null_character_in_a_rule_is_refused_not_a_500(shop):
    client, store = shop

    response = client.post(url(store), rules_post(action="save", exclude_tags="sale\x00"))

    assert response.status_code == 400
    assert response.context["forms"]["rules"].errors["exclude_tags"] == ["Null characters are not allowed."]


def test_the_preview_shows_as_many_products_as_the_placement_does(shop):
    client, store = shop
    PlacementSettings.objects.create(store=store, placement="product", count=6)

    response = client.post(url(store), rules_post())

    assert served(response, "before") == ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-6", "SKU-7"]

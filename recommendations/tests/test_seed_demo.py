from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from catalog_sync.models import Product, Variant
from merchants.models import Store
from recommendations.models import RecommendationList
from recommendations.selectors import clear_serving_store_cache
from recommendations.views.widget import clear_answer_cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_store_cache() -> Iterator[None]:
    clear_serving_store_cache()  # the demo store's id differs from test to test
    clear_answer_cache()
    yield
    clear_serving_store_cache()
    clear_answer_cache()


def test_seed_demo_creates_the_demo_store_with_its_catalog_and_is_safe_to_rerun() -> None:
    first, second = StringIO(), StringIO()

    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)

    store = Store.objects.get(site_key="demo")
    # A Shopify shop, so the demo checkout's orders/create webhook is accepted; flagged so no sync calls Shopify.
    assert (store.platform, store.domain, store.status) == (
        Store.Platform.SHOPIFY,
        "bitrecs-demo.myshopify.com",
        Store.Status.ACTIVE,
    )
    assert store.settings == {"local_demo": True}
    assert Product.objects.filter(store=store).count() == 96
    # Links and pictures stay on this machine: the demo storefront's pages and its drawn placeholders.
    product = Product.objects.get(store=store, handle="golden-horizon-desk-mat-204970974")
    assert (product.url, product.image_url, product.currency) == (
        "/demo/products/golden-horizon-desk-mat-204970974",
        "/demo/images/golden-horizon-desk-mat-204970974.svg",
        "USD",
    )
    assert not Variant.objects.filter(product__store=store).exclude(image_url="").exists()
    assert Variant.objects.filter(product__store=store).count() == 356
    assert "site key: demo" in first.getvalue()
    assert "storefront: http://" in first.getvalue()
    assert "Products: 96 created, 0 updated." in first.getvalue()
    assert "Products: 0 created, 96 updated." in second.getvalue()


def test_seed_demo_builds_lists_so_the_widget_endpoint_answers_for_a_demo_sku(client: Client) -> None:
    # given
    call_command("seed_demo", stdout=StringIO())
    store = Store.objects.get(site_key="demo")
    product = Product.objects.filter(store=store).exclude(sku="").order_by("id").first()
    assert product is not None

    # when
    response = client.get("/api/v1/recommendations", {"site_key": "demo", "sku": product.sku})

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "local"
    assert body["placement"] == "product"
    assert len(body["items"]) == 4
    assert product.sku not in [item["sku"] for item in body["items"]]
    assert RecommendationList.objects.filter(store=store, placement="product").count() == 96
    assert RecommendationList.objects.filter(store=store, placement="cart").count() == 96
    assert RecommendationList.objects.filter(store=store, placement="home").count() == 1
    assert body["rec_id"] == RecommendationList.objects.get(store=store, product=product, placement="product").rec_id


def test_seed_demo_brings_an_older_custom_demo_store_up_to_date() -> None:
    # given: the demo store as an earlier seed_demo made it
    old = Store.objects.create(
        platform=Store.Platform.CUSTOM, domain="demo.bitrecs.local", site_key="demo", status=Store.Status.ACTIVE
    )

    # when
    call_command("seed_demo", stdout=StringIO())

    # then: the same store (its lists and stats keep their ids), now the demo Shopify shop
    store = Store.objects.get(site_key="demo")
    assert store.id == old.id
    assert (store.platform, store.domain, store.settings) == ("shopify", "bitrecs-demo.myshopify.com", {"local_demo": True})

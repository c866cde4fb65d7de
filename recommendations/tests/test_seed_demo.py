from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from catalog_sync.models import Product, Variant
from merchants.models import Store
from recommendations.models import RecommendationList

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_demo_store_with_its_catalog_and_is_safe_to_rerun() -> None:
    first, second = StringIO(), StringIO()

    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)

    store = Store.objects.get(site_key="demo")
    assert (store.platform, store.status) == (Store.Platform.CUSTOM, Store.Status.ACTIVE)
    assert Product.objects.filter(store=store).count() == 96
    assert Variant.objects.filter(product__store=store).count() == 356
    assert "site key: demo" in first.getvalue()
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

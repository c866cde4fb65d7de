from io import StringIO

import pytest
from django.core.management import call_command

from catalog_sync.models import Product, Variant
from merchants.models import Store

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

"""Whole shared data files, when ../shared/data sits beside the checkout; skipped otherwise."""

import pytest

from catalog_sync.models import Product, Variant
from catalog_sync.services import import_catalog_file
from catalog_sync.tests.conftest import SHARED_DATA

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside this checkout"),
]


@pytest.mark.parametrize(
    ("relative", "products", "variants", "skipped"),
    [
        ("catalogs/woocommerce/product_catalog.csv", 191, 1847, {}),
        ("catalogs/shopify/electronics_products.csv", 96, 356, {"duplicate SKU": 2}),
        ("catalogs/walmart/wallmart_1k_kaggle_trimmed.csv", 1000, 0, {}),
        ("catalogs/asos/sample_1k.csv", 999, 0, {"duplicate SKU": 1}),
        ("interactions/amazon_office/amazon_office_sample_5000.json", 4235, 0, {}),
    ],
)
def test_import_shared_file(store, relative, products, variants, skipped):
    # when
    report = import_catalog_file(store=store, path=SHARED_DATA / relative)

    # then
    assert (report.products_created, report.variants_created, report.skipped) == (products, variants, skipped)
    assert Product.objects.filter(store=store).count() == products
    assert Variant.objects.filter(product__store=store).count() == variants

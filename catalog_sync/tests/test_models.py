import pytest
from django.db import IntegrityError, transaction

from catalog_sync.models import OrderLine, Product, SyncRun, Variant
from catalog_sync.tests.factories import ProductFactory, VariantFactory
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

PII_WORDS = ("customer", "name", "email", "address", "phone", "ip", "first", "last", "city", "zip", "postal")


def test_order_line_has_no_customer_field():
    # given
    field_names = {field.name for field in OrderLine._meta.get_fields()}

    # then
    assert field_names == {
        "id",
        "created_at",
        "updated_at",
        "store",
        "order_id",
        "line_id",
        "product",
        "variant",
        "product_external_id",
        "variant_external_id",
        "sku",
        "quantity",
        "price",
        "currency",
        "rec_id",
    }
    assert [name for name in field_names if any(word in name.split("_") for word in PII_WORDS)] == []


def test_only_one_running_sync_per_store():
    # given
    store = StoreFactory.create()
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL)

    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncRun.objects.create(store=store, kind=SyncRun.Kind.IMPORT)


def test_finished_syncs_do_not_block_a_new_running_one():
    # given
    store = StoreFactory.create()
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.SUCCEEDED)
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.FAILED)
    SyncRun.objects.create(store=StoreFactory.create(), kind=SyncRun.Kind.FULL)

    # when
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.IMPORT)

    # then
    assert SyncRun.objects.filter(store=store, status=SyncRun.Status.RUNNING).count() == 1


def test_product_external_id_is_unique_per_store():
    # given
    product = ProductFactory.create(external_id="42")
    ProductFactory.create(external_id="42")  # another store

    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.create(store=product.store, external_id="42", title="Again")


def test_variant_external_id_is_unique_per_product():
    # given
    variant = VariantFactory.create(external_id="7")

    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.create(product=variant.product, external_id="7")

import dataclasses
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from catalog_sync.models import OrderLine, Product, SyncRun, Variant, customer_key
from catalog_sync.services import upsert_order_lines
from catalog_sync.tests.factories import ProductFactory, VariantFactory
from catalog_sync.types import OrderLinePayload
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

PII_WORDS = ("customer", "name", "email", "address", "phone", "ip", "first", "last", "city", "zip", "postal")


def test_order_line_has_no_customer_field_but_the_anonymous_key():
    # given
    field_names = {field.name for field in OrderLine._meta.get_fields()} - {"customer_key"}

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


def test_customer_key_is_a_keyed_hash_per_store_never_the_id():
    # given
    customer_id = "gid://shopify/Customer/7001"

    # when
    key = customer_key(store_id=1, customer_id=customer_id)

    # then: 64 hex digits, stable, unrelated across stores, and no trace of the id
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")
    assert key == customer_key(store_id=1, customer_id=f" {customer_id} ")
    assert key != customer_key(store_id=2, customer_id=customer_id)
    assert key != customer_key(store_id=1, customer_id="gid://shopify/Customer/7002")
    assert "7001" not in key
    assert customer_key(store_id=1, customer_id=None) == ""
    assert customer_key(store_id=1, customer_id="  ") == ""


def test_customer_key_depends_on_the_secret(settings):
    # given
    before = customer_key(store_id=1, customer_id="42")

    # when
    settings.SECRET_KEY = "another-secret-" * 4

    # then: without the secret the key cannot be recomputed from a guessed id
    assert customer_key(store_id=1, customer_id="42") != before


def test_order_sync_writes_the_customer_key_and_nothing_else_of_the_customer():
    # given
    store = StoreFactory.create()
    key = customer_key(store_id=store.id, customer_id="alice@example.com")
    payload = OrderLinePayload(
        order_id="1001", line_id="1", ordered_at=datetime(2024, 5, 1, tzinfo=UTC), product_external_id="p1"
    )

    # when
    upsert_order_lines(store=store, payloads=[dataclasses.replace(payload, customer_key=key)])

    # then
    line = OrderLine.objects.get(store=store)
    assert line.customer_key == key
    stored = OrderLine.objects.filter(store=store).values().get()
    assert "alice" not in " ".join(str(v) for v in stored.values())


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

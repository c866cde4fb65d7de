from decimal import Decimal

import factory

from catalog_sync.models import Product, Variant
from catalog_sync.types import ProductPayload, VariantPayload
from merchants.tests.factories import StoreFactory


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    external_id = factory.Sequence(lambda n: f"v{n}")
    sku = factory.Sequence(lambda n: f"VSKU-{n}")
    title = "Default Title"
    price = Decimal("10.00")


class VariantPayloadFactory(factory.Factory):
    class Meta:
        model = VariantPayload

    external_id = factory.Sequence(lambda n: f"v{n}")
    sku = factory.Sequence(lambda n: f"VSKU-{n}")
    title = "Default Title"
    price = Decimal("10.00")


class ProductPayloadFactory(factory.Factory):
    class Meta:
        model = ProductPayload

    external_id = factory.Sequence(lambda n: f"p{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    price = Decimal("10.00")
    variants = ()

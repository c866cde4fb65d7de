import factory
from django.utils import timezone

from merchants.models import PlatformCredential, Store


class StoreFactory(factory.django.DjangoModelFactory[Store]):
    class Meta:
        model = Store

    platform = Store.Platform.SHOPIFY
    domain = factory.Sequence(lambda n: f"shop-{n}.myshopify.com")
    name = factory.LazyAttribute(lambda o: o.domain)
    status = Store.Status.ACTIVE
    installed_at = factory.LazyFunction(timezone.now)


class PlatformCredentialFactory(factory.django.DjangoModelFactory[PlatformCredential]):
    class Meta:
        model = PlatformCredential

    store = factory.SubFactory(StoreFactory)
    access_token = factory.Sequence(lambda n: f"shpat_token_{n}")

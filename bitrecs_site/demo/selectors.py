"""Reads of the demo storefront: the demo store, its catalog pages and the variant a cart line points at."""

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from catalog_sync.models import Product, Variant
from merchants.models import Store

DEMO_SITE_KEY = "demo"
PAGE_SIZE = 24


@dataclass(frozen=True)
class CatalogPage:
    products: list[Product]
    number: int
    count: int


def get_demo_store() -> Store | None:
    """The demo store (site key `demo`), or None before `seed_demo` ran."""
    return Store.objects.filter(site_key=DEMO_SITE_KEY).first()


def _on_sale(store: Store) -> QuerySet[Product]:
    return Product.objects.filter(store=store, status=Product.Status.ACTIVE, is_published=True)


def get_catalog_page(*, store: Store, number: int) -> CatalogPage:
    """One page of the shop's products (PAGE_SIZE, in catalog order); a page past the end gives the last one."""
    total = _on_sale(store).count()
    count = max(1, -(-total // PAGE_SIZE))
    number = min(max(1, number), count)
    start = (number - 1) * PAGE_SIZE
    products = list(_on_sale(store).order_by("id")[start : start + PAGE_SIZE])
    return CatalogPage(products=products, number=number, count=count)


def get_demo_product(*, store: Store, handle: str) -> Product | None:
    """A product on sale by its handle, with its variants in position order."""
    variants = Prefetch("variants", queryset=Variant.objects.order_by("position", "id"))
    return _on_sale(store).filter(handle=handle).prefetch_related(variants).first()


def find_variant(*, store: Store, variant_pk: int | None = None, sku: str = "") -> Variant | None:
    """The variant a cart form names: by its row id (variant external ids repeat across products in a CSV
    catalog), else by SKU (a variant's, then the product's first in-stock variant)."""
    variants = Variant.objects.select_related("product").filter(
        product__store=store, product__status=Product.Status.ACTIVE, product__is_published=True
    )
    if variant_pk is not None:
        return variants.filter(pk=variant_pk).first()
    if not sku:
        return None
    return (
        variants.filter(sku=sku).order_by("id").first()
        or variants.filter(product__sku=sku).order_by("-in_stock", "position", "id").first()
        or variants.filter(product__external_id=sku).order_by("-in_stock", "position", "id").first()
    )

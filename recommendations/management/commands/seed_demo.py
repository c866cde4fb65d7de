from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from bitrecs_site.demo.selectors import DEMO_SITE_KEY
from bitrecs_site.demo.services import (
    DEMO_CURRENCY,
    DEMO_MERCHANT_EMAIL,
    DEMO_MERCHANT_PASSWORD,
    DEMO_SHOP,
    ensure_demo_merchant,
    ensure_demo_store,
    localise_demo_catalog,
)
from catalog_sync.services import import_catalog_file
from recommendations.services import rebuild_store_lists

__all__ = ["DEMO_CATALOG", "DEMO_DOMAIN", "DEMO_SITE_KEY", "Command"]

DEMO_DOMAIN = DEMO_SHOP
DEMO_CATALOG = Path(settings.BASE_DIR) / "catalog_sync" / "fixtures" / "demo_catalog.csv"


class Command(BaseCommand):
    help = (
        "Create the demo store (site key `demo`, the Shopify shop of the /demo/ storefront), import the demo "
        "catalog and build its recommendation lists synchronously (no worker needed); safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        store = ensure_demo_store()
        report = import_catalog_file(store=store, path=DEMO_CATALOG, fmt="shopify", currency=DEMO_CURRENCY)
        localise_demo_catalog(store=store)
        built = rebuild_store_lists(store=store)
        skus = list(store.products.exclude(sku="").order_by("id").values_list("sku", flat=True)[:5])
        self.stdout.write(f"site key: {store.site_key}")
        self.stdout.write(f"products: {store.products.count()}")
        for line in report.summary_lines():
            self.stdout.write(f"  {line}")
        self.stdout.write(
            f"recommendation lists: {built.product_lists} product, {built.cart_lists} cart, "
            f"{built.home_lists} home ({built.seconds:.1f}s)"
        )
        self.stdout.write(f"sample SKUs: {', '.join(skus)}")
        if skus:
            self.stdout.write(f"try: /api/v1/recommendations?site_key={store.site_key}&sku={skus[0]}")
        self.stdout.write(f"storefront: {settings.APP_URL}/demo/")
        if ensure_demo_merchant(store=store) is not None:
            self.stdout.write(
                f"portal: {settings.APP_URL}/portal/ (demo merchant: {DEMO_MERCHANT_EMAIL} / {DEMO_MERCHANT_PASSWORD})"
            )

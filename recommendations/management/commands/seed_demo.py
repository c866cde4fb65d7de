from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from catalog_sync.services import import_catalog_file
from merchants.models import Store
from merchants.services.stores import create_store
from recommendations.services import rebuild_store_lists

DEMO_SITE_KEY = "demo"
DEMO_DOMAIN = "demo.bitrecs.local"
DEMO_CATALOG = Path(settings.BASE_DIR) / "catalog_sync" / "fixtures" / "demo_catalog.csv"


class Command(BaseCommand):
    help = (
        "Create the demo store (site key `demo`), import the demo catalog and build its recommendation lists "
        "synchronously (no worker needed); safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(site_key=DEMO_SITE_KEY).first()
        if store is None:
            store = create_store(
                platform="custom", domain=DEMO_DOMAIN, site_key=DEMO_SITE_KEY, name="Bitrecs demo store"
            )
        report = import_catalog_file(store=store, path=DEMO_CATALOG, fmt="shopify")
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

"""Reads of a store's catalog, order lines and sync runs; every one is scoped to a store."""

from django.db.models import QuerySet

from catalog_sync.models import OrderLine, Product, SyncRun
from merchants.models import Store


def list_products_for_store(*, store: Store) -> QuerySet[Product]:
    """Return the store's products, oldest first."""
    return Product.objects.filter(store=store).order_by("id")


def get_product_by_sku(*, store: Store, sku: str) -> Product | None:
    """Return the store's product with this SKU (or, failing that, this external id), None if unknown."""
    products = Product.objects.filter(store=store)
    return products.filter(sku=sku).order_by("id").first() or products.filter(external_id=sku).first()


def list_order_lines_for_store(*, store: Store) -> QuerySet[OrderLine]:
    """Return the store's order lines, oldest order first."""
    return OrderLine.objects.filter(store=store).order_by("created_at", "id")


def list_customer_order_ids(*, store: Store, customer_key: str) -> tuple[int, list[str]]:
    """Return how many of the store's order lines one customer's anonymous key links, and their order ids (oldest
    first); (0, []) for no key."""
    if not customer_key:
        return 0, []
    lines = OrderLine.objects.filter(store=store, customer_key=customer_key)
    orders: dict[str, None] = {}
    for order_id in lines.order_by("created_at", "id").values_list("order_id", flat=True):
        orders.setdefault(order_id, None)
    return lines.count(), list(orders)


def get_running_sync(*, store: Store) -> SyncRun | None:
    """Return the store's running sync or import, None when idle."""
    return SyncRun.objects.filter(store=store, status=SyncRun.Status.RUNNING).first()


def get_latest_sync(*, store: Store, kind: str | None = None) -> SyncRun | None:
    """Return the store's most recent sync run (of this kind, when given)."""
    runs = SyncRun.objects.filter(store=store)
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs.order_by("-started_at", "-id").first()

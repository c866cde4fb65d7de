"""Webhook deliveries applied to the catalog: product changes (whose lists are then refreshed) and order lines.

merchants verifies, stores and deduplicates each delivery, then routes it by topic to catalog_sync's tasks
(merchants.services.webhooks.WEBHOOK_ROUTES). These services apply one delivery and record its outcome on the
WebhookEvent through merchants' process_webhook_event.
"""

from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from catalog_sync.clients import SkippedRecord
from catalog_sync.clients.shopify.webhooks import deleted_product_id, order_lines_from_webhook, product_from_webhook
from catalog_sync.clients.woocommerce import WooCommerceCatalog, WooCommerceDeleted, WooCommerceVariationChanged
from catalog_sync.models import OrderLine, Product
from catalog_sync.services.catalog import upsert_order_lines, upsert_products
from catalog_sync.services.sync import (  # the sync caches the store context
    _woocommerce_context_key,
    woocommerce_catalog,
)
from catalog_sync.types import ProductPayload
from merchants.models import Store, WebhookEvent
from merchants.services.webhooks import process_webhook_event


@dataclass(frozen=True)
class ProductsChanged:
    """The products of one store a delivery created, updated or deleted, by external id."""

    store_id: int
    external_ids: tuple[str, ...]


def apply_product_webhook(*, event_id: int, give_up: bool = False) -> ProductsChanged | None:
    """Apply a stored product delivery to the store's catalog; returns the product it changed (None for none).

    PlatformUnavailable (re-reading a WooCommerce variation's product) propagates for the task to retry, unless
    `give_up`; see merchants.services.webhooks.process_webhook_event.
    """
    changed: list[ProductsChanged] = []

    def apply(event: WebhookEvent) -> str:
        store = event.store
        if store is None or not store.is_active:
            return WebhookEvent.Status.IGNORED
        if event.platform == Store.Platform.SHOPIFY:
            external_id = _apply_shopify_product(store, event.topic, _body(event))
        else:
            external_id = _apply_woocommerce_product(store, _body(event))
        changed.append(ProductsChanged(store_id=store.id, external_ids=(external_id,)))
        return WebhookEvent.Status.PROCESSED

    process_webhook_event(event_id=event_id, handler=apply, give_up=give_up)
    return changed[0] if changed else None


def apply_order_webhook(*, event_id: int, give_up: bool = False) -> WebhookEvent | None:
    """Apply a stored order delivery to the store's order lines and record its outcome on the event."""
    return process_webhook_event(event_id=event_id, handler=_apply_order, give_up=give_up)


def _body(event: WebhookEvent) -> dict[str, Any]:
    return event.payload if isinstance(event.payload, dict) else {}


def _apply_order(event: WebhookEvent) -> str:
    store = event.store
    if store is None or not store.is_active:
        return WebhookEvent.Status.IGNORED
    if event.platform == Store.Platform.SHOPIFY and event.topic == "refunds/create":
        return WebhookEvent.Status.IGNORED  # order lines keep what was bought; refunds are not stored yet
    if event.platform == Store.Platform.SHOPIFY:
        lines, skipped = order_lines_from_webhook(_body(event))
        upsert_order_lines(store=store, payloads=lines)
        if skipped and not lines:
            raise ValueError("; ".join(record.reason for record in skipped))
        return WebhookEvent.Status.PROCESSED
    mapped = WooCommerceCatalog.payload_from_webhook("order", _body(event), currency=_woocommerce_currency(store))
    if isinstance(mapped, WooCommerceDeleted):
        OrderLine.objects.filter(store=store, order_id=mapped.external_id).delete()
    elif isinstance(mapped, SkippedRecord):
        raise ValueError(f"order {mapped.external_id or '?'}: {mapped.reason}")
    elif isinstance(mapped, list):
        upsert_order_lines(store=store, payloads=mapped)
    return WebhookEvent.Status.PROCESSED


def _apply_shopify_product(store: Store, topic: str, body: dict[str, Any]) -> str:
    """Apply a products/* delivery; returns the external id of the product."""
    if topic == "products/delete":
        external_id = deleted_product_id(body)
        if not external_id:
            raise ValueError("products/delete without an id")
        Product.objects.filter(store=store, external_id=external_id).delete()
        return external_id
    payload = product_from_webhook(body)
    if isinstance(payload, SkippedRecord):
        raise ValueError(f"product {payload.external_id or '?'}: {payload.reason}")
    upsert_products(store=store, payloads=[payload])
    return payload.external_id


def _apply_woocommerce_product(store: Store, body: dict[str, Any]) -> str:
    """Apply a product.* delivery; returns the external id of the product (a variation's parent for a variation)."""
    cached = cache.get(_woocommerce_context_key(store))
    mapped = WooCommerceCatalog.payload_from_webhook(
        "product", body, currency=_woocommerce_currency(store), category_paths=cached[1] if cached else None
    )
    if isinstance(mapped, WooCommerceDeleted):
        Product.objects.filter(store=store, external_id=mapped.external_id).delete()
        return mapped.external_id
    if isinstance(mapped, WooCommerceVariationChanged):
        # The body is one variation: re-read its product so the stored variant set stays complete.
        mapped = woocommerce_catalog(store=store).product(mapped.product_external_id)
    if isinstance(mapped, SkippedRecord):
        raise ValueError(f"product {mapped.external_id or '?'}: {mapped.reason}")
    if not isinstance(mapped, ProductPayload):
        raise ValueError("a product delivery mapped to something other than a product")
    upsert_products(store=store, payloads=[mapped])
    return mapped.external_id


def _woocommerce_currency(store: Store) -> str:
    """The store's currency as the last sync read it, else the one its stored products carry."""
    cached = cache.get(_woocommerce_context_key(store))
    if cached:
        return cached[0]
    return Product.objects.filter(store=store).exclude(currency="").values_list("currency", flat=True).first() or ""

"""Writes of the demo storefront: the demo store itself, its cart (in the Django session) and its checkout.

The checkout does what Shopify does when an order is placed: it POSTs a signed `orders/create` webhook to the
app's own `/webhooks/shopify` over HTTP (APP_URL), so the order travels the same path as a real store's.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from bitrecs_site.demo.selectors import DEMO_SITE_KEY
from bitrecs_site.http import error_text
from catalog_sync.models import Product, Variant
from catalog_sync.services.sync import LOCAL_DEMO_FLAG
from merchants.exceptions import InvalidRequest
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access

logger = logging.getLogger(__name__)

DEMO_SHOP = "bitrecs-demo.myshopify.com"
DEMO_NAME = "Bitrecs demo store"
DEMO_CURRENCY = "USD"
# The demo store's merchant, who signs in to the portal by email (local mode only; seed_demo prints both).
DEMO_MERCHANT_EMAIL = "merchant@demo.local"
DEMO_MERCHANT_PASSWORD = "demo"  # noqa: S105 - local mode only, printed by seed_demo
WEBHOOK_API_VERSION = "2026-10"
WEBHOOK_TIMEOUT_SECONDS = 10.0
CART_SESSION_KEY = "demo_cart"
ORDER_SESSION_KEY = "demo_last_order"
MAX_LINES = 50
MAX_QUANTITY = 99
MAX_PROPERTIES = 10
_PROPERTY = re.compile(r"^properties\[([^\[\]]{1,64})\]$")
_ATTRIBUTE = re.compile(r"^attributes\[([^\[\]]{1,64})\]$")
CART_ATTRIBUTES_SESSION_KEY = "demo_cart_attributes"


def ensure_demo_store() -> Store:
    """Create the demo store, or bring an older one up to date: an active Shopify store (shop DEMO_SHOP) whose
    order webhooks our endpoint accepts, flagged as a local demo so that no sync ever calls Shopify for it."""
    store = Store.objects.filter(site_key=DEMO_SITE_KEY).first()
    if store is None:
        store = create_store(platform=Store.Platform.SHOPIFY, domain=DEMO_SHOP, site_key=DEMO_SITE_KEY, name=DEMO_NAME)
    store.platform = Store.Platform.SHOPIFY
    store.domain = DEMO_SHOP
    store.status = Store.Status.ACTIVE
    store.settings = {**store.settings, LOCAL_DEMO_FLAG: True}
    store.save(update_fields=["platform", "domain", "status", "settings", "updated_at"])
    return store


def ensure_demo_merchant(*, store: Store) -> Any:
    """The demo store's merchant account (email sign-in to the portal), in local mode only; None otherwise."""
    if not settings.LOCAL_MODE:
        return None
    user, created = get_user_model().objects.get_or_create(
        username=DEMO_MERCHANT_EMAIL, defaults={"email": DEMO_MERCHANT_EMAIL}
    )
    if created or not user.has_usable_password():
        user.set_password(DEMO_MERCHANT_PASSWORD)
        user.save(update_fields=["password"])
    grant_store_access(user=user, store=store)
    return user


def localise_demo_catalog(*, store: Store) -> int:
    """Point product links at the demo's pages and images at its drawn placeholders (nothing leaves the machine)."""
    updated = Product.objects.filter(store=store).update(
        url=Concat(Value("/demo/products/"), F("handle")),
        image_url=Concat(Value("/demo/images/"), F("handle"), Value(".svg")),
        currency=DEMO_CURRENCY,
    )
    Variant.objects.filter(product__store=store).exclude(image_url="").update(image_url="")
    return updated


# --- Cart ------------------------------------------------------------------------------------------------


@dataclass
class CartLine:
    variant_pk: int
    product_id: str
    variant_id: str
    handle: str
    sku: str
    title: str
    variant_title: str
    price: str
    quantity: int
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return Decimal(self.price) * self.quantity

    @property
    def rec_id(self) -> str:
        return self.properties.get("_bitrecs_rec_id", "")


def cart_lines(*, session: SessionBase) -> list[CartLine]:
    """The session's cart lines, in the order they were added."""
    return [CartLine(**row) for row in session.get(CART_SESSION_KEY, [])]


def _save(session: SessionBase, lines: list[CartLine]) -> None:
    session[CART_SESSION_KEY] = [asdict(line) for line in lines]


def _bracketed_fields(
    form: Mapping[str, str], *, prefix: str, shape: re.Pattern[str], what: str, keep_empty: bool
) -> dict[str, str]:
    """The `prefix[name]` fields of a cart form, by name (Shopify's /cart/add reads them so); 400 on junk."""
    fields: dict[str, str] = {}
    for key, value in form.items():
        if not key.startswith(f"{prefix}["):
            continue
        match = shape.match(key)
        if match is None or len(value) > 255 or "\x00" in value or "\x00" in key:
            raise InvalidRequest(f"{key[:80]!r} is not a {what}; use {prefix}[name] with a short value.")
        if value or keep_empty:
            fields[match.group(1)] = value
    if len(fields) > MAX_PROPERTIES:
        raise InvalidRequest(f"At most {MAX_PROPERTIES} {what}s.")
    return fields


def parse_line_properties(form: Mapping[str, str]) -> dict[str, str]:
    """The `properties[name]` fields of a cart form (an empty one is no property); 400 on junk."""
    return _bracketed_fields(form, prefix="properties", shape=_PROPERTY, what="line property", keep_empty=False)


def parse_cart_attributes(form: Mapping[str, str]) -> dict[str, str]:
    """The `attributes[name]` fields of a cart form (Shopify keeps them on the cart, then the order); an empty one
    removes the attribute (update_cart_attributes); 400 on junk."""
    return _bracketed_fields(form, prefix="attributes", shape=_ATTRIBUTE, what="cart attribute", keep_empty=True)


def update_cart_attributes(*, session: SessionBase, attributes: Mapping[str, str]) -> dict[str, str]:
    """Merge attributes into the cart's (an empty value removes one, as on Shopify); returns the cart's attributes."""
    merged = {**session.get(CART_ATTRIBUTES_SESSION_KEY, {}), **attributes}
    session[CART_ATTRIBUTES_SESSION_KEY] = {key: value for key, value in merged.items() if value}
    return dict(session[CART_ATTRIBUTES_SESSION_KEY])


def parse_quantity(value: str | None) -> int:
    """A cart quantity from a form: 1 when absent, else an integer from 1 to MAX_QUANTITY (400 otherwise)."""
    if value is None or value == "":
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_QUANTITY:
        raise InvalidRequest(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    return int(value)


def add_to_cart(*, session: SessionBase, variant: Variant, quantity: int, properties: dict[str, str]) -> int:
    """Add a variant; the same variant with the same properties adds up, other properties make a new line
    (as on Shopify). Returns the number of items in the cart."""
    if not variant.in_stock:
        raise InvalidRequest(f"{variant.product.title} ({variant.title}) is sold out.")
    lines = cart_lines(session=session)
    for line in lines:
        if line.variant_pk == variant.pk and line.properties == properties:
            line.quantity = min(MAX_QUANTITY, line.quantity + quantity)
            break
    else:
        if len(lines) >= MAX_LINES:
            raise InvalidRequest(f"A cart holds at most {MAX_LINES} lines.")
        product = variant.product
        price = variant.price if variant.price is not None else product.price
        lines.append(
            CartLine(
                variant_pk=variant.pk,
                product_id=product.external_id,
                variant_id=variant.external_id,
                handle=product.handle,
                sku=variant.sku or product.sku,
                title=product.title,
                variant_title="" if variant.title == "Default Title" else variant.title,
                price=str(price if price is not None else Decimal("0.00")),
                quantity=quantity,
                properties=properties,
            )
        )
    _save(session, lines)
    return sum(line.quantity for line in lines)


def remove_from_cart(*, session: SessionBase, index: int) -> None:
    """Remove the cart's line at `index` (0-based); an index past the end changes nothing."""
    lines = cart_lines(session=session)
    if 0 <= index < len(lines):
        del lines[index]
        _save(session, lines)


# --- Checkout --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOrder:
    order_id: int
    name: str
    lines: list[CartLine]
    subtotal: Decimal
    delivered_status: int | None  # the webhook endpoint's HTTP status; None when it could not be reached
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.delivered_status is not None and 200 <= self.delivered_status < 300


def order_payload(
    *, order_id: int, name: str, lines: list[CartLine], now: str, attributes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An `orders/create` body shaped like Shopify's (no customer: the demo shopper is anonymous)."""
    subtotal = sum((line.total for line in lines), Decimal("0.00"))
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": name,
        "created_at": now,
        "updated_at": now,
        "processed_at": now,
        "currency": DEMO_CURRENCY,
        "presentment_currency": DEMO_CURRENCY,
        "financial_status": "paid",
        "subtotal_price": str(subtotal),
        "total_line_items_price": str(subtotal),
        "total_discounts": "0.00",
        "total_tax": "0.00",
        "total_price": str(subtotal),
        "source_name": "web",
        "note_attributes": [{"name": key, "value": value} for key, value in (attributes or {}).items()],
        "line_items": [
            {
                "id": order_id * 100 + position,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{order_id * 100 + position}",
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "sku": line.sku,
                "title": line.title,
                "variant_title": line.variant_title or None,
                "quantity": line.quantity,
                "price": line.price,
                "total_discount": "0.00",
                "discount_allocations": [],
                "taxable": True,
                "properties": [{"name": key, "value": value} for key, value in line.properties.items()],
            }
            for position, line in enumerate(lines, start=1)
        ],
    }


def webhook_headers(*, topic: str, shop: str, body: bytes, secret: str) -> dict[str, str]:
    """The headers Shopify sends with a webhook: topic, shop, version, ids, time and the body's HMAC."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": WEBHOOK_API_VERSION,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
    }


def checkout(*, session: SessionBase) -> DemoOrder:
    """Place the cart's order: deliver a signed `orders/create` webhook to APP_URL/webhooks/shopify, as Shopify
    would, and empty the cart once it was accepted (a refused or lost delivery keeps the cart for a retry)."""
    lines = cart_lines(session=session)
    if not lines:
        raise InvalidRequest("The cart is empty; add a product first.")
    order_id = int(time.time() * 1000) * 1000 + secrets.randbelow(1000)
    name = f"#D{order_id % 1_000_000:06d}"
    payload = order_payload(
        order_id=order_id,
        name=name,
        lines=lines,
        now=timezone.now().isoformat(),
        attributes=session.get(CART_ATTRIBUTES_SESSION_KEY, {}),
    )
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = webhook_headers(topic="orders/create", shop=DEMO_SHOP, body=body, secret=settings.SHOPIFY_API_SECRET)
    status: int | None = None
    error = ""
    try:
        response = requests.post(
            f"{settings.APP_URL}/webhooks/shopify", data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
        status = response.status_code
        if status >= 300:
            error = error_text(response, fields=("detail", "error"))
    except requests.RequestException as exc:
        error = f"{settings.APP_URL} could not be reached ({type(exc).__name__})."
    order = DemoOrder(
        order_id=order_id,
        name=name,
        lines=lines,
        subtotal=sum((line.total for line in lines), Decimal("0.00")),
        delivered_status=status,
        error=error,
    )
    if order.delivered:
        _save(session, [])
        session.pop(CART_ATTRIBUTES_SESSION_KEY, None)
    session[ORDER_SESSION_KEY] = {**asdict(order), "subtotal": str(order.subtotal)}
    logger.info("demo.checkout", extra={"order_id": order_id, "status": status, "lines": len(lines)})
    return order


def last_order(*, session: SessionBase) -> DemoOrder | None:
    """The order this session placed last (for the thank-you page), or None."""
    row = session.get(ORDER_SESSION_KEY)
    if not isinstance(row, dict):
        return None
    return DemoOrder(
        **{
            **row,
            "lines": [CartLine(**line) for line in row.get("lines", [])],
            "subtotal": Decimal(row.get("subtotal", "0")),
        }
    )

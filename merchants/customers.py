"""A store's anonymous key for a platform customer: what links one shopper's orders without holding who they are.

`customer_key` is an HMAC-SHA256 of the platform's customer id with a key derived from SECRET_KEY and the store's
id: the same customer gets unrelated keys in two stores, and a key cannot be reversed or recomputed without the
secret. The id itself is never stored. Webhook bodies lose their customer fields to the PII scrub before they are
stored, so the intake computes the key first (`customer_key_in`) and keeps it under CUSTOMER_KEY_FIELD;
catalog_sync's order mappings and the customers/redact handler read it from there.
"""

from typing import Any

from django.utils.crypto import salted_hmac

from bitrecs_site.http import json_get, platform_id

# Where a stored webhook body carries the key of its customer (the body's own customer fields are scrubbed).
CUSTOMER_KEY_FIELD = "bitrecs_customer_key"
CUSTOMER_KEY_LENGTH = 64


def customer_key(*, store_id: int, customer_id: str | int | None) -> str:
    """Return the store's anonymous key for a platform customer id ("" for a guest): HMAC-SHA256, hex."""
    value = "" if customer_id is None else str(customer_id).strip()
    if not value:
        return ""
    return salted_hmac(f"bitrecs.catalog_sync.customer_key.{store_id}", value, algorithm="sha256").hexdigest()


def customer_id_in(*, platform: str, body: Any) -> str:
    """Return the customer id an order (or redact) body names, "" for a guest: Shopify's customer.id (REST number
    or GraphQL gid), WooCommerce's customer_id (0 for a guest)."""
    if platform == "woocommerce":
        found = platform_id(json_get(body, "customer_id"))
        return "" if found == "0" else found
    return platform_id(json_get(body, "customer", "id"))


def customer_key_in(*, store_id: int, platform: str, body: Any) -> str:
    """Return the store's key for the customer an order (or redact) body names ("" when it names none)."""
    return customer_key(store_id=store_id, customer_id=customer_id_in(platform=platform, body=body))


def stored_customer_key(body: Any) -> str:
    """Return the customer key the intake kept in a stored webhook body, or "" (a guest, or no key kept)."""
    value = json_get(body, CUSTOMER_KEY_FIELD)
    if isinstance(value, str) and len(value) == CUSTOMER_KEY_LENGTH and all(c in "0123456789abcdef" for c in value):
        return value
    return ""

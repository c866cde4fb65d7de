"""Creating stores, recording what happens to their installation, and re-encrypting credentials."""

import logging
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from merchants.exceptions import InvalidRequest
from merchants.fields import rotate
from merchants.models import PlatformCredential, Store, StoreEvent, StoreMembership
from merchants.selectors import data_request_answered

logger = logging.getLogger(__name__)


def record_store_event(*, store: Store, kind: str, detail: dict[str, Any] | None = None) -> StoreEvent:
    """Append an installation event (install, uninstall, redaction …) to the store's history."""
    return StoreEvent.objects.create(store=store, kind=kind, detail=detail or {})


# A data request's report lists at most this many of the orders the customer's key links (the count is exact).
DATA_REQUEST_MAX_ORDERS = 1000


def record_customer_data_request(
    *, store: Store, request_id: Any, keyed_order_lines: int = 0, keyed_orders: Sequence[str] = ()
) -> StoreEvent | None:
    """Record the answer to a customers/data_request once per request id (None when already recorded).

    No customer record is held (no name, email or id); what the customer's anonymous key links is reported: the
    number of order lines and the orders they belong to, which the merchant can look up and send to the customer.
    """
    if data_request_answered(store=store, request_id=request_id):
        return None
    return record_store_event(
        store=store,
        kind=StoreEvent.Kind.DATA_REQUEST,
        detail={
            "data_request_id": request_id,
            "customer_records_held": 0,
            "keyed_order_lines": keyed_order_lines,
            "keyed_orders": list(keyed_orders)[:DATA_REQUEST_MAX_ORDERS],
        },
    )


def grant_store_access(*, user: Any, store: Store) -> StoreMembership:
    """Let `user` see and manage `store` in the portal; idempotent."""
    membership, _ = StoreMembership.objects.get_or_create(user=user, store=store)
    return membership


def mark_store_needs_reauth(*, store: Store, reason: str) -> None:
    """Mark the store as needing re-authorisation (its syncs stop) and record why; no-op if already marked."""
    if store.status == Store.Status.NEEDS_REAUTH:
        return
    store.status = Store.Status.NEEDS_REAUTH
    store.save(update_fields=["status", "updated_at"])
    record_store_event(store=store, kind=StoreEvent.Kind.REAUTH_REQUIRED, detail={"reason": reason[:500]})
    logger.warning("store.reauth_required", extra={"store_id": store.id, "platform": store.platform})


@transaction.atomic
def create_store(*, platform: str, domain: str, site_key: str | None = None, name: str = "") -> Store:
    """Create an active store by hand (no platform credentials) and record its installation."""
    if platform not in Store.Platform.values:
        raise InvalidRequest(f"Unknown platform {platform!r}; use one of {', '.join(Store.Platform.values)}.")
    domain = domain.strip().lower()
    if not domain or len(domain) > 255 or any(ch.isspace() for ch in domain):
        raise InvalidRequest(f"{domain!r} is not a valid domain.")
    if Store.objects.filter(platform=platform, domain=domain).exists():
        raise InvalidRequest(f"A {platform} store for {domain} already exists.")
    if site_key is not None and Store.objects.filter(site_key=site_key).exists():
        raise InvalidRequest(f"The site key {site_key!r} is taken.")
    store = Store(platform=platform, domain=domain, name=name or domain, status=Store.Status.ACTIVE)
    if site_key is not None:
        store.site_key = site_key
    store.installed_at = timezone.now()
    store.full_clean()
    store.save()
    record_store_event(store=store, kind=StoreEvent.Kind.INSTALLED, detail={"by": "create_store"})
    return store


ENCRYPTED_CREDENTIAL_FIELDS = ("access_token", "refresh_token", "consumer_key", "consumer_secret", "webhook_secret")


def rotate_credential_encryption() -> int:
    """Re-encrypt every stored credential with the first FIELD_ENCRYPTION_KEYS key; returns rows rewritten.

    Works on the raw column values, so a row is never decrypted into memory longer than needed.
    """
    rewritten = 0
    for credential_id in PlatformCredential.objects.values_list("id", flat=True):
        with transaction.atomic():
            tokens = _raw_tokens(credential_id)
            updates = {field: rotate(token) for field, token in tokens.items() if token}
            if updates:
                _write_raw_tokens(credential_id, updates)
                rewritten += 1
    logger.info("credentials.rotated", extra={"rows": rewritten})
    return rewritten


def _raw_tokens(credential_id: int) -> dict[str, str]:
    table = PlatformCredential._meta.db_table
    columns = ", ".join(connection.ops.quote_name(name) for name in ENCRYPTED_CREDENTIAL_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [credential_id])  # noqa: S608
        row = cursor.fetchone()
    return dict(zip(ENCRYPTED_CREDENTIAL_FIELDS, row or (), strict=False))


def _write_raw_tokens(credential_id: int, updates: dict[str, str]) -> None:
    table = PlatformCredential._meta.db_table
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in updates)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
            [*updates.values(), credential_id],
        )

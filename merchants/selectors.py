"""Reads of merchant data: which stores a portal user may see (tenant scoping below every view), compliance answers."""

from typing import Any

from django.db.models import QuerySet

from merchants.models import Store, StoreEvent


def stores_for_user(*, user: Any) -> QuerySet[Store]:
    """The stores `user` may see in the portal: staff see every store, others only those they are a member of."""
    if not getattr(user, "is_authenticated", False):
        return Store.objects.none()
    if user.is_staff:
        return Store.objects.order_by("name", "domain")
    return Store.objects.filter(memberships__user=user).order_by("name", "domain")


def get_store_for_user(*, user: Any, store_id: int) -> Store:
    """One store `user` may see; raises Store.DoesNotExist for another tenant's store (the view answers 404)."""
    return stores_for_user(user=user).get(pk=store_id)


def data_request_answered(*, store: Store, request_id: Any) -> bool:
    """Whether the store's answer to this customers/data_request id is recorded (a request redelivered under another
    event id is answered once); never for a request without an id."""
    return request_id is not None and (
        StoreEvent.objects.filter(
            store=store, kind=StoreEvent.Kind.DATA_REQUEST, detail__data_request_id=request_id
        ).exists()
    )

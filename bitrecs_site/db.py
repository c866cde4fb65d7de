"""Small database helpers shared by the apps."""

from django.db.models import Model, QuerySet


def delete_in_batches(queryset: "QuerySet[Model]", *, batch: int = 10_000) -> int:
    """Delete the queryset's rows `batch` at a time (short transactions, bounded memory); returns how many went."""
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += queryset.model._default_manager.filter(pk__in=ids).delete()[0]

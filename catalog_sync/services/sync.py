"""Platform syncs (to be built)."""

from merchants.models import Store


def start_store_sync(*, store: Store) -> None:
    """Enqueue a full catalog sync of the store after the current transaction commits."""
    from catalog_sync.tasks import sync_store_task  # tasks.py imports this module

    sync_store_task.delay_on_commit(store.id)  # type: ignore[attr-defined]

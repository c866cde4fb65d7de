"""Small database helpers shared by the apps."""

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Model, QuerySet


def delete_in_batches(queryset: "QuerySet[Model]", *, batch: int = 10_000) -> int:
    """Delete the queryset's rows `batch` at a time (short transactions, bounded memory); returns how many went."""
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += queryset.model._default_manager.filter(pk__in=ids).delete()[0]


def require_migrated_database(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Stop a management command with a clear message when the database lacks tables (a fresh checkout not migrated
    yet, or a DATABASE_URL pointing at a new database), instead of failing on the first query with a traceback."""
    executor = MigrationExecutor(connections[using])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        apps = sorted({migration.app_label for migration, _ in pending})
        raise CommandError(
            f"The database has {len(pending)} unapplied migration(s) ({', '.join(apps)}): "
            "run `make migrate` (or `python manage.py migrate`) first."
        )

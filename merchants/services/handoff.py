"""Handing work to the apps above merchants by Celery task name, so that merchants imports none of them.

A task is named, not imported: a worker (which loads every app's tasks) runs it. Where the task is registered in
this process it is called as a task (so eager mode, in tests, runs it here); otherwise it is sent by name.
"""

import functools
from typing import Any

from celery import Signature, current_app
from django.db import transaction

from merchants.models import Store

# catalog_sync's task that opens a sync of a store and runs it step by step.
SYNC_STORE_TASK = "catalog_sync.sync_store"
# catalog_sync's task that deletes the order lines one customer's anonymous key links (customers/redact).
REDACT_CUSTOMER_TASK = "catalog_sync.redact_customer"
# catalog_sync's task that reports what one customer's anonymous key links (customers/data_request).
REPORT_CUSTOMER_DATA_TASK = "catalog_sync.report_customer_data"


def task_signature(name: str, *args: Any) -> Signature:
    """A call of the task registered under `name`, with positional args, ready to enqueue."""
    if current_app.conf.task_always_eager:
        _load_every_task()  # eager runs tasks in this process: it needs their code, as a worker has
    return current_app.signature(name, args=args)


def enqueue_task(name: str, *args: Any) -> None:
    """Enqueue the task registered under `name` now."""
    task_signature(name, *args).delay()


def enqueue_task_on_commit(name: str, *args: Any) -> None:
    """Enqueue the task registered under `name` once the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(task_signature(name).delay, *args))


def start_first_sync(*, store: Store) -> None:
    """Enqueue the first catalog sync of a store that has just been installed, once the install commits."""
    enqueue_task_on_commit(SYNC_STORE_TASK, store.id)


@functools.cache
def _load_every_task() -> None:
    current_app.autodiscover_tasks(force=True)

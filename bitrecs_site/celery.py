"""The Celery application: configured from Django settings (CELERY_*), tasks found in every app."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")

app = Celery("bitrecs_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**kwargs: Any) -> None:
    """Treat each task like a request: reuse the connection within CONN_MAX_AGE, drop it when broken or old.

    Celery's Django fixup would otherwise close every connection around every task (CELERY_DB_REUSE_MAX is
    set so it does not): the sync benchmark saw one new PostgreSQL session per sync step.
    """
    from django.db import close_old_connections

    task = kwargs.get("task")
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run inside the caller's transaction (tests): never close it, as Celery's own fixup does
    close_old_connections()

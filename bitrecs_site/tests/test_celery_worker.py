"""A real Celery worker process, on the configured broker, applying a task to the real database."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bitrecs_site.celery import app as celery_app
from merchants.models import Store, WebhookEvent
from merchants.services.webhooks import record_webhook_event
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(settings.BASE_DIR)


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """Start `celery worker` as a separate process that consumes a queue of its own, then stop it."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bitrecs_site.test_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bitrecs_site",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output.decode(errors="replace")[-4000:])  # shown by pytest when the test fails  # noqa: T201


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_real_worker_processes_a_webhook_event_through_the_broker(worker_queue: str) -> None:
    # given a stored delivery whose processing is sent to the broker, not run in this process
    store = StoreFactory.create(platform=Store.Platform.SHOPIFY)
    event, created = record_webhook_event(
        platform=Store.Platform.SHOPIFY,
        store=store,
        shop_domain=store.domain,
        topic="unknown/topic",
        dedup_key="evt-worker-1",
        payload={"id": 1},
    )
    assert created is True
    assert WebhookEvent.objects.get(id=event.id).status == WebhookEvent.Status.PENDING

    # when the worker process picks it up, then its outcome is written to the database
    assert _wait_for(lambda: WebhookEvent.objects.get(id=event.id).status != WebhookEvent.Status.PENDING)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.processed_at is not None

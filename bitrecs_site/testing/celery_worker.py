"""pytest fixture: a real `celery worker` process on the configured broker, sharing the test database."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bitrecs_site.celery import app as celery_app


def test_database_url() -> str:
    """A DATABASE_URL naming the test database this process uses (a file for SQLite)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class WorkerProcess:
    """A running worker: its main process, the queue it consumes, and the pids of its pool children."""

    process: subprocess.Popen[bytes]
    queue: str
    output: list[str] = field(default_factory=list)

    def children(self) -> list[int]:
        """Pids of the pool processes (forked by any thread of the main process, e.g. billiard's supervisor)."""
        pids: set[int] = set()
        for path in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                pids.update(int(pid) for pid in path.read_text().split())
            except FileNotFoundError:  # the thread ended while being read
                continue
        return sorted(pids)

    def kill(self) -> None:
        """SIGKILL the pool processes and the main process, as a crash or the OOM killer would."""
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def celery_worker_process() -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers (`start(env={...}, pool="prefork")`) consuming a queue of their own; stop them after.

    The test's own task calls go to that queue through the real broker (eager mode is off meanwhile).
    Tests using it need `django_db(transaction=True)`, so the worker sees committed rows.
    """
    queue = f"test-{uuid.uuid4().hex[:12]}"
    started: list[WorkerProcess] = []

    def start(*, env: dict[str, str] | None = None, pool: str = "solo", concurrency: int = 1) -> WorkerProcess:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bitrecs_site.test_settings",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": celery_app.conf.broker_url,
            **(env or {}),
        }
        command = [sys.executable, "-m", "celery", "-A", "bitrecs_site", "worker", "-Q", queue, "--pool", pool]
        command += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat"]
        process = subprocess.Popen(
            [*command, "--loglevel", "INFO"],
            cwd=settings.BASE_DIR,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(process=process, queue=queue)
        started.append(worker)
        return worker

    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield start
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        for worker in started:
            worker.process.terminate()
            try:
                output, _ = worker.process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                output, _ = worker.process.communicate()
            print(output.decode(errors="replace")[-20000:])  # shown by pytest when the test fails  # noqa: T201

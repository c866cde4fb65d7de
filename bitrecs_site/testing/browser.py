"""Real headless Chromium for browser tests: Debian's (`make system-packages` installs it), driven by Playwright's
Python package with executable_path; Playwright's own browser download is never used."""

import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.core.signals import request_finished, request_started
from playwright.sync_api import Browser, BrowserContext, sync_playwright

CHROMIUM = os.environ.get("BITRECS_CHROMIUM", "/usr/bin/chromium")
# As root, with no network: no sandbox, and none of Chromium's own background connections (the machine refuses them).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """One Chromium for a test package, closed with it.

    Playwright's sync API keeps an event loop running in this thread while it is open, so it is closed with the
    package: asyncio tests elsewhere need the thread free. The ORM calls of the tests are still synchronous.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


# The threads of this process that are serving a Django request right now (a live server's), by Django's own
# signals; a thread that died mid-request does not count.
_serving: set[threading.Thread] = set()
_serving_lock = threading.Lock()


def _request_started(**_: object) -> None:
    with _serving_lock:
        _serving.add(threading.current_thread())


def _request_finished(**_: object) -> None:
    with _serving_lock:
        _serving.discard(threading.current_thread())


def _still_serving() -> bool:
    with _serving_lock:
        return any(thread.is_alive() and thread is not threading.current_thread() for thread in _serving)


request_started.connect(_request_started, dispatch_uid="bitrecs-testing-serving-started")
request_finished.connect(_request_finished, dispatch_uid="bitrecs-testing-serving-finished")


def close_contexts(contexts: Iterable[BrowserContext], *, settle_seconds: float = 5.0) -> None:
    """Close a test's browser contexts, then wait for the requests they left in flight.

    Route handlers still running are dropped first: one that was fetching when its context closed raised into the
    next test ("Route.fetch: Request context disposed", seen in CI). Closing a page sends its last events (a beacon
    on pagehide), and the live server's thread that takes it writes to the database: if the test's database were
    flushed meanwhile, the two deadlock (seen in CI). So this waits, up to settle_seconds, until this process's Django
    is serving no request (request_started / request_finished; idle keep-alive connections do not count).
    """
    for context in contexts:
        context.unroute_all(behavior="ignoreErrors")
        context.close()
    deadline = time.monotonic() + settle_seconds
    while _still_serving() and time.monotonic() < deadline:
        time.sleep(0.01)

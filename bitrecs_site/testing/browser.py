"""Real headless Chromium for browser tests: Debian's (`make system-packages` installs it), driven by Playwright's
Python package with executable_path; Playwright's own browser download is never used."""

import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

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


def close_contexts(contexts: Iterable[BrowserContext], *, settle_seconds: float = 10.0) -> None:
    """Close a test's browser contexts, then wait for the requests they left in flight.

    Route handlers still running are dropped first: one that was fetching when its context closed raised into the
    next test ("Route.fetch: Request context disposed", seen in CI). Closing a page sends its last events (a beacon
    on pagehide), and the live server's thread that takes it writes to the database: if the test's database were
    flushed meanwhile, the two deadlock (seen in CI). So this waits, up to settle_seconds, until no request thread of
    this process (the live server's, named after socketserver's process_request_thread) is still running.
    """
    for context in contexts:
        context.unroute_all(behavior="ignoreErrors")
        context.close()
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline and any(
        "process_request_thread" in thread.name for thread in threading.enumerate() if thread.is_alive()
    ):
        time.sleep(0.02)

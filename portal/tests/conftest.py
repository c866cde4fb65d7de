"""Fixtures for the portal's tests: real headless Chromium (Debian's, driven by Playwright) on a live server.

One browser for the whole portal test package (closed with it, so asyncio tests elsewhere find the thread free),
a fresh context per test; `signed_in(user)` opens a page whose context carries that user's session cookie.
"""

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from bitrecs_site.testing.browser import close_contexts, launched_chromium

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives real headless Chromium (select with -m browser)")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def _block_outside(route: Any) -> None:
    route.abort()


@pytest.fixture
def open_page(browser: Browser, live_server: Any) -> Iterator[Callable[..., Page]]:
    """`open_page(path, viewport=PHONE, cookies=[...])`: a new context on the live server; nothing leaves the machine.

    The page's uncaught errors are collected in `page.errors` (a list of strings) for the test to assert on.
    """
    contexts: list[BrowserContext] = []

    def start(path: str = "/portal/", *, viewport: ViewportSize = DESKTOP, cookies: list[Any] | None = None) -> Page:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])"), _block_outside)
        if cookies:
            context.add_cookies(cookies)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors  # type: ignore[attr-defined]
        page.goto(live_server.url + path)
        return page

    yield start
    close_contexts(contexts)


def session_cookie_for(user: Any, url: str) -> dict[str, Any]:
    """A session cookie signed in as `user` (as Django's test client's force_login builds it), for `url`'s host."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"name": django_settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": url}


@pytest.fixture
def signed_in(open_page: Callable[..., Page], live_server: Any) -> Callable[..., Page]:
    """`signed_in(user, path, viewport=...)`: a page of the portal opened with `user`'s session."""

    def start(user: Any, path: str = "/portal/", **options: Any) -> Page:
        return open_page(path, cookies=[session_cookie_for(user, live_server.url)], **options)

    return start

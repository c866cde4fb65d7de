"""Fixtures for the demo storefront: the seeded demo store on a live server, and real headless Chromium.

Chromium is Debian's (`make system-packages` installs it) driven by Playwright's Python package; Playwright's
own browser download is never used. One browser per test session, a fresh context (cookies, storage) per test.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import Resolver404, resolve
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from bitrecs_site.demo.tests import urls as stand_in
from bitrecs_site.testing.browser import close_contexts, launched_chromium
from bitrecs_site.testing.celery_worker import wait_for
from merchants.models import Store
from recommendations.process_state import clear_process_caches
from recommendations.services.events import drain_event_spool

DESKTOP: ViewportSize = {"width": 1280, "height": 1600}  # tall: the placements are in view, where a shift would count
PHONE: ViewportSize = {"width": 390, "height": 844}

# Layout shifts as Chromium reports them (shifts right after an input do not count towards CLS).
RECORD_LAYOUT_SHIFTS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    const rect = (r) => [r.x, r.y, r.width, r.height].map(Math.round);
    const name = (n) => n ? `${n.nodeName}.${n.className || ""} ${(n.textContent || "").trim().slice(0, 40)}` : "";
    window.__shifts.push({ value: entry.value, at_ms: Math.round(entry.startTime), moved: entry.sources.map((s) => ({
      node: name(s.node), from: rect(s.previousRect), to: rect(s.currentRect) })) });
  }
}).observe({ type: "layout-shift", buffered: true });
"""
# The recommendations answer arrives late (after first paint), as on a slow phone network.
SLOW_ANSWERS = """
const realFetch = window.fetch;
window.fetch = (...args) => realFetch(...args).then(
  (response) => String(args[0]).includes("/api/v1/recommendations")
    ? new Promise((resolve) => setTimeout(() => resolve(response), 400)) : response);
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives real headless Chromium (select with -m browser)")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@dataclass
class Demo:
    url: str
    store: Store


@pytest.fixture
def demo(live_server: Any, settings: Any, transactional_db: None, tmp_path: Any) -> Iterator[Demo]:
    """The seeded demo store served by a live server that is also APP_URL (the checkout's webhook target)."""
    settings.APP_URL = live_server.url
    # This test's own event spool, drained when the test reads events (no drain thread outliving the test).
    settings.EVENTS_SPOOL_URL = ""
    settings.EVENTS_SPOOL_DIR = str(tmp_path / "event-spool")
    settings.EVENTS_DRAIN_IN_PROCESS = False
    settings.EVENTS_DRAIN_INTERVAL_SECONDS = 3600
    settings.ROOT_URLCONF = "bitrecs_site.demo.tests.urls"
    call_command("seed_demo", stdout=StringIO())
    clear_process_caches()
    stand_in.received.clear()
    yield Demo(url=live_server.url, store=Store.objects.get(site_key="demo"))
    clear_process_caches()


@dataclass
class Shop:
    """A shopper's browser on the demo store: the page, its uncaught errors, and what it sent."""

    context: BrowserContext
    page: Page
    url: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.url + path)
        return self.page

    def cards(self, placement: str = "product", count: int = 4) -> list[dict[str, Any]]:
        """Wait for `count` cards in the placement, then describe them."""
        selector = f'[data-bitrecs-placement="{placement}"] a.bitrecs-card'
        self.page.wait_for_function(
            f"document.querySelectorAll({selector!r}).length >= {count}", timeout=15_000, polling=50
        )
        return self.page.eval_on_selector_all(
            selector,
            """cards => cards.map(a => { const img = a.querySelector("img"); return {
                sku: a.dataset.bitrecsSku, rec_id: a.dataset.bitrecsRecId, href: a.href,
                name: a.querySelector(".bitrecs-name").textContent,
                price: a.querySelector(".bitrecs-price").textContent,
                img: {loading: img.loading, width: img.getAttribute("width"), height: img.getAttribute("height"),
                      alt: img.alt, src: img.getAttribute("src")}}; })""",
        )

    def layout_shifts(self) -> list[dict[str, Any]]:
        """The page's layout shifts so far, after two more frames: each one's value, time and what moved (node,
        rect before and after), so a failing `== []` says which element moved."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return list(self.page.evaluate("window.__shifts"))

    def storage(self) -> dict[str, Any]:
        """Everything the page's origin keeps on the device."""
        return {
            "cookies": sorted(c["name"] for c in self.context.cookies()),
            "local": self.page.evaluate("Object.keys(localStorage)"),
            "session": self.page.evaluate("Object.keys(sessionStorage)"),
        }


def _block_outside(route: Any) -> None:
    route.abort()


@pytest.fixture
def open_shop(browser: Browser, demo: Demo) -> Iterator[Callable[..., Shop]]:
    """Open a shopper's browser: `open_shop(viewport=PHONE, consent=True, slow=True)`."""
    contexts: list[BrowserContext] = []

    def start(*, viewport: ViewportSize = DESKTOP, consent: bool | None = None, slow: bool = False) -> Shop:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        # Nothing leaves this machine (the demo has no outside images or scripts; this proves it stays so).
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])"), _block_outside)
        if consent is not None:
            value = "granted" if consent else "denied"
            context.add_cookies([{"name": "demo_consent", "value": value, "url": demo.url}])
        context.add_init_script(RECORD_LAYOUT_SHIFTS)
        if slow:
            context.add_init_script(SLOW_ANSWERS)
        page = context.new_page()
        shop = Shop(context=context, page=page, url=demo.url)
        page.on("pageerror", lambda error: shop.errors.append(str(error)))
        return shop

    yield start
    close_contexts(contexts)


EVENT_FIELDS = ("event_id", "type", "sku", "rec_id", "placement", "arm", "session_id")


def _events_endpoint_exists() -> bool:
    try:
        match = resolve("/api/v1/events", urlconf="bitrecs_site.urls")
    except Resolver404:
        return False
    return match.func is not stand_in.record_events


def sent_events() -> list[dict[str, Any]]:
    """The events the widget sent, as the events endpoint stored them, or (until that endpoint exists) as the
    stand-in received them; each with `content_type` and `site_key` of its batch, absent fields as ""."""
    if _events_endpoint_exists():
        drain_event_spool()  # what the web process's drain thread does every few seconds, now
        model = apps.get_model("recommendations", "ShopperEvent")
        return [
            {"content_type": "text/plain", "site_key": row.store.site_key, **{f: getattr(row, f) for f in EVENT_FIELDS}}
            for row in model.objects.select_related("store").order_by("id")
        ]
    rows = []
    for batch in list(stand_in.received):
        for event in batch["events"]:
            assert set(event) <= {*EVENT_FIELDS, "ts"}, event
            assert isinstance(event["ts"], str), event
            fields = {f: event.get(f, "") for f in EVENT_FIELDS}
            rows.append({"content_type": batch["content_type"], "site_key": batch["site_key"], **fields})
    return rows


def wait_for_events(predicate: Callable[[dict[str, Any]], bool], *, count: int = 1) -> list[dict[str, Any]]:
    """Wait (up to 15 s) until at least `count` sent events match, and return the matching ones."""
    wait_for(lambda: len([e for e in sent_events() if predicate(e)]) >= count, timeout=15)
    return [e for e in sent_events() if predicate(e)]

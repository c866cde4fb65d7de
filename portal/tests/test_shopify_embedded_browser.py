"""The portal inside the Shopify admin, in real Chromium: the app home's script fetches portal pages with the ID token.

Shopify's App Bridge cannot load here (nothing leaves the machine); a stand-in served at its CDN address does the
one thing the page relies on: it adds `Authorization: Bearer <ID token>` to every fetch, with a token the test
signs as Shopify does (HS256 with the app secret, aud = the API key). No cookie carries the sign-in.
"""

import os
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from bitrecs_site.testing.browser import close_contexts
from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory
from portal.tests.conftest import DESKTOP, PHONE
from recommendations.models import RecommendationList, generate_rec_id

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))
SHOP = "alpha-boots.myshopify.com"
APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
STAND_IN = """(function () {
  var original = window.fetch;
  window.fetch = function (url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("Authorization", "Bearer %s");
    options.headers = headers;
    return original.call(window, url, options);
  };
}());"""


@pytest.fixture(autouse=True)
def _serving(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0


@pytest.fixture
def store() -> Store:
    store = StoreFactory.create(domain=SHOP, name="Alpha boots")
    PlatformCredentialFactory.create(store=store)
    products = [
        ProductFactory.create(
            store=store, external_id=f"p{n}", sku=f"BOOT-{n}", price=Decimal("80.00"), title=f"Boot {n}"
        )
        for n in range(6)
    ]
    RecommendationList.objects.create(
        store=store,
        product=products[0],
        query_id="p0",
        placement="product",
        source="local",
        items=[[f"p{n}", 1 - n / 10, "similar"] for n in range(1, 6)],
        rec_id=generate_rec_id("local"),
    )
    StoreFactory.create(domain="beta-hats.myshopify.com", name="Beta hats")
    return store


@pytest.fixture
def open_admin(browser: Browser, live_server: Any, fake_shopify: Any) -> Iterator[Callable[[ViewportSize], Page]]:
    """Open the app in a stand-in Shopify admin: `open_admin(viewport)`; its browser contexts close with the test."""
    contexts: list[BrowserContext] = []

    def start(viewport: ViewportSize) -> Page:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        token = fake_shopify.id_token(SHOP, lifetime=600)
        context.route("https://**/*", lambda route: route.abort())  # nothing leaves the machine...
        # ...but App Bridge's address, answered by the stand-in (the route added last is matched first)
        context.route(APP_BRIDGE, lambda route: route.fulfill(content_type="text/javascript", body=STAND_IN % token))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors  # type: ignore[attr-defined]
        page.goto(f"{live_server.url}/shopify/install?{urlencode(fake_shopify.install_query(SHOP, embedded='1'))}")
        return page

    yield start
    close_contexts(contexts)


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_embedded_portal_shows_the_tokens_store_and_saves_its_rules(open_admin, store, viewport, name):
    page = open_admin(viewport)

    page.wait_for_selector("#portal h1")
    overview = page.locator("#portal h1").inner_text()
    page.click("#embedded-nav a[data-page=settings]")
    page.wait_for_selector("#portal #rules")
    page.fill("#id_exclude_skus", "BOOT-1")
    page.click("#rules-save")
    page.wait_for_selector("#portal .portal-messages li")
    page.screenshot(path=SHOTS / f"g-shopify-settings-{name}.png", full_page=True)
    page.click("#embedded-nav a[data-page=why]")
    page.wait_for_selector("#why-sku")
    page.fill("#why-sku", "BOOT-0")
    page.click("#portal form button[type=submit]")
    page.wait_for_selector("#served")

    assert overview == "Alpha boots"
    assert page.locator("#portal .portal-messages li").count() == 0
    assert page.locator("#served tbody tr").evaluate_all("rows => rows.map(r => r.dataset.sku)") == [
        "BOOT-2",
        "BOOT-3",
        "BOOT-4",
        "BOOT-5",
    ]
    assert page.locator("#removed tr[data-sku]").evaluate_all("rows => rows.map(r => r.dataset.rule)") == [
        "excluded_sku"
    ]
    assert "Beta hats" not in page.locator("body").inner_text()
    assert [c["name"] for c in page.context.cookies() if c["name"] == django_settings.SESSION_COOKIE_NAME] == []
    store.refresh_from_db()
    assert store.settings["recommendations"]["exclude_skus"] == ["BOOT-1"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.errors == []
    page.screenshot(path=SHOTS / f"g-shopify-why-{name}.png", full_page=True)

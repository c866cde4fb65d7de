"""The Shopify app embed's script in real Chromium, on a theme-like product page of the shop's own domain.

The page is what `extensions/bitrecs-widget/blocks/embed.liquid` and `recommendations.liquid` render on a product
template (the embed's deferred script tag with the site key and server; the app block's container), around a
theme's own product form posting to /cart/add, with Shopify's Customer Privacy API on the page. The script is the
extension's asset, byte for byte.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route

from bitrecs_site.demo.tests.conftest import Demo
from bitrecs_site.testing.browser import close_contexts
from catalog_sync.models import Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ASSET = Path(__file__).resolve().parents[3] / "extensions" / "bitrecs-widget" / "assets" / "bitrecs-widget.js"
SHOP = "https://bitrecs-demo.myshopify.com"
# The Bitrecs server as the storefront sees it (a public origin: Chromium refuses a public page's requests to a
# loopback address); its requests are relayed to the live server outside the browser.
API = "https://recs.bitrecs.test"

# Shopify's Customer Privacy API as a storefront has it: loadFeatures() installs customerPrivacy, and the consent
# banner dispatches visitorConsentCollected when the visitor chooses. The test flips window.__analytics.
CUSTOMER_PRIVACY = """
window.__analytics = false;
window.Shopify = { loadFeatures(features, callback) {
  setTimeout(() => {
    window.Shopify.customerPrivacy = { analyticsProcessingAllowed: () => window.__analytics };
    callback();
  }, 10);
} };
"""

THEME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script src="{api}/extension-asset/bitrecs-widget.js" defer data-site-key="demo" data-api-base="{api}"
        data-currency="USD" data-locale="en"></script></head>
<body><main><h1>{title}</h1>
<form method="post" action="/cart/add" id="product-form" class="theme-product-form">
  <input type="hidden" name="id" value="{variant}"><input type="number" name="quantity" value="1">
  <button type="submit" name="add">Add to cart</button>
</form>
<div class="bitrecs-block" data-bitrecs-placement="product" data-bitrecs-sku="{sku}" data-bitrecs-limit="4"
     data-bitrecs-layout="grid" data-currency="USD" data-locale="en"></div>
</main></body></html>"""


@pytest.fixture
def theme_page(browser: Browser, demo: Demo) -> Iterator[Callable[[str], tuple[Page, list[dict[str, Any]]]]]:
    product = Product.objects.filter(store=demo.store).order_by("id").first()
    assert product is not None
    html = THEME_PAGE.format(api=API, title=product.title, sku=product.external_id, variant=1)
    contexts: list[BrowserContext] = []

    def serve_shop(route: Route) -> None:
        if route.request.url.split("?", 1)[0].endswith("/cart/add"):
            route.fulfill(status=200, content_type="text/plain", body="added")
        else:
            route.fulfill(status=200, content_type="text/html", body=html)

    def serve_api(route: Route) -> None:
        if route.request.url.split("?", 1)[0] == f"{API}/extension-asset/bitrecs-widget.js":
            route.fulfill(status=200, content_type="text/javascript", body=ASSET.read_bytes())
        else:
            route.fulfill(response=route.fetch(url=demo.url + route.request.url[len(API) :]))

    def open_page(path: str) -> tuple[Page, list[dict[str, Any]]]:
        context = browser.new_context()
        contexts.append(context)
        context.route(re.compile(r"^https://bitrecs-demo\.myshopify\.com/"), serve_shop)
        context.route(re.compile(r"^https://recs\.bitrecs\.test/"), serve_api)
        context.add_init_script(CUSTOMER_PRIVACY)
        page = context.new_page()
        errors: list[dict[str, Any]] = []
        page.on("pageerror", lambda error: errors.append({"error": str(error)}))
        page.goto(SHOP + path)
        page.wait_for_function("document.querySelectorAll('a[data-bitrecs-rec-id]').length >= 4", timeout=15_000)
        return page, errors

    yield open_page
    close_contexts(contexts)


def _form_fields(page: Page) -> dict[str, str]:
    return dict(page.eval_on_selector_all("#product-form input[type=hidden]", "els => els.map(e => [e.name, e.value])"))


def _device_storage(page: Page) -> dict[str, Any]:
    return {
        "cookies": sorted(c["name"] for c in page.context.cookies()),
        "local": page.evaluate("Object.keys(localStorage)"),
        "session": page.evaluate("Object.keys(sessionStorage)"),
    }


def test_a_shopper_who_did_not_come_through_a_recommendation_gets_no_rec_id_property(theme_page: Any) -> None:
    # When a shopper opens the product page directly
    page, errors = theme_page("/products/direct")

    # Then the theme's form is untouched and the cards rendered without an error
    assert _form_fields(page) == {"id": "1"}
    assert errors == []


def test_a_shopper_who_came_through_a_recommendation_carries_its_rec_id_into_the_cart(theme_page: Any) -> None:
    # Given the rec id of a card the shopper clicked on another page
    page, _ = theme_page("/products/first")
    rec_id = page.get_attribute("a[data-bitrecs-rec-id]", "data-bitrecs-rec-id")
    assert rec_id

    # When they land on the product page through that card
    page, errors = theme_page(f"/products/second?bitrecs_rec_id={rec_id}&bitrecs_arm=network")

    # Then the theme's own product form carries the hidden line-item properties, and the add posts them
    assert _form_fields(page) == {
        "id": "1",
        "properties[_bitrecs_rec_id]": rec_id,
        "properties[_bitrecs_arm]": "network",
    }
    with page.expect_request(lambda r: r.url.endswith("/cart/add")) as posted:
        page.click("#product-form button[type=submit]")
    assert f"properties%5B_bitrecs_rec_id%5D={rec_id}" in (posted.value.post_data or "")
    assert errors == []


def test_nothing_is_stored_before_analytics_consent_and_an_id_after(theme_page: Any) -> None:
    # Given Shopify's Customer Privacy API says analytics processing is not allowed
    page, errors = theme_page("/products/consent")

    # Then the recommendations render and nothing is kept on the device
    assert _device_storage(page) == {"cookies": [], "local": [], "session": []}

    # When the visitor accepts in the consent banner
    page.evaluate("window.__analytics = true; document.dispatchEvent(new Event('visitorConsentCollected'))")
    page.evaluate("window.Bitrecs.refresh()")

    # Then the widget keeps its anonymous visitor id (and only that kind of thing) on the device
    page.wait_for_function("Object.keys(localStorage).length > 0", timeout=5_000)
    assert page.evaluate("Object.keys(localStorage).every(k => k.startsWith('bitrecs'))") is True
    assert _device_storage(page)["cookies"] == []
    assert errors == []

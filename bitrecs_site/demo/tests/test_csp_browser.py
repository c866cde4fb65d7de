"""The demo storefront under the production Content-Security-Policy (script-src 'self', no inline script), in real
Chromium: the widget, the consent banner and a card's add-to-cart work, and the browser reports no violation.

Waits use locators (Playwright's own world), not wait_for_function, whose string predicates the page's CSP
refuses to evaluate.
"""

from typing import Any

import pytest

from bitrecs_site.demo.tests.conftest import Demo, Shop
from bitrecs_site.settings import CSP_POLICY

pytestmark = pytest.mark.browser

PRODUCT_HANDLE = "golden-horizon-desk-mat-204970974"  # a seeded demo product with stored lists


def test_the_demo_storefront_works_under_the_policy_with_no_violation(
    open_shop: Any, demo: Demo, settings: Any
) -> None:
    settings.CONTENT_SECURITY_POLICY = CSP_POLICY
    shop: Shop = open_shop()
    console: list[str] = []
    shop.page.on("console", lambda message: console.append(message.text))

    response = shop.page.goto(f"{demo.url}/demo/products/{PRODUCT_HANDLE}")
    assert response is not None
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    cards = shop.page.locator('[data-bitrecs-placement="product"] a.bitrecs-card')
    cards.nth(3).wait_for(timeout=15_000)
    shop.page.locator('[data-consent="grant"]').click()
    shop.page.locator("[data-consent-banner]").wait_for(state="hidden")
    shop.page.locator('[data-bitrecs-placement="product"] button.bitrecs-add').first.click()
    shop.page.locator("[data-cart-count]", has_text="1").first.wait_for(timeout=15_000)

    assert (policy["script-src"], policy["default-src"]) == ("'self'", "'self'")
    assert cards.count() == 4
    assert {c["name"]: c["value"] for c in shop.context.cookies()}["demo_consent"] == "granted"
    assert [text for text in console if "Content Security Policy" in text] == []
    assert shop.errors == []

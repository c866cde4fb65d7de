"""The WooCommerce plugin's portal link in real Chromium: the confirmation page, then its Continue button (a form
post under Django's CSRF check, with the browser's own cookie and Origin header) signs in."""

import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from merchants.models import PortalSignInNonce, Store
from merchants.services.portal_signin import sign_signin_link
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory
from portal.tests.conftest import PHONE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))
SECRET = "cs_" + "2" * 40


def signin_path(*, nonce: str) -> str:
    expires = int(time.time()) + 300
    signature = sign_signin_link(
        secret=SECRET, store_url="https://woo.example", key_id="9", expires=expires, nonce=nonce
    )
    query = {"store_url": "https://woo.example", "key_id": "9", "expires": expires, "nonce": nonce}
    return "/portal/woocommerce/signin?" + urlencode({**query, "signature": signature})


def test_the_link_opens_a_confirmation_and_continue_signs_in_to_the_store(open_page):
    # given
    store = StoreFactory.create(platform=Store.Platform.WOOCOMMERCE, domain="woo.example", name="Woo Example")
    PlatformCredentialFactory(store=store, access_token="", key_id="9", consumer_secret=SECRET)

    # when: the merchant opens the plugin's link, looks, and continues
    page = open_page(signin_path(nonce="c" * 32), viewport=PHONE)
    page.screenshot(path=SHOTS / "h-woocommerce-signin-confirm.png", full_page=True)
    heading = page.locator("h1").inner_text()
    unused = PortalSignInNonce.objects.count()
    page.click("text=Continue to the portal")
    page.wait_for_url(f"**/portal/stores/{store.pk}/")

    # then
    assert heading == "Continue to Woo Example"
    assert unused == 0
    assert page.locator("h1").inner_text() == "Woo Example"
    assert PortalSignInNonce.objects.filter(store=store, nonce="c" * 32).count() == 1
    assert page.errors == []

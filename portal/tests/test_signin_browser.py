"""The email sign-in in real Chromium, on a desktop and on a phone."""

import pytest
from django.contrib.auth import get_user_model

from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from portal.tests.conftest import PHONE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_merchant_signs_in_on_a_phone_and_sees_their_store(open_page):
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="pw-ann-1")
    store = create_store(platform=Store.Platform.CUSTOM, domain="ann.example", name="Ann's shop")
    grant_store_access(user=user, store=store)

    page = open_page("/portal/", viewport=PHONE)
    page.fill("#id_username", "ann@shop.example")
    page.fill("#id_password", "pw-ann-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/portal/stores/{store.pk}/")

    assert page.locator("h1").inner_text() == "Ann's shop"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.errors == []


def test_signed_in_fixture_opens_the_portal_as_that_user(signed_in):
    user = get_user_model().objects.create_user("bo@shop.example", email="bo@shop.example", password="x")
    store = create_store(platform=Store.Platform.CUSTOM, domain="bo.example", name="Bo's")
    grant_store_access(user=user, store=store)

    page = signed_in(user, f"/portal/stores/{store.pk}/")

    assert page.locator("h1").inner_text() == "Bo's"
    assert page.locator(".portal-nav a[aria-current=page]").inner_text() == "Overview"

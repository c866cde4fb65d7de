"""Signing in by email, and tenant scoping: a merchant reaches only their own stores' pages."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def merchant():
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="pw-ann-1")
    store = create_store(platform=Store.Platform.CUSTOM, domain="ann.example", name="Ann's")
    grant_store_access(user=user, store=store)
    return user, store


def test_the_portal_sends_a_visitor_who_is_not_signed_in_to_the_sign_in_page():
    response = Client().get("/portal/")

    assert response.status_code == 302
    assert response["Location"] == "/portal/login?next=/portal/"


def test_a_merchant_signs_in_by_email_and_lands_on_their_only_store(merchant):
    _user, store = merchant
    client = Client()

    signed_in = client.post("/portal/login", {"username": "ann@shop.example", "password": "pw-ann-1"})
    home = client.get("/portal/")

    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/portal/"
    assert home.status_code == 302
    assert home["Location"] == f"/portal/stores/{store.pk}/"
    page = client.get(home["Location"])
    assert page.status_code == 200
    assert "Ann&#x27;s" in page.content.decode()
    assert store.site_key in page.content.decode()


def test_a_wrong_password_is_refused_with_a_message():
    response = Client().post("/portal/login", {"username": "nobody@shop.example", "password": "nope"})

    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()


def test_another_stores_page_is_a_404_page_for_people(merchant):
    user, _ = merchant
    other = create_store(platform=Store.Platform.CUSTOM, domain="bob.example", name="Bob's")
    client = Client()
    client.force_login(user)

    response = client.get(f"/portal/stores/{other.pk}/")
    missing = client.get("/portal/stores/999999/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert missing.status_code == 404
    assert "Bob" not in response.content.decode()


def test_staff_see_every_store():
    staff = get_user_model().objects.create_user("ops@bitrecs.example", password="pw", is_staff=True)
    first = create_store(platform=Store.Platform.CUSTOM, domain="a.example", name="A")
    second = create_store(platform=Store.Platform.CUSTOM, domain="b.example", name="B")
    client = Client()
    client.force_login(staff)

    page = client.get("/portal/")

    assert page.status_code == 200
    body = page.content.decode()
    assert f"/portal/stores/{first.pk}/" in body
    assert f"/portal/stores/{second.pk}/" in body


def test_the_vendored_chart_js_is_the_pinned_npm_release():
    vendored = ROOT / "portal" / "static" / "portal" / "vendor" / "chart.umd.min.js"
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["chart.js"]

    assert vendored.read_text(encoding="utf-8").startswith(f"/*!\n * Chart.js v{pinned}\n")
    installed = ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
    if installed.exists():  # after `npm ci` (make setup-dev): the copy is byte for byte the registry's file
        assert vendored.read_bytes() == installed.read_bytes()


def test_a_merchants_menu_has_the_leaderboard_but_no_hotkey_page(merchant):
    user, store = merchant
    client = Client()
    client.force_login(user)

    page = client.get(f"/portal/stores/{store.pk}/").content.decode()

    assert 'href="/portal/leaderboard"' in page
    assert 'href="/portal/neuron"' not in page

"""The portal inside the Shopify admin: every page fetched with a real App Bridge ID token, for that shop only."""

from typing import Any

import pytest
from django.test import Client

from merchants.models import Store
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"


@pytest.fixture(autouse=True)
def _serving(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0


@pytest.fixture
def stores() -> tuple[Store, Store]:
    a = StoreFactory.create(domain=SHOP_A, name="Alpha boots")
    b = StoreFactory.create(domain=SHOP_B, name="Beta hats", settings={"recommendations": {"exclude_tags": ["b-only"]}})
    PlatformCredentialFactory.create(store=a)
    PlatformCredentialFactory.create(store=b)
    return a, b


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_overview_answers_for_the_tokens_shop_with_its_frame_ancestors(client: Client, fake_shopify, stores):
    response = client.get("/portal/shopify/overview", headers=bearer(fake_shopify.id_token(SHOP_A)))

    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Alpha boots</h1>" in body
    assert "Beta hats" not in body
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{SHOP_A} https://admin.shopify.com"
    assert "sessionid" not in response.cookies  # nothing to keep: each request carries its own token


def test_a_token_for_shop_a_never_shows_shop_b(client: Client, fake_shopify, stores):
    a, b = stores
    token = fake_shopify.id_token(SHOP_A)

    settings_page = client.get("/portal/shopify/settings", headers=bearer(token))
    session_page = client.get(f"/portal/stores/{b.pk}/settings", headers=bearer(token))

    assert settings_page.status_code == 200
    assert settings_page.context["store"] == a
    assert "b-only" not in settings_page.content.decode()
    assert session_page.status_code == 302  # the cookie-based portal knows no one: the token opens nothing there


def test_saving_settings_through_the_embedded_page_changes_only_the_tokens_store(client: Client, fake_shopify, stores):
    a, b = stores
    data = {
        "section": "rules",
        "action": "save",
        "in_stock_only": "on",
        "published_only": "on",
        "exclude_tags": "clearance",
    }

    response = client.post("/portal/shopify/settings", data, headers=bearer(fake_shopify.id_token(SHOP_A)))

    assert response.status_code == 200  # the redirect after saving is followed here, so the frame shows the page
    assert "Rules saved: the widget uses them now." in response.content.decode()
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.settings["recommendations"]["exclude_tags"] == ["clearance"]
    assert b.settings == {"recommendations": {"exclude_tags": ["b-only"]}}


def test_why_this_list_keeps_its_query(client: Client, fake_shopify, stores):
    response = client.get(
        "/portal/shopify/why", {"sku": "NOPE", "placement": "footer"}, headers=bearer(fake_shopify.id_token(SHOP_A))
    )

    assert response.status_code == 400
    assert "Unknown placement" in response.content.decode()


@pytest.mark.parametrize(
    ("make_headers", "detail"),
    [
        pytest.param(lambda fake: {}, "Open Bitrecs from your Shopify admin.", id="no-token"),
        pytest.param(lambda fake: bearer(fake.id_token(SHOP_A, lifetime=-11)), "Signature has expired", id="expired"),
        pytest.param(
            lambda fake: bearer(fake.id_token(SHOP_A, secret="not-the-app-secret")), "Signature verification", id="sig"
        ),
        pytest.param(lambda fake: bearer(fake.id_token(SHOP_A, aud="another-app")), "Audience", id="aud"),
    ],
)
def test_without_a_valid_token_the_answer_is_401_with_app_bridges_retry_header(
    client: Client, fake_shopify, stores, make_headers, detail
):
    response = client.get("/portal/shopify/overview", headers=make_headers(fake_shopify))

    assert response.status_code == 401
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert detail in response.content.decode()
    assert "Alpha boots" not in response.content.decode()


def test_an_unknown_page_is_404(client: Client, fake_shopify, stores):
    response = client.get("/portal/shopify/billing", headers=bearer(fake_shopify.id_token(SHOP_A)))

    assert response.status_code == 404
    assert "No portal page &#x27;billing&#x27;." in response.content.decode()


def test_the_app_home_loads_the_embedded_portal_script_and_keeps_its_frame_ancestors(
    client: Client, fake_shopify, stores
):
    params = fake_shopify.install_query(SHOP_A, embedded="1")

    response = client.get("/shopify/install", params)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-portal-url="/portal/shopify/overview"' in body
    assert 'src="/static/portal/embedded.js"' in body
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{SHOP_A} https://admin.shopify.com"

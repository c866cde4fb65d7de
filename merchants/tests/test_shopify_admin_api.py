"""Embedded admin API: App Bridge ID-token authentication and the frame-ancestors CSP header."""

import pytest

from merchants.models import Store
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

pytestmark = [
    pytest.mark.django_db,
    # The test settings' app secret is shorter than a real one (32 bytes); PyJWT warns about that.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

SHOP = "embedded-demo.myshopify.com"
URL = "/shopify/admin/api/store"
SHOP_CSP = f"frame-ancestors https://{SHOP} https://admin.shopify.com"


@pytest.fixture
def store():
    """An installed store holding a (non-expiring) offline token, so no token exchange happens."""
    store = StoreFactory(domain=SHOP, site_key="sk_embedded", settings={"placement": "product"})
    PlatformCredentialFactory(store=store)
    return store


def _get(client, token: str | None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return client.get(URL, headers=headers)


def test_a_valid_id_token_returns_the_shops_store_with_the_csp_header(client, fake_shopify, store):
    # given
    token = fake_shopify.id_token(SHOP)

    # when
    response = _get(client, token)

    # then
    assert response.status_code == 200
    assert response.json() == {
        "shop": SHOP,
        "site_key": "sk_embedded",
        "status": Store.Status.ACTIVE,
        "settings": {"placement": "product"},
    }
    assert response["Content-Security-Policy"] == SHOP_CSP
    assert "X-Frame-Options" not in response


def test_an_nbf_within_the_10_second_leeway_is_accepted(client, fake_shopify, store):
    # given: App Bridge often sends an nbf a few seconds ahead
    token = fake_shopify.id_token(SHOP, nbf_offset=8)

    # when
    response = _get(client, token)

    # then
    assert response.status_code == 200


def test_a_token_signed_with_the_previous_secret_is_accepted_during_rotation(client, fake_shopify, store, settings):
    # given
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-old-secret"
    token = fake_shopify.id_token(SHOP, secret="the-old-secret")

    # when
    response = _get(client, token)

    # then
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("make_token", "detail_part"),
    [
        pytest.param(lambda fake: fake.id_token(SHOP, lifetime=-11), "Signature has expired", id="expired"),
        pytest.param(lambda fake: fake.id_token(SHOP, aud="another-app"), "Audience doesn't match", id="wrong-aud"),
        pytest.param(
            lambda fake: fake.id_token(SHOP, secret="not-the-app-secret"), "Signature verification failed", id="bad-sig"
        ),
        pytest.param(
            lambda fake: fake.id_token(SHOP, iss="https://other-shop.myshopify.com/admin"),
            "do not match",
            id="iss-dest-mismatch",
        ),
        pytest.param(
            lambda fake: fake.id_token(SHOP, nbf_offset=30), "The token is not yet valid", id="nbf-in-the-future"
        ),
        pytest.param(lambda fake: fake.id_token(SHOP, omit=("exp",)), "must carry exp and nbf", id="no-exp"),
        pytest.param(lambda fake: fake.id_token(SHOP, omit=("nbf",)), "must carry exp and nbf", id="no-nbf"),
        pytest.param(
            lambda fake: fake.id_token(SHOP, iss="https://evil.com/admin", dest="https://evil.com"),
            "Invalid issuer",
            id="foreign-host",
        ),
        pytest.param(
            lambda fake: fake.id_token(SHOP, iss=f"http://{SHOP}/admin", dest=f"http://{SHOP}"),
            "not the same https shop",
            id="not-https",
        ),
        pytest.param(lambda fake: "not.a.jwt", "not valid", id="garbage"),
    ],
)
def test_invalid_id_tokens_are_refused_with_401_and_the_csp_header(
    client, fake_shopify, store, make_token, detail_part
):
    # given
    token = make_token(fake_shopify)

    # when
    response = _get(client, token)

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert detail_part in response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="shopify"'
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"  # App Bridge retries with a fresh token
    assert response["Content-Security-Policy"] == "frame-ancestors https://admin.shopify.com"
    assert fake_shopify.token_requests == []  # refused before any token exchange


def test_a_request_without_a_token_is_refused_with_401(client, fake_shopify, store):
    # when
    response = _get(client, None)

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["Content-Security-Policy"] == "frame-ancestors https://admin.shopify.com"
    assert "X-Shopify-Retry-Invalid-Session-Request" not in response


def test_a_non_bearer_authorization_header_is_refused_with_401(client, fake_shopify, store):
    # when
    response = _get(client, fake_shopify.id_token(SHOP), scheme="Basic")

    # then
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"

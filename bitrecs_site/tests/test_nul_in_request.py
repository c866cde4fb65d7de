"""A NUL character in a URL or a form is a 400 JSON answer, never a 500 from PostgreSQL (found by the fuzzer)."""

import pytest

pytestmark = pytest.mark.django_db

DETAIL = {"error": "bad_request", "detail": "The request carries a NUL character (%00); remove it."}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/recommendations?limit=2&site_key=%00&placement=home&sid=shopify_oauth_state",
        "/api/v1/recommendations?site_key=sk_a%00b&sku=A",
        "/shopify/install?shop=a%00.myshopify.com",
        "/woocommerce/return?user_id=%00",
        "/subnet/miner/stats/from/1%00/to/2",
        "/demo/products/mug%00",
        "/%00",
    ],
)
def test_a_nul_in_the_url_is_400_json(client, url):
    response = client.get(url)

    assert (response.status_code, response["Content-Type"], response.json()) == (400, "application/json", DETAIL)


def test_a_nul_in_a_form_body_is_400_json(client):
    response = client.post(
        "/demo/cart/add", "sku=MUG%00-1&quantity=1", content_type="application/x-www-form-urlencoded"
    )

    assert (response.status_code, response.json()) == (400, DETAIL)


def test_an_escaped_percent_sign_is_not_a_nul(client):
    response = client.get("/api/v1/recommendations?site_key=sk_unknown&sku=100%2500")

    assert response.status_code == 404
    assert response.json()["error"] == "store_not_found"

"""A query that repeats a parameter is refused with 400 JSON naming it, on every path but the widget API and admin."""

import pytest

from merchants.models import WooCommerceInstall

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("woocommerce_settings")]


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("/woocommerce/connect?store_url=https://a.example&store_url=https://b.example", "'store_url'"),
        ("/woocommerce/return?user_id=a&user_id=b", "'user_id'"),
        ("/subnet/validator/probes?count=1&count=500", "'count'"),
        ("/subnet/public_key?x=1&x=2", "'x'"),
        ("/healthz?a=1&b=2&b=3&a=4", "'a', 'b'"),
        ("/demo/?page=1&page=2", "'page'"),
        ("/api/v1/events?site_key=a&site_key=b", "'site_key'"),
        ("/no-such-path?q=1&q=1", "'q'"),
    ],
)
def test_a_repeated_parameter_gets_a_400_naming_it(client, url, names):
    # when
    response = client.get(url)

    # then
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "repeated_parameter",
        "detail": f"The query gives {names} more than once; give each parameter once.",
    }


def test_a_repeated_store_url_starts_no_woocommerce_connection(client):
    # when
    client.get("/woocommerce/connect?store_url=https://a.example&store_url=https://b.example")

    # then
    assert not WooCommerceInstall.objects.exists()


def test_a_repeated_parameter_in_a_post_query_is_refused_too(client):
    # when
    response = client.post("/woocommerce/callback?a=1&a=2", data=b"{}", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "repeated_parameter"


def test_single_parameters_and_array_parameters_pass(client):
    # when
    single = client.get("/woocommerce/connect?store_url=https://a.example&other=1")
    arrays = client.get("/healthz?ids[]=1&ids[]=2")

    # then
    assert single.status_code == 302
    assert arrays.status_code == 200


def test_the_widget_api_refuses_a_repeated_parameter_too(client):
    # when (the WSGI fast path leaves such a query to Django: recommendations.fast_path.parse_query)
    response = client.get("/api/v1/recommendations?site_key=nope&site_key=nope2")

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "repeated_parameter"

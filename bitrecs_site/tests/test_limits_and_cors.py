"""Limits and CORS from the hardening issue: repeated query parameters, 429s without a log line each, the
anonymous WooCommerce key request, internal hosts at connect time, and CORS on the store's own origins only."""

import logging

import pytest
from django.core.cache import cache

from merchants.models import WooCommerceInstall
from merchants.tests.factories import StoreFactory
from recommendations.selectors import build_serving_store, is_origin_allowed

pytestmark = pytest.mark.django_db

PRIVATE = "store_url must be your store's public address: "


@pytest.mark.parametrize(
    ("url", "repeated"),
    [
        ("/api/v1/recommendations?site_key=sk_a&site_key=sk_b&placement=home", "'site_key'"),
        ("/api/v1/recommendations?site_key=sk_a&sku=A&sku=B&limit=2&limit=3", "'limit', 'sku'"),
        ("/subnet/miner/stats/from/1/to/2?x=1&x=2", "'x'"),
    ],
)
def test_a_repeated_query_parameter_on_the_api_is_400(client, url, repeated):
    response = client.get(url)

    assert (response.status_code, response.json()) == (
        400,
        {
            "error": "repeated_parameter",
            "detail": f"The query gives {repeated} more than once; give each parameter once.",
        },
    )


def test_a_429_writes_no_warning_line_while_other_4xx_still_do(client, settings, caplog):
    settings.WIDGET_RATE_LIMIT = "2/min"
    cache.clear()  # the limiter's counters
    caplog.set_level(logging.WARNING, logger="django.request")

    statuses = [client.get("/api/v1/recommendations", {"site_key": "sk_none", "placement": "home"}).status_code]
    while statuses[-1] != 429 and len(statuses) < 5:
        statuses.append(client.get("/api/v1/recommendations", {"site_key": "sk_none", "placement": "home"}).status_code)

    assert statuses[0] == 404 and statuses[-1] == 429
    logged = [(r.levelname, r.status_code) for r in caplog.records if r.name == "django.request"]
    assert logged == [("WARNING", 404)] * statuses.count(404)


def test_anonymous_key_requests_are_limited_per_client_ip(client, settings):
    settings.WOOCOMMERCE_CONNECT_RATE_LIMIT = "2/hour"
    cache.clear()

    answers = [client.get("/woocommerce/connect", {"store_url": "https://shop.example"}) for _ in range(3)]
    other_ip = client.get("/woocommerce/connect", {"store_url": "https://shop.example"}, REMOTE_ADDR="203.0.113.7")

    assert [a.status_code for a in answers] == [302, 302, 429]
    assert answers[2].json()["error"] == "rate_limited"
    assert 3590 <= int(answers[2]["Retry-After"]) <= 3600
    assert other_ip.status_code == 302
    assert WooCommerceInstall.objects.count() == 3


@pytest.mark.parametrize(
    ("store_url", "detail"),
    [
        ("https://127.1", "store_url must use the store's host name, not an IP address."),
        ("https://10.0.0.1", "store_url must use the store's host name, not an IP address."),
        ("https://0x7f.1", "store_url must use the store's host name, not an IP address."),
        ("https://2130706433", "store_url must use the store's host name, not an IP address."),
        (
            "https://metadata.google.internal",
            f"{PRIVATE}metadata.google.internal is a name for a host inside a private network, not a public one.",
        ),
        (
            "https://printer.local",
            f"{PRIVATE}printer.local is a name for a host inside a private network, not a public one.",
        ),
        (
            "https://db.localhost",
            f"{PRIVATE}db.localhost is a name for a host inside a private network, not a public one.",
        ),
        (
            "https://nas.home.arpa",
            f"{PRIVATE}nas.home.arpa is a name for a host inside a private network, not a public one.",
        ),
        ("https://localhost", "'localhost' is not a public host name."),
    ],
)
def test_internal_hosts_are_refused_at_connect_time(client, settings, store_url, detail):
    settings.LOCAL_MODE = False

    response = client.get("/woocommerce/connect", {"store_url": store_url})

    assert (response.status_code, response.json()) == (400, {"error": "invalid_request", "detail": detail})
    assert WooCommerceInstall.objects.count() == 0


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example.com", True),
        ("http://shop.example.com", True),
        ("https://www.shop.example.com", True),
        ("http://localhost:8080", True),  # listed in full in allowed_origins
        ("https://shop.example.com:8443", False),
        ("http://shop.example.com:8080", False),
        ("https://shop.example.com:443", False),
        ("http://localhost:8081", False),
        ("ftp://shop.example.com", False),
        ("https://shop.example.com:99999", False),
    ],
)
def test_cors_takes_the_stores_host_on_its_default_port_only(origin, allowed):
    store = StoreFactory.create(domain="shop.example.com", settings={"allowed_origins": ["http://localhost:8080"]})

    assert is_origin_allowed(store=build_serving_store(store=store), origin=origin) is allowed

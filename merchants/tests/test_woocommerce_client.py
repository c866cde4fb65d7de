"""WooCommerceClient against the fake store: OAuth 1.0a over http, pagination headers, and error mapping."""

import base64
import socket

import pytest

from merchants.clients.woocommerce import SystemStatus, WooCommerceClient
from merchants.exceptions import PlatformRejected, PlatformUnavailable


@pytest.fixture
def key(fake_woocommerce):
    return fake_woocommerce.issue_key()


@pytest.fixture
def woo(fake_woocommerce, key) -> WooCommerceClient:
    return WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )


def test_get_system_status_returns_a_dataclass(woo, fake_woocommerce):
    assert woo.get_system_status() == SystemStatus(
        home_url=fake_woocommerce.base_url,
        site_url=fake_woocommerce.base_url,
        woocommerce_version="9.8.5",
        wordpress_version="6.8.1",
    )


def test_the_calls_of_one_client_share_one_kept_alive_connection(woo, fake_woocommerce):
    # when
    woo.get_system_status()
    woo.get("products")
    woo.get("products", params={"page": 2})

    # then
    assert len(fake_woocommerce.requests) == 3
    assert fake_woocommerce.connections == 1


def test_the_client_signs_every_call_with_a_fresh_oauth_nonce(woo, fake_woocommerce):
    # when
    woo.get_system_status()
    woo.get_system_status()

    # then
    first, second = fake_woocommerce.requests
    assert first.query["oauth_nonce"] != second.query["oauth_nonce"]


def test_the_timeout_comes_from_settings(settings, fake_woocommerce, key):
    # given
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 7.5

    # when
    client = WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # then
    assert client.timeout == 7.5
    assert "cs_" not in repr(client)


def test_unknown_keys_are_platform_rejected_with_woocommerce_code(fake_woocommerce):
    # given
    client = WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key="ck_" + "1" * 40, consumer_secret="cs_" + "2" * 40
    )

    # when / then
    with pytest.raises(PlatformRejected, match=r"HTTP 401.*woocommerce_rest_authentication_error"):
        client.get_system_status()


def test_a_revoked_key_is_platform_rejected(woo, fake_woocommerce, key):
    # given
    fake_woocommerce.revoke_key(key.consumer_key)

    # when / then
    with pytest.raises(PlatformRejected, match="Consumer key is invalid"):
        woo.get_system_status()


def test_a_key_without_read_permission_is_platform_rejected(fake_woocommerce):
    # given
    key = fake_woocommerce.issue_key(permissions="write")
    client = WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # when / then
    with pytest.raises(PlatformRejected, match="does not have read permissions"):
        client.get_system_status()


def test_an_unknown_route_is_platform_rejected(woo):
    with pytest.raises(PlatformRejected, match=r"HTTP 404.*rest_no_route"):
        woo.get("no/such/route")


def test_a_bad_parameter_is_platform_rejected(woo):
    with pytest.raises(PlatformRejected, match=r"HTTP 400.*rest_invalid_param"):
        woo.get("products", params={"per_page": 500})


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_platform_unavailable(woo, fake_woocommerce, status):
    # given
    fake_woocommerce.fail_with(status)

    # when / then
    with pytest.raises(PlatformUnavailable, match=f"HTTP {status}") as caught:
        woo.get_system_status()
    assert caught.value.retry_after is None


def test_429_is_platform_unavailable_with_retry_after(woo, fake_woocommerce):
    # given
    fake_woocommerce.fail_with(429, retry_after="120")

    # when / then
    with pytest.raises(PlatformUnavailable) as caught:
        woo.get("products")
    assert caught.value.retry_after == 120.0


def test_a_slow_store_is_platform_unavailable_after_the_timeout(fake_woocommerce, key, settings):
    # given
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 0.2
    fake_woocommerce.delay_seconds = 1.0
    client = WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # when / then
    with pytest.raises(PlatformUnavailable, match=r"did not answer within 0\.2 s") as caught:
        client.get_system_status()
    assert key.consumer_key not in caught.value.message


def test_a_closed_port_is_platform_unavailable(key):
    # given: a port nothing listens on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = WooCommerceClient(
        store_url=f"http://127.0.0.1:{port}", consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # when / then
    with pytest.raises(PlatformUnavailable, match="could not be reached") as caught:
        client.get_system_status()
    assert key.consumer_key not in caught.value.message


def test_a_store_without_pretty_permalinks_is_platform_rejected(fake_woocommerce, key):
    # given: /shop/wp-json/... is an ordinary 404 page on the fake, like a WordPress without the REST route
    client = WooCommerceClient(
        store_url=fake_woocommerce.base_url + "/shop",
        consumer_key=key.consumer_key,
        consumer_secret=key.consumer_secret,
    )

    # when / then
    with pytest.raises(PlatformRejected, match="HTTP 404"):
        client.get_system_status()


# The production path: https with HTTP Basic auth, against the fake store serving TLS.


def test_over_https_the_client_uses_basic_auth_and_no_oauth_parameters(fake_woocommerce_https):
    # given
    key = fake_woocommerce_https.issue_key()
    client = WooCommerceClient(
        store_url=fake_woocommerce_https.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # when
    status = client.get_system_status()

    # then
    assert status.home_url == fake_woocommerce_https.base_url
    (recorded,) = fake_woocommerce_https.requests
    expected = base64.b64encode(f"{key.consumer_key}:{key.consumer_secret}".encode()).decode()
    assert recorded.headers["authorization"] == f"Basic {expected}"
    assert not [name for name in recorded.query if name.startswith("oauth_")]


def test_over_https_a_wrong_secret_is_platform_rejected(fake_woocommerce_https):
    # given
    key = fake_woocommerce_https.issue_key()
    client = WooCommerceClient(
        store_url=fake_woocommerce_https.base_url, consumer_key=key.consumer_key, consumer_secret="cs_" + "0" * 40
    )

    # when / then
    with pytest.raises(PlatformRejected, match="Consumer secret is invalid"):
        client.get_system_status()


def test_plain_permalinks_are_platform_rejected_with_a_hint(woo, fake_woocommerce):
    # given: WordPress without pretty permalinks serves /wp-json/... as the front page
    fake_woocommerce.plain_permalinks = True

    # when / then
    with pytest.raises(PlatformRejected, match="pretty permalinks"):
        woo.get_system_status()


def test_a_redirect_is_not_followed_and_is_platform_rejected(woo, fake_woocommerce):
    # given
    fake_woocommerce.redirect_to = "https://www.elsewhere.example"

    # when / then
    with pytest.raises(PlatformRejected, match=r"redirected the API call \(HTTP 301\)") as caught:
        woo.get_system_status()
    assert "oauth_" not in caught.value.message
    assert len(fake_woocommerce.requests) == 1


@pytest.mark.parametrize(
    ("store_url", "host", "addresses"),
    [("https://localhost:8443", "localhost", ("127.0.0.1", "::1")), ("https://10.1.2.3", "10.1.2.3", ("10.1.2.3",))],
)
def test_a_store_inside_a_private_network_is_refused(settings, store_url, host, addresses):
    settings.PLATFORM_ALLOW_PRIVATE_HOSTS = False  # as outside local mode
    client = WooCommerceClient(store_url=store_url, consumer_key="ck_x", consumer_secret="cs_x")

    with pytest.raises(PlatformRejected) as refused:
        client.get_system_status()

    assert str(refused.value) in {
        f"{host} resolves to {address}, which is not a public internet address; give the store's public address."
        for address in addresses
    }

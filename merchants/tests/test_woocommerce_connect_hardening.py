"""GET /woocommerce/connect in production: only public store hosts, and a bounded number of pending key requests."""

import socket
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from merchants.models import WooCommerceInstall

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("woocommerce_settings")]


def connect(client, store_url: str, **extra):
    return client.get("/woocommerce/connect", {"store_url": store_url}, **extra)


@pytest.fixture
def production(settings):
    settings.LOCAL_MODE = False
    settings.PLATFORM_ALLOW_PRIVATE_HOSTS = False
    return settings


@pytest.fixture
def dns(monkeypatch):
    """The system resolver, answering from a table (the process boundary: no network in tests)."""
    table: dict[str, list[str]] = {"shop.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


INTERNAL_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "10.0.0.5",
    "10.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "0xa9.0xfe.0xa9.0xfe",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",  # noqa: S104
    "0",
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a00:1]",
    "[2002:7f00:1::]",
    "localhost",
    "shop.localhost",
    "metadata.google.internal",
    "instance-data.ec2.internal",
    "printer.local",
    "router.home.arpa",
    "1.0.0.127.in-addr.arpa",
    "box.localdomain",
]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_connect_in_production_refuses_an_internal_host_and_stores_nothing(client, production, dns, host):
    # when
    response = connect(client, f"https://{host}")

    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not WooCommerceInstall.objects.exists()


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "100.64.1.1", "::1", "fd00::5", "::ffff:10.0.0.1"]
)
def test_connect_in_production_refuses_a_name_that_resolves_to_an_internal_address(client, production, dns, address):
    # given
    dns["rebound.example.com"] = ["93.184.215.14", address]

    # when
    response = connect(client, "https://rebound.example.com")

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "store_url must be your store's public address: rebound.example.com resolves to "
        f"{address.replace('::ffff:10.0.0.1', '::ffff:a00:1')}, which is not a public internet address."
    )
    assert not WooCommerceInstall.objects.exists()


def test_connect_in_production_refuses_a_name_that_does_not_resolve(client, production, dns):
    # when
    response = connect(client, "https://no-such-shop.example.com")

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "store_url names no-such-shop.example.com, which could not be resolved; check the address."
    )
    assert not WooCommerceInstall.objects.exists()


@pytest.mark.parametrize("host", ["93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", "1.1"])
def test_connect_in_production_refuses_public_address_literals_too(client, production, dns, host):
    # when
    response = connect(client, f"https://{host}")

    # then
    assert response.status_code == 400
    assert not WooCommerceInstall.objects.exists()


def test_connect_in_production_accepts_a_public_name(client, production, dns):
    # when
    response = connect(client, "https://Shop.Example.com/")

    # then
    assert response.status_code == 302
    assert WooCommerceInstall.objects.get().store_url == "https://shop.example.com"


@pytest.mark.parametrize("host", ["shop.123", "1.2.3.4.5", "256.1.1.1", "0x1g.1", "09.1.1.1"])
def test_connect_refuses_a_host_that_is_neither_a_name_nor_an_address_in_every_mode(client, settings, host):
    # given
    settings.LOCAL_MODE = True

    # when
    response = connect(client, f"http://{host}")

    # then
    assert response.status_code == 400
    assert not WooCommerceInstall.objects.exists()


def test_local_mode_keeps_allowing_loopback_for_the_fake_stores(client, settings):
    # given
    settings.LOCAL_MODE = True

    # when
    response = connect(client, "http://127.0.0.1:9501")

    # then
    assert response.status_code == 302
    assert WooCommerceInstall.objects.get().store_url == "http://127.0.0.1:9501"


def test_local_mode_refuses_loopback_written_as_a_number(client, settings):
    # given
    settings.LOCAL_MODE = True

    # when
    response = connect(client, "http://2130706433:9501")

    # then
    assert response.status_code == 400


# Bounded pending rows.


def test_connecting_one_store_again_and_again_keeps_only_the_newest_pending_requests(client, settings):
    # given
    settings.WOOCOMMERCE_PENDING_INSTALLS_PER_STORE = 3
    user_ids = []

    # when
    for _ in range(10):
        response = connect(client, "https://shop.example")
        assert response.status_code == 302
        user_ids.append(WooCommerceInstall.objects.latest("id").user_id)

    # then
    assert sorted(WooCommerceInstall.objects.values_list("user_id", flat=True)) == sorted(user_ids[-3:])


def test_connecting_keeps_completed_installs_and_other_stores_pending_requests(client, settings):
    # given
    settings.WOOCOMMERCE_PENDING_INSTALLS_PER_STORE = 1
    done = WooCommerceInstall.objects.create(
        user_id="done", store_url="https://shop.example", completed_at=timezone.now()
    )
    other = WooCommerceInstall.objects.create(user_id="other", store_url="https://other.example")

    # when
    connect(client, "https://shop.example")
    connect(client, "https://shop.example")

    # then
    assert WooCommerceInstall.objects.filter(store_url="https://shop.example", completed_at__isnull=True).count() == 1
    assert set(WooCommerceInstall.objects.filter(id__in=[done.id, other.id]).values_list("user_id", flat=True)) == {
        "done",
        "other",
    }


def test_connecting_deletes_the_stores_expired_pending_requests(client, settings):
    # given
    settings.WOOCOMMERCE_PENDING_INSTALLS_PER_STORE = 5
    old = WooCommerceInstall.objects.create(
        user_id="old", store_url="https://shop.example", created_at=timezone.now() - timedelta(seconds=3601)
    )

    # when
    connect(client, "https://shop.example")

    # then
    assert not WooCommerceInstall.objects.filter(id=old.id).exists()
    assert WooCommerceInstall.objects.count() == 1


def test_connect_is_rate_limited_per_client_with_a_json_429_that_stores_nothing(client, settings):
    # given
    settings.WOOCOMMERCE_CONNECT_RATE_LIMIT = "2/hour"
    cache.clear()
    first = connect(client, "https://a.example", REMOTE_ADDR="203.0.113.9")
    second = connect(client, "https://b.example", REMOTE_ADDR="203.0.113.9")

    # when
    third = connect(client, "https://c.example", REMOTE_ADDR="203.0.113.9")
    elsewhere = connect(client, "https://c.example", REMOTE_ADDR="203.0.113.10")

    # then
    assert (first.status_code, second.status_code, third.status_code, elsewhere.status_code) == (302, 302, 429, 302)
    assert third.json() == {
        "error": "rate_limited",
        "detail": "Too many connection requests; try again in 3600 seconds.",
    }
    assert third["Retry-After"] == "3600"
    assert sorted(WooCommerceInstall.objects.values_list("store_url", flat=True)) == [
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]
    cache.clear()

"""The gateway's key endpoint, and query_validator against the reference validator that verifies with that key."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog_sync.tests.factories import ProductFactory
from merchants.tests.factories import StoreFactory
from subnet.client import PingAnswer, RecAnswer, ValidatorClient
from subnet.signing import derive_public_key_hex
from subnet.tests.conftest import API_KEY, RFC_PRIVATE_KEY_HEX, RFC_PUBLIC_KEY_HEX

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.validator.app import ValidatorServer
from subnet.validator.public_key import GatewayPublicKey

CATALOG = [
    ("TEE-BLUE", "Blue Cotton Tee", "19.00"),
    ("TEE-RED", "Red Cotton Tee", "19.00"),
    ("TEE-GREEN", "Green Cotton Tee", "21.00"),
    ("HOODIE", "Cotton Hoodie", "45.00"),
    ("JEANS", "Blue Denim Jeans", "60.00"),
    ("CAP", "Blue Baseball Cap", "15.00"),
    ("HOSE", "Garden Hose", "25.00"),
    ("MUG", "Coffee Mug", "9.00"),
    ("LAMP", "Desk Lamp", "30.00"),
    ("PN", "Ballpoint Pen", "2.00"),
]


@pytest.fixture
def gateway_key(settings):
    settings.BITRECS_SIGNING_KEY = RFC_PRIVATE_KEY_HEX
    return RFC_PUBLIC_KEY_HEX


@pytest.fixture
def shop(db):
    store = StoreFactory(site_key="shop-e2e")
    for index, (sku, title, price) in enumerate(CATALOG):
        ProductFactory(store=store, external_id=f"gid-{index}", sku=sku, title=title, price=Decimal(price))
    return store


# ------------------------------------------------------------------------------------- GET /subnet/public_key


@pytest.mark.django_db
def test_public_key_endpoint_serves_the_configured_key(client, gateway_key):
    response = client.get("/subnet/public_key")

    assert response.status_code == 200
    assert response.json() == {"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"}
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=300"


@pytest.mark.django_db
def test_public_key_follows_the_key_at_call_time(client, settings):
    settings.BITRECS_SIGNING_KEY = "11" * 32

    assert client.get("/subnet/public_key").json() == {"public_key": derive_public_key_hex(private_key_hex="11" * 32)}


def test_validator_fetches_and_caches_the_gateway_key_from_the_live_site(live_server, gateway_key):
    source = GatewayPublicKey(f"{live_server.url}/subnet/public_key")

    first = source.get()

    assert first.public_bytes_raw().hex() == gateway_key
    assert source.get() is first
    assert source.refresh() is None  # fetched moments ago: not again


# ---------------------------------------------------------------------------------------------- query_validator


def test_query_validator_prints_the_checked_answer(live_server, gateway_key, shop, start_validator):
    # The validator verifies with the key it fetches from the gateway, as public validators do.
    validator = start_validator(public_key=GatewayPublicKey(f"{live_server.url}/subnet/public_key"))
    out = StringIO()

    call_command(
        "query_validator",
        "--url",
        validator.url,
        "--api-key",
        API_KEY,
        "--store",
        "shop-e2e",
        "--sku",
        "TEE-BLUE",
        "--num",
        "3",
        stdout=out,
    )

    printed = json.loads(out.getvalue())
    assert printed.pop("latency_seconds") > 0
    assert printed.pop("miner_hotkey").startswith("5")
    assert printed.pop("created_at")
    assert printed == {
        "site_key": "shop-e2e",
        "query_sku": "TEE-BLUE",
        "results": [
            {
                "sku": "TEE-RED",
                "product_id": "gid-1",
                "name": "Red Cotton Tee",
                "price": "19.00",
                "reason": "Like Blue Cotton Tee: shares cotton, tee",
            },
            {
                "sku": "TEE-GREEN",
                "product_id": "gid-2",
                "name": "Green Cotton Tee",
                "price": "21.00",
                "reason": "Like Blue Cotton Tee: shares cotton, tee",
            },
            {
                "sku": "JEANS",
                "product_id": "gid-4",
                "name": "Blue Denim Jeans",
                "price": "60.00",
                "reason": "Like Blue Cotton Tee: shares blue",
            },
        ],
        "models_used": ["bitrecs/offline-text-similarity"],
        "miner_uid": "1",
        "catalog_size": "10",
        "attempts": 1,
    }


def test_query_validator_reports_a_refused_api_key(gateway_key, shop, start_validator):
    validator = start_validator()

    with pytest.raises(CommandError, match=r"gave no usable answer: API key refused \(401\)"):
        call_command(
            "query_validator", "--url", validator.url, "--api-key", "wrong", "--store", "shop-e2e", "--sku", "TEE-BLUE"
        )


def test_query_validator_reports_a_signature_the_validator_refuses(settings, shop, start_validator):
    settings.BITRECS_SIGNING_KEY = "22" * 32  # not the key the validator trusts
    validator = start_validator()

    with pytest.raises(CommandError, match=r"signature or timestamp refused \(401\)"):
        call_command(
            "query_validator", "--url", validator.url, "--api-key", API_KEY, "--store", "shop-e2e", "--sku", "TEE-BLUE"
        )


def test_query_validator_localnet_scheme_talks_to_a_localnet_validator(shop, start_validator):
    validator = start_validator(network="localnet")
    out = StringIO()

    call_command(
        "query_validator",
        "--url",
        validator.url,
        "--api-key",
        API_KEY,
        "--store",
        "shop-e2e",
        "--sku",
        "TEE-BLUE",
        "--num",
        "2",
        "--scheme",
        "localnet",
        stdout=out,
    )

    assert [item["sku"] for item in json.loads(out.getvalue())["results"]] == ["TEE-RED", "TEE-GREEN"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "nope", "--sku", "TEE-BLUE"], "no store with site key 'nope'"),
        (["--store", "shop-e2e", "--sku", "NOPE"], "store 'shop-e2e' has no product with SKU 'NOPE'"),
        (["--store", "shop-e2e", "--sku", "PN"], "cannot build the request: query must be 3 to 40 characters long"),
        (["--store", "shop-e2e", "--sku", "TEE-BLUE", "--num", "21"], "--num must be 1 to 20"),
    ],
)
def test_query_validator_errors_are_clear(shop, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("query_validator", "--url", "http://127.0.0.1:9", "--api-key", API_KEY, *args)


def test_query_validator_refuses_a_store_with_too_few_products(db, start_validator):
    store = StoreFactory(site_key="tiny")
    for sku in ("AAA", "BBB", "CCC"):
        ProductFactory(store=store, sku=sku, title=f"Product {sku}")
    validator = start_validator()

    with pytest.raises(CommandError, match="candidate_pool_too_small: the store has 3 products"):
        call_command("query_validator", "--url", validator.url, "--api-key", API_KEY, "--store", "tiny", "--sku", "AAA")


# ------------------------------------------------------------------------------------------------ run_validator


def test_run_validator_serves_the_api_with_the_gateway_key(monkeypatch, settings, live_server, gateway_key, luma_body):
    settings.APP_URL, settings.BITRECS_PROXY_URL = live_server.url, ""
    answers: list[object] = []

    def serve_briefly(server):
        server.start()
        try:
            client = ValidatorClient(server.url, "run-key", network="test")
            answers.append(client.ping())
            answers.append(
                client.recommend(
                    query=luma_body["query"],
                    context=luma_body["context"],
                    site_key="s1",
                    num_results=2,
                    created_at="2025-06-28T20:00:00",
                )
            )
        finally:
            server.stop()

    monkeypatch.setattr(ValidatorServer, "serve_forever", serve_briefly)
    out = StringIO()

    call_command("run_validator", "--port", "0", "--api-key", "run-key", stdout=out)

    assert out.getvalue().startswith("Validator API on http://127.0.0.1:")
    assert (
        f"network testnet, gateway key from {live_server.url}/subnet/public_key, 1 offline miner(s)" in out.getvalue()
    )
    ping, answer = answers
    assert isinstance(ping, PingAnswer) and ping.detail == "pong"
    assert isinstance(answer, RecAnswer)
    assert (answer.status_code, len(answer.results), answer.miner_uid) == ("200", 2, "1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key", ""], "BITRECS_API_KEY is not set"),
        (["--network", "mainnet"], "invalid validator configuration: a mainnet validator needs a whitelist"),
    ],
)
def test_run_validator_refuses_a_bad_configuration(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_validator", "--port", "0", *args)


def test_an_unreachable_gateway_key_fails_fast_until_the_retry_interval(stub_server):
    from subnet.tests.conftest import StubReply
    from subnet.validator.public_key import GatewayKeyUnavailable

    stub_server.replies = [StubReply(status=503, body={"detail": "starting"}), StubReply(body={"public_key": "ab"})]
    source = GatewayPublicKey(f"{stub_server.url}/subnet/public_key")

    with pytest.raises(GatewayKeyUnavailable, match="cannot get the gateway public key"):
        source.get()
    with pytest.raises(GatewayKeyUnavailable, match="last fetch failed"):
        source.get()

    assert len(stub_server.received) == 1

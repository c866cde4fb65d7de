"""The reference validator's HTTP API over a real socket: routes, the §1.11 error catalogue, the §1.10 answer."""

import json
import re
import socket
import threading
import time

import pytest
import requests

from subnet.client import ValidatorClient
from subnet.signing import SIGNED_FIELDS_WITH_MINER_SIGNATURE, sign_ed25519, sign_localnet_hmac
from subnet.tests.conftest import API_KEY
from subnet.types import encode_result

# The validator imports bittensor (through subnet.protocol); import it the same way the app does.
pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.validator.app import ValidatorMetadata
from subnet.validator.catalog import CatalogEntry
from subnet.validator.miners import MinerAnswer, OfflineMiner, OfflineMinerPool, offline_pool, recommend_similar

ERROR_401 = {"detail": "error", "status_code": 401}
ERROR_500 = {"detail": "error", "status_code": 500}
LUMA_MINER_CONTEXT = (
    '[{"sku":"24-UG06","name":"Affirm Water Bottle","price":"7"},'
    '{"sku":"24-WB02","name":"Compete Track Tote","price":"32"},'
    '{"sku":"24-MB02","name":"Fusion Backpack","price":"59"},'
    '{"sku":"WSH11-28-Blue","name":"Ina Compression Short - 28 Blue","price":"49"},'
    '{"sku":"WJ09-S-Blue","name":"Jade Yoga Jacket - S Blue","price":"32"},'
    '{"sku":"WH05-XS-Orange","name":"Selene Yoga Hoodie - XS Orange","price":"42"},'
    '{"sku":"24-WG087","name":"Sprite Yoga Strap 10 foot","price":"21"},'
    '{"sku":"WT02-M-Green","name":"Zoe Tank - M Green","price":"29"}]'
)


def signed_post(url, body, private_key, *, timestamp=None, headers=None, fields=None, raw=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    extra = {"fields": fields} if fields else {}
    sent_headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "x-timestamp": timestamp,
        "x-signature": sign_ed25519(private_key=private_key, timestamp=timestamp, body=body, **extra),
        **(headers or {}),
    }
    return requests.post(
        f"{url}/rec", data=raw if raw is not None else json.dumps(body), headers=sent_headers, timeout=10
    )


def catalog(n, *, price="10"):
    return json.dumps([{"sku": f"SKU-{i}", "name": f"Product {i}", "price": price} for i in range(n)])


def body_with(luma_body, **changes):
    return {**luma_body, **changes}


# ------------------------------------------------------------------------------------------ success


def test_rec_answers_the_success_shape_with_string_status_code(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert list(data) == [
        "user",
        "original_query",
        "status_code",
        "status_text",
        "response_text",
        "created_at",
        "results",
        "models_used",
        "catalog_size",
        "miner_uid",
        "miner_hotkey",
        "reasoning",
    ]
    assert data["user"] == ""
    assert data["original_query"] == "WT02-M-Green"
    assert (data["status_code"], data["status_text"]) == ("200", "OK")
    assert re.fullmatch(r"Bitrecs Subnet testnet Took \d+\.\d\d seconds to process this request", data["response_text"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", data["created_at"])
    assert [item["sku"] for item in data["results"]] == ["24-UG06", "24-WB02", "24-MB02"]
    assert data["results"][0] == {
        "sku": "24-UG06",
        "name": "Affirm Water Bottle",
        "price": "7",
        "reason": "Goes with Zoe Tank - M Green",
    }
    assert data["models_used"] == ["bitrecs/offline-text-similarity"]
    assert (data["catalog_size"], data["miner_uid"]) == ("8", "1")
    assert data["miner_hotkey"].startswith("5")
    assert data["reasoning"] == "Bitrecs AI - testnet"


def test_miners_receive_the_rewritten_context_and_no_nulls(start_validator, private_key, luma_body):
    seen = []

    class RecordingPool:
        def query(self, request):
            seen.append(request)
            return OfflineMinerPool([OfflineMiner(uid=7, hotkey="5hk")]).query(request)

    server = start_validator(miner_pool=RecordingPool())

    response = signed_post(server.url, luma_body, private_key)

    assert response.status_code == 200
    (request,) = seen
    assert request.context == LUMA_MINER_CONTEXT
    assert (request.miner_uid, request.miner_hotkey, request.results, request.models_used) == ("", "", [], [])
    assert response.json()["miner_uid"] == "7"


def test_client_round_trip_through_the_validator(start_validator, private_key, luma_body):
    server = start_validator()
    client = ValidatorClient(server.url, API_KEY, network="test", signing_key=private_key)

    answer = client.recommend(
        query=luma_body["query"],
        context=luma_body["context"],
        site_key=luma_body["site_key"],
        num_results=3,
        created_at=luma_body["created_at"],
        user=luma_body["user"],
    )

    assert answer.status_code == "200"
    assert [item.sku for item in answer.results] == ["24-UG06", "24-WB02", "24-MB02"]
    assert answer.catalog_size == "8"


def test_eleven_field_signatures_of_newer_gateways_verify(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE)

    assert response.status_code == 200


def test_bare_api_key_without_bearer_is_accepted(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"Authorization": API_KEY})

    assert response.status_code == 200


def test_large_answers_are_gzipped_when_asked(start_validator, private_key, luma_body):
    server = start_validator()
    body = body_with(luma_body, num_results=6)

    response = signed_post(server.url, body, private_key, headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["results"]) == 6


def test_requests_are_served_concurrently(start_validator, private_key, luma_body):
    barrier = threading.Barrier(3, timeout=5)

    class BarrierPool:
        def query(self, request):
            barrier.wait()  # breaks (and the request fails) unless three requests are inside at once
            return OfflineMinerPool([OfflineMiner(uid=1, hotkey="5hk")]).query(request)

    server = start_validator(miner_pool=BarrierPool())
    statuses = []

    def call():
        statuses.append(signed_post(server.url, luma_body, private_key).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200, 200]


# -------------------------------------------------------------------------------------- error catalogue


def test_missing_authorization_is_400(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"Authorization": ""})

    assert (response.status_code, response.json()) == (400, {"detail": "Authorization is missing"})


def test_wrong_api_key_is_401_unauthorized(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"Authorization": "Bearer wrong"})

    assert (response.status_code, response.json()) == (401, {"detail": "Unauthorized"})


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain", "application/jsonx"])
def test_content_type_must_be_exactly_application_json(start_validator, private_key, luma_body, content_type):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"Content-Type": content_type})

    assert (response.status_code, response.json()) == (415, {"detail": "Only JSON requests are allowed"})


def test_upper_case_content_type_is_accepted(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"Content-Type": "Application/JSON"})

    assert response.status_code == 200


def test_bad_signature_is_401_error(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers={"x-signature": "ab" * 64})

    assert (response.status_code, response.json()) == (401, ERROR_401)


def test_tampered_body_is_401_error(start_validator, private_key, luma_body):
    server = start_validator()
    timestamp = str(int(time.time()))
    signature = sign_ed25519(private_key=private_key, timestamp=timestamp, body=luma_body)

    response = signed_post(
        server.url,
        body_with(luma_body, num_results=4),
        private_key,
        timestamp=timestamp,
        headers={"x-signature": signature},
    )

    assert (response.status_code, response.json()) == (401, ERROR_401)


def test_stale_timestamp_is_401_error(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, timestamp=str(int(time.time()) - 301))

    assert (response.status_code, response.json()) == (401, ERROR_401)


def test_timestamp_far_in_the_future_is_401_error(start_validator, private_key, luma_body):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, timestamp=str(int(time.time()) + 3600))

    assert (response.status_code, response.json()) == (401, ERROR_401)


@pytest.mark.parametrize("headers", [{"x-timestamp": "1.5"}, {"x-signature": "zz" * 64}])
def test_malformed_timestamp_or_signature_hex_is_500_error(start_validator, private_key, luma_body, headers):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, headers=headers)

    assert (response.status_code, response.json()) == (500, ERROR_500)


def test_missing_signature_header_is_422_in_fastapi_shape(start_validator, luma_body):
    server = start_validator()

    response = requests.post(
        f"{server.url}/rec",
        data=json.dumps(luma_body),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", "x-timestamp": "1"},
        timeout=10,
    )

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("missing", ["header", "x-signature"])


def test_missing_body_key_is_422(start_validator, private_key, luma_body):
    server = start_validator()
    body = {key: value for key, value in luma_body.items() if key != "miner_hotkey"}

    response = signed_post(server.url, body_with(luma_body, miner_hotkey=None), private_key, raw=json.dumps(body))

    assert response.status_code == 422
    assert [(e["type"], e["loc"]) for e in response.json()["detail"]] == [("missing", ["body", "miner_hotkey"])]


@pytest.mark.parametrize("size", [5, 0])
def test_too_small_catalog_is_400_invalid_catalog_size(start_validator, private_key, luma_body, size):
    server = start_validator()

    response = signed_post(server.url, body_with(luma_body, context=catalog(size)), private_key)

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "error - invalid catalog - size", "status_code": 400},
    )


def test_products_the_strict_parse_drops_do_not_count(start_validator, private_key, luma_body):
    server = start_validator()
    items = [
        *json.loads(catalog(5)),
        {"sku": "Z1", "name": "Free", "price": 0},
        {"sku": "Z2", "name": "!!!", "price": "1"},
    ]

    response = signed_post(server.url, body_with(luma_body, context=json.dumps(items)), private_key)

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "error - invalid catalog - size", "status_code": 400},
    )


def test_oversized_body_is_400_context_too_large(start_validator, private_key, luma_body):
    server = start_validator(max_body_bytes=4096)

    response = signed_post(server.url, body_with(luma_body, context=catalog(200)), private_key)

    assert (response.status_code, response.json()) == (400, {"detail": "error - context too large", "status_code": 400})


def test_oversized_context_is_400_context_too_large(start_validator, private_key, luma_body):
    server = start_validator(max_context_chars=1000)

    response = signed_post(server.url, body_with(luma_body, context=catalog(50)), private_key)

    assert (response.status_code, response.json()) == (400, {"detail": "error - context too large", "status_code": 400})


@pytest.mark.parametrize(
    "changes",
    [
        {"num_results": 21},
        {"num_results": 0},
        {"query": "ab"},
        {"results": None},
        {"models_used": ["x"]},
        {"site_key": ""},
    ],
)
def test_request_failing_the_validator_checks_is_500_error(start_validator, private_key, luma_body, changes):
    server = start_validator()

    response = signed_post(server.url, body_with(luma_body, **changes), private_key)

    assert (response.status_code, response.json()) == (500, ERROR_500)


def test_no_usable_miner_answer_is_500_error(start_validator, private_key, luma_body):
    class DuplicatesPool:
        def query(self, request):
            item = encode_result(item={"sku": "24-UG06", "name": "Bottle", "price": "7", "reason": "r"})
            return [
                MinerAnswer(
                    uid=3, hotkey="5hk", query=request.query, created_at="x", results=(item,) * 3, models_used=()
                )
            ]

    server = start_validator(miner_pool=DuplicatesPool())

    response = signed_post(server.url, luma_body, private_key)

    assert (response.status_code, response.json()) == (500, ERROR_500)


def test_empty_miner_results_are_500_error_forward(start_validator, private_key, luma_body):
    class EmptyPool:
        def query(self, request):
            return [MinerAnswer(uid=3, hotkey="5hk", query=request.query, created_at="x", results=(), models_used=())]

    server = start_validator(miner_pool=EmptyPool())

    response = signed_post(server.url, luma_body, private_key)

    assert (response.status_code, response.json()) == (500, {"detail": "error - forward", "status_code": 500})


def test_rate_limit_is_429_with_retry_after(start_validator):
    server = start_validator(rate_limit_per_minute=2, clock=lambda: 6000.0)
    headers = {"Authorization": f"Bearer {API_KEY}"}

    statuses = [requests.get(f"{server.url}/ping", headers=headers, timeout=5).status_code for _ in range(2)]
    response = requests.get(f"{server.url}/ping", headers=headers, timeout=5)

    assert statuses == [200, 200]
    assert response.status_code == 429
    assert response.json() == {"detail": "Rate limit exceeded", "status_code": 429, "retry_after": 60}
    assert response.headers["retry-after"] == "60"


def test_mainnet_refuses_ips_off_the_whitelist(start_validator):
    server = start_validator(network="mainnet", whitelist=("10.0.0.1",))

    response = requests.get(f"{server.url}/ping", headers={"Authorization": API_KEY}, timeout=5)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "You do not have permission to access this resource"


def test_mainnet_refuses_an_unparsable_forwarded_ip(start_validator):
    server = start_validator(network="mainnet", whitelist=("127.0.0.1",), trust_proxy_headers=True)

    response = requests.get(f"{server.url}/ping", headers={"Authorization": API_KEY, "X-Real-IP": "nope"}, timeout=5)

    assert (response.status_code, response.text) == (400, "Invalid IP address")


def test_mainnet_admits_whitelisted_ips(start_validator, private_key, luma_body):
    server = start_validator(network="mainnet", whitelist=("127.0.0.1",))

    response = signed_post(server.url, luma_body, private_key)

    assert response.status_code == 200
    assert response.json()["reasoning"] == "Bitrecs AI - mainnet"


# ------------------------------------------------------------------------------------------ localnet


def localnet_post(url, body, *, timestamp=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "x-timestamp": timestamp,
        "x-signature": sign_localnet_hmac(timestamp=timestamp, body=body),
    }
    return requests.post(f"{url}/rec", data=json.dumps(body), headers=headers, timeout=10)


def test_localnet_accepts_the_hmac_scheme(start_validator, luma_body):
    server = start_validator(network="localnet")

    response = localnet_post(server.url, luma_body)

    assert response.status_code == 200
    data = response.json()
    assert re.fullmatch(r"Bitrecs Took \d+\.\d\d seconds to process this request", data["response_text"])
    assert data["reasoning"] == "Bitrecs AI - localnet"


def test_localnet_refuses_an_ed25519_signature(start_validator, private_key, luma_body):
    server = start_validator(network="localnet")

    response = signed_post(server.url, luma_body, private_key)

    assert (response.status_code, response.json()) == (401, ERROR_401)


def test_localnet_refuses_too_many_duplicates(start_validator, luma_body):
    server = start_validator(network="localnet")
    items = [*json.loads(catalog(10)), {"sku": "SKU-1", "name": "Again", "price": "1"}]

    response = localnet_post(server.url, body_with(luma_body, context=json.dumps(items)))

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "error - dupe threshold reached", "status_code": 400},
    )


def test_localnet_small_catalog_is_400_invalid_catalog(start_validator, luma_body):
    server = start_validator(network="localnet")

    response = localnet_post(server.url, body_with(luma_body, context=catalog(3)))

    assert (response.status_code, response.json()) == (400, {"detail": "error - invalid catalog", "status_code": 400})


# ---------------------------------------------------------------------------------- /ping, /version, misc


def test_ping_answers_pong_and_the_server_time(start_validator):
    server = start_validator()

    response = requests.get(f"{server.url}/ping", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)

    data = response.json()
    assert response.status_code == 200
    assert set(data) == {"detail", "st"}
    assert data["detail"] == "pong"
    assert abs(data["st"] - time.time()) < 5


def test_version_reports_the_metadata(start_validator):
    server = start_validator(metadata=ValidatorMetadata(uid=3, hotkey="5hk", btversion="10.5.0"))

    data = requests.get(f"{server.url}/version", headers={"Authorization": API_KEY}, timeout=5).json()

    assert set(data) == {"detail", "meta_data", "st"}
    assert data["detail"] == "version"
    assert data["meta_data"] == {
        "head": "",
        "remote_head": "",
        "btversion": "10.5.0",
        "uid": 3,
        "coldkey": "",
        "hotkey": "5hk",
        "version": "0.8.3",
        "spec": 83,
    }


def test_version_without_metadata_is_empty(start_validator):
    server = start_validator()

    data = requests.get(f"{server.url}/version", headers={"Authorization": API_KEY}, timeout=5).json()

    assert data["meta_data"] == {}


def test_client_ping_and_version_against_the_validator(start_validator, private_key):
    server = start_validator(metadata=ValidatorMetadata(uid=3, hotkey="5hk"))
    client = ValidatorClient(server.url, API_KEY, network="test", signing_key=private_key)

    assert abs(client.ping().server_time - time.time()) < 5
    version = client.version()
    assert (version.version, version.spec, version.uid, version.hotkey) == ("0.8.3", 83, 3, "5hk")


def test_unknown_route_is_404_and_wrong_method_405_after_auth(start_validator):
    server = start_validator()
    auth = {"Authorization": API_KEY}

    assert requests.get(f"{server.url}/nope", timeout=5).json() == {"detail": "Authorization is missing"}
    missing = requests.get(f"{server.url}/nope", headers=auth, timeout=5)
    wrong_method = requests.get(f"{server.url}/rec", headers=auth, timeout=5)
    favicon = requests.get(f"{server.url}/favicon.ico", timeout=5)

    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})
    assert favicon.status_code == 404


def test_body_that_is_not_json_is_422_and_a_json_array_500(start_validator, private_key, luma_body):
    server = start_validator()

    not_json = signed_post(server.url, luma_body, private_key, raw=b"{not json")
    array = signed_post(server.url, luma_body, private_key, raw=b"[1, 2]")

    assert not_json.status_code == 422
    assert [(e["type"], e["loc"]) for e in not_json.json()["detail"]] == [("json_invalid", ["body", 1])]
    assert (array.status_code, array.json()) == (500, {"detail": "Internal server error"})


# ------------------------------------------------------------------------------------ offline strategy


def test_offline_strategy_ranks_by_name_similarity_and_skips_the_query():
    entries = [
        CatalogEntry("Q1", "Blue Cotton Tee", "10"),
        CatalogEntry("A1", "Garden Hose", "20"),
        CatalogEntry("A2", "Red Cotton Tee", "12"),
        CatalogEntry("A3", "Blue Denim Jeans", "40"),
        CatalogEntry("A4", "Cotton Socks", "5"),
        CatalogEntry("a2", "Red Cotton Tee again", "12"),
    ]

    picks = recommend_similar(entries=entries, query="q1", limit=3)

    assert [pick["sku"] for pick in picks] == ["A2", "A3", "A4"]
    assert picks[0] == {
        "sku": "A2",
        "name": "Red Cotton Tee",
        "price": "12",
        "reason": "Like Blue Cotton Tee: shares cotton, tee",
    }


def test_a_round_in_which_no_miner_answered_is_tried_once_more(start_validator, private_key, luma_body):
    class FlakyPool:
        def __init__(self):
            self.rounds = 0
            self.inner = offline_pool(count=1)

        def query(self, request):
            self.rounds += 1
            if self.rounds == 1:
                return [
                    MinerAnswer(
                        uid=1, hotkey="5hk", query="", created_at="", results=(), models_used=(), error="http_408"
                    )
                ]
            return self.inner.query(request)

    pool = FlakyPool()
    server = start_validator(miner_pool=pool)

    response = signed_post(server.url, luma_body, private_key)

    assert (response.status_code, pool.rounds) == (200, 2)


def test_a_second_round_in_which_no_miner_answered_is_500_error(start_validator, private_key, luma_body):
    class DeadPool:
        rounds = 0

        def query(self, request):
            DeadPool.rounds += 1
            return [
                MinerAnswer(uid=1, hotkey="5hk", query="", created_at="", results=(), models_used=(), error="http_408")
            ]

    server = start_validator(miner_pool=DeadPool())

    response = signed_post(server.url, luma_body, private_key)

    assert (response.status_code, response.json(), DeadPool.rounds) == (500, ERROR_500, 2)


def test_the_listening_socket_says_tcp_so_asyncio_turns_nagle_off(start_validator):
    # asyncio sets TCP_NODELAY on accepted sockets only when the socket's proto is IPPROTO_TCP; with proto 0,
    # every answer on a kept-alive connection waited for a delayed ACK (40 ms on Linux).
    server = start_validator()

    assert server._socket.proto == socket.IPPROTO_TCP


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"query": NaN}', "NaN is not a number JSON allows."),
        (b'{"query": 1e999}', "The number 1e999 is too large."),
        (b'{"query": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "The JSON nests deeper than 64 levels."),
        (b'{"query": "caf\xe9"}', "The body is not UTF-8 text (byte 14); send JSON in UTF-8."),
    ],
    ids=["nan", "1e999", "depth-20000", "latin1"],
)
def test_a_body_json_cannot_hold_is_422_json_invalid_not_a_general_500(
    start_validator, private_key, luma_body, raw, message
):
    server = start_validator()

    response = signed_post(server.url, luma_body, private_key, raw=raw)

    assert response.status_code == 422
    assert response.json() == {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": message, "input": {}}]}

"""ValidatorClient: the exact request it sends, its parsing of answers and errors, backoff, and per-validator limits."""

import hashlib
import json
import threading

import pytest

from subnet import client as client_module
from subnet.client import (
    ApiKeyRejected,
    AuthorizationMissing,
    CatalogRejected,
    ContentTypeRejected,
    ContextTooLarge,
    InvalidAnswer,
    IpNotAllowed,
    RecommendedItem,
    RequestInvalid,
    SignatureRejected,
    ValidatorBusy,
    ValidatorClient,
    ValidatorFailed,
    ValidatorInternalError,
    ValidatorNoResults,
    ValidatorRateLimited,
    ValidatorTimeout,
    ValidatorUnavailable,
)
from subnet.signing import (
    SIGNED_FIELDS_WITH_MINER_SIGNATURE,
    canonical_body,
    check_timestamp,
    load_public_key,
    verify_ed25519,
)
from subnet.tests.conftest import API_KEY, RFC_PUBLIC_KEY_HEX, FakeClock, StubReply, rec_success

# BITRECS_PROTOCOL.md §2, "Test values for this exact body" (x-timestamp 1751140800, RFC 8032 key 1).
SPEC_TIMESTAMP = 1751140800
LUMA_ED25519 = (
    "d76a15e91dc88469aa36fb7f280cb454f706ac715714034fee7fe6c6825c4173"
    "22f729188e552959395b7163fb3dfeb1ae5a67757ca2150b36583bc69e34d207"
)
LUMA_HMAC = "7e3f9b593ea01ecc1a58421eb11f89439fa950d549edc3a62b4346d1951d9cfd"
LUMA_MESSAGE_SHA256 = "847190d8292a386a17a165c08b13930afe92018d750cbcc99c3ac7ecfa890396"


def make_client(url, private_key, **kwargs):
    kwargs.setdefault("network", "test")
    return ValidatorClient(url, API_KEY, signing_key=private_key, **kwargs)


# ------------------------------------------------------------------------------------ request bytes


def test_rec_request_carries_the_spec_vector_signature_over_exactly_the_bytes_sent(stub_server, private_key, luma_body):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06", "24-WB02", "24-MB02"]))]
    client = make_client(stub_server.url, private_key, clock=FakeClock(start=SPEC_TIMESTAMP))

    client.send(body=luma_body)

    (request,) = stub_server.received
    assert (request.method, request.path) == ("POST", "/rec")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-timestamp"] == "1751140800"
    assert request.headers["x-signature"] == LUMA_ED25519
    assert "content-encoding" not in request.headers
    signed = b"1751140800." + request.body
    assert hashlib.sha256(signed).hexdigest() == LUMA_MESSAGE_SHA256
    assert request.body == canonical_body(body=luma_body).encode("ascii")


def test_localnet_network_signs_with_the_public_hmac_scheme(stub_server, luma_body):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06", "24-WB02", "24-MB02"]))]
    client = ValidatorClient(stub_server.url, API_KEY, network="localnet", clock=FakeClock(start=SPEC_TIMESTAMP))

    client.send(body=luma_body)

    assert stub_server.received[0].headers["x-signature"] == LUMA_HMAC


def test_newer_validators_get_a_signature_over_eleven_fields(stub_server, private_key, luma_body):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06", "24-WB02", "24-MB02"]))]
    client = make_client(stub_server.url, private_key, signed_fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE)

    client.send(body=luma_body)

    request = stub_server.received[0]
    verify_ed25519(
        public_key=load_public_key(hex_key=RFC_PUBLIC_KEY_HEX),
        signature=request.headers["x-signature"],
        timestamp=request.headers["x-timestamp"],
        body=luma_body,
        fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE,
    )


def test_recommend_sends_empty_strings_and_lists_never_nulls(stub_server, private_key):
    stub_server.replies = [StubReply(body=rec_success(["A2"]))]
    client = make_client(stub_server.url, private_key)

    client.recommend(
        query="A1x", context='[{"sku":"A2"}]', site_key="s1", num_results=1, created_at="2025-06-28T20:00:00"
    )

    sent = stub_server.received[0].body
    assert sent == (
        b'{"context": "[{\\"sku\\":\\"A2\\"}]", "created_at": "2025-06-28T20:00:00", "miner_hotkey": "", '
        b'"miner_uid": "", "models_used": [], "num_results": 1, "query": "A1x", "results": [], "site_key": "s1", '
        b'"user": ""}'
    )


def test_recommend_refuses_a_query_the_validator_would_refuse_without_sending(stub_server, private_key):
    client = make_client(stub_server.url, private_key)

    with pytest.raises(ValueError, match="query must be 3 to 40 characters long"):
        client.recommend(query="A1", context="[]", site_key="s1", num_results=1, created_at="x")

    assert stub_server.received == []


def test_ed25519_client_without_a_key_uses_the_gateway_signing_key(settings, stub_server):
    settings.BITRECS_SIGNING_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    stub_server.replies = [StubReply(body=rec_success(["A2"]))]
    client = ValidatorClient(stub_server.url, API_KEY, network="finney")

    client.recommend(query="A1x", context='[{"sku":"A2"}]', site_key="s1", num_results=1, created_at="x")

    request = stub_server.received[0]
    verify_ed25519(
        public_key=load_public_key(hex_key=RFC_PUBLIC_KEY_HEX),
        signature=request.headers["x-signature"],
        timestamp=request.headers["x-timestamp"],
        body={
            "created_at": "x",
            "user": "",
            "num_results": 1,
            "query": "A1x",
            "context": '[{"sku":"A2"}]',
            "site_key": "s1",
            "results": [],
            "models_used": [],
            "miner_uid": "",
            "miner_hotkey": "",
        },
    )


# ------------------------------------------------------------------------------------------ answers


def test_success_answer_becomes_a_dataclass_with_string_status_code(stub_server, private_key, luma_body):
    body = rec_success(["24-UG06", "24-WB02"])
    body["results"][0]["price"] = 7.5
    body["results"][1]["extra_key"] = "kept"
    stub_server.replies = [StubReply(body=body)]

    answer = make_client(stub_server.url, private_key).send(body=luma_body)

    assert answer.status_code == "200"
    assert answer.status_text == "OK"
    assert answer.original_query == "WT02-M-Green"
    assert answer.results == (
        RecommendedItem(sku="24-UG06", name="Name 24-UG06", price="7.5", reason="Goes well"),
        RecommendedItem(
            sku="24-WB02", name="Name 24-WB02", price="10", reason="Goes well", extra={"extra_key": "kept"}
        ),
    )
    assert answer.models_used == ("google/gemini-2.0-flash-lite-001",)
    assert (answer.miner_uid, answer.miner_hotkey, answer.catalog_size) == ("42", "5F-hotkey", "8")
    assert answer.attempts == 1


@pytest.mark.parametrize(
    ("status", "body", "error", "retry_elsewhere"),
    [
        (400, {"detail": "Authorization is missing"}, AuthorizationMissing, False),
        (401, {"detail": "Unauthorized"}, ApiKeyRejected, False),
        (401, {"detail": "error", "status_code": 401}, SignatureRejected, False),
        (403, b"You do not have permission to access this resource", IpNotAllowed, False),
        (400, b"Invalid IP address", IpNotAllowed, False),
        (415, {"detail": "Only JSON requests are allowed"}, ContentTypeRejected, False),
        (
            422,
            {"detail": [{"type": "missing", "loc": ["header", "x-signature"], "msg": "Field required"}]},
            RequestInvalid,
            False,
        ),
        (400, {"detail": "error - context too large", "status_code": 400}, ContextTooLarge, False),
        (400, {"detail": "error - invalid catalog - size", "status_code": 400}, CatalogRejected, False),
        (400, {"detail": "error - dupe threshold reached", "status_code": 400}, CatalogRejected, False),
        (500, {"detail": "error", "status_code": 500}, ValidatorFailed, True),
        (500, {"detail": "error - forward", "status_code": 500}, ValidatorNoResults, True),
        (500, {"detail": "Internal server error"}, ValidatorInternalError, True),
        (200, {"status_code": 500}, InvalidAnswer, True),
        (200, b"not json", InvalidAnswer, True),
    ],
)
def test_error_answers_map_to_the_catalogue(stub_server, private_key, luma_body, status, body, error, retry_elsewhere):
    stub_server.replies = [StubReply(status=status, body=body)]

    with pytest.raises(error) as caught:
        make_client(stub_server.url, private_key).send(body=luma_body)

    assert type(caught.value) is error
    assert caught.value.retry_elsewhere is retry_elsewhere
    assert len(stub_server.received) == 1


def test_422_error_names_the_missing_fields(stub_server, private_key, luma_body):
    detail = [{"type": "missing", "loc": ["header", "x-signature"], "msg": "Field required"}]
    stub_server.replies = [StubReply(status=422, body={"detail": detail})]

    with pytest.raises(RequestInvalid, match=r"request refused as invalid \(422\): header.x-signature: Field required"):
        make_client(stub_server.url, private_key).send(body=luma_body)


# ------------------------------------------------------------------------------------------ backoff


def test_429_waits_retry_after_then_resends_with_a_fresh_signature(stub_server, private_key, luma_body):
    stub_server.replies = [
        StubReply(status=429, body={"detail": "Rate limit exceeded", "status_code": 429}, headers={"Retry-After": "2"}),
        StubReply(body=rec_success(["24-UG06", "24-WB02", "24-MB02"])),
    ]
    clock = FakeClock()
    client = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep)

    answer = client.send(body=luma_body)

    assert answer.attempts == 2
    assert clock.sleeps == [2.0]
    first, second = stub_server.received
    assert int(second.headers["x-timestamp"]) == int(first.headers["x-timestamp"]) + 2
    assert first.body == second.body
    for request in (first, second):
        verify_ed25519(
            public_key=load_public_key(hex_key=RFC_PUBLIC_KEY_HEX),
            signature=request.headers["x-signature"],
            timestamp=request.headers["x-timestamp"],
            body=luma_body,
            now=int(request.headers["x-timestamp"]),
        )


def test_general_500_backs_off_60_seconds_by_default(stub_server, private_key, luma_body):
    general = {"status_code": 500, "message": "Internal server error - General", "detail": "General", "data": None}
    stub_server.replies = [StubReply(status=500, body=general), StubReply(body=rec_success(["24-UG06"]))]
    clock = FakeClock()
    client = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep)

    answer = client.send(body=luma_body)

    assert clock.sleeps == [60.0]
    assert answer.attempts == 2
    assert (
        int(stub_server.received[1].headers["x-timestamp"]) == int(stub_server.received[0].headers["x-timestamp"]) + 60
    )


def test_a_retry_after_the_signature_would_expire_is_signed_again_never_resent_stale(
    stub_server, private_key, luma_body
):
    stub_server.replies = [
        StubReply(status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "400"}),
        StubReply(body=rec_success(["24-UG06"])),
    ]
    clock = FakeClock()
    client = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep, call_budget=1000)

    client.send(body=luma_body)

    first, second = stub_server.received
    sent_at = int(second.headers["x-timestamp"])
    assert sent_at == int(first.headers["x-timestamp"]) + 400
    # The first signature is stale by then (over 300 s); the resent request carries a fresh one.
    check_timestamp(timestamp=second.headers["x-timestamp"], now=int(clock.now))
    assert second.headers["x-signature"] != first.headers["x-signature"]


def test_gives_up_without_resending_when_retry_after_exceeds_the_call_budget(stub_server, private_key, luma_body):
    stub_server.replies = [
        StubReply(status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "120"}),
        StubReply(body=rec_success(["24-UG06"])),
    ]
    clock = FakeClock()
    client = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep, call_budget=90)

    with pytest.raises(ValidatorRateLimited) as caught:
        client.send(body=luma_body)

    assert caught.value.retry_after == 120.0
    assert len(stub_server.received) == 1
    assert clock.sleeps == []


def test_gives_up_after_max_attempts(stub_server, private_key, luma_body):
    stub_server.replies = [StubReply(status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "1"})]
    clock = FakeClock()
    client = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep, max_attempts=3)

    with pytest.raises(ValidatorRateLimited):
        client.send(body=luma_body)

    assert len(stub_server.received) == 3
    assert clock.sleeps == [1.0, 1.0]


def test_rate_limit_closes_the_gate_for_other_clients_of_the_same_validator(stub_server, private_key, luma_body):
    stub_server.replies = [
        StubReply(status=429, body={"detail": "Rate limit exceeded"}, headers={"Retry-After": "30"}),
        StubReply(body=rec_success(["24-UG06"])),
    ]
    clock = FakeClock()
    first = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep, max_attempts=1)
    second = make_client(stub_server.url, private_key, clock=clock, sleep=clock.sleep)

    with pytest.raises(ValidatorRateLimited):
        first.send(body=luma_body)
    second.send(body=luma_body)

    assert clock.sleeps == [30.0]


def test_failures_the_validator_may_have_processed_are_not_retried(stub_server, private_key, luma_body):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06"]), delay=1.0)]
    client = make_client(stub_server.url, private_key, timeout=0.3)

    with pytest.raises(ValidatorTimeout):
        client.send(body=luma_body)

    assert len(stub_server.received) == 1


def test_unreachable_validator_raises_unavailable(private_key, luma_body):
    client = make_client("http://127.0.0.1:9", private_key, connect_timeout=1)

    with pytest.raises(ValidatorUnavailable, match=r"cannot reach http://127\.0\.0\.1:9"):
        client.send(body=luma_body)


# --------------------------------------------------------------------------------- per-validator limits


@pytest.mark.parametrize("max_in_flight", [1, 2])
def test_requests_in_flight_per_validator_never_exceed_the_limit(stub_server, private_key, luma_body, max_in_flight):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06"]), delay=0.2)]
    client = make_client(stub_server.url, private_key, max_in_flight=max_in_flight, requests_per_minute=600)
    errors = []

    def call():
        try:
            client.send(body=luma_body)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(stub_server.received) == 4
    assert stub_server.max_in_flight == max_in_flight


def test_token_bucket_spaces_requests_to_the_rate_budget():
    clock = FakeClock(start=1000.0)
    gate = client_module._Gate(max_in_flight=1, requests_per_minute=6)  # one every 10 s, burst 1

    gate.take_token(deadline=2000, clock=clock, sleep=clock.sleep)
    gate.take_token(deadline=2000, clock=clock, sleep=clock.sleep)
    gate.take_token(deadline=2000, clock=clock, sleep=clock.sleep)

    assert clock.sleeps == [10.0, 10.0]


def test_token_bucket_refuses_when_the_wait_exceeds_the_deadline():
    clock = FakeClock(start=1000.0)
    gate = client_module._Gate(max_in_flight=1, requests_per_minute=6)
    gate.take_token(deadline=2000, clock=clock, sleep=clock.sleep)

    with pytest.raises(ValidatorBusy):
        gate.take_token(deadline=1005, clock=clock, sleep=clock.sleep)

    assert clock.sleeps == []


def test_no_free_slot_within_the_budget_raises_busy(stub_server, private_key, luma_body):
    stub_server.replies = [StubReply(body=rec_success(["24-UG06"]), delay=0.5)]
    slow = make_client(stub_server.url, private_key)
    impatient = make_client(stub_server.url, private_key, call_budget=0.1)
    thread = threading.Thread(target=slow.send, kwargs={"body": luma_body})
    thread.start()
    while not stub_server.received:
        threading.Event().wait(0.01)

    with pytest.raises(ValidatorBusy):
        impatient.send(body=luma_body)
    thread.join()

    assert len(stub_server.received) == 1


# --------------------------------------------------------------------------------------- /ping, /version


def test_ping_accepts_st_and_the_ts_of_newer_validators(stub_server, private_key):
    stub_server.replies = [
        StubReply(body={"detail": "pong", "st": 1751140800}),
        StubReply(body={"detail": "pong", "ts": 5}),
    ]
    client = make_client(stub_server.url, private_key)

    assert client.ping().server_time == 1751140800
    assert client.ping().server_time == 5
    assert [r.path for r in stub_server.received] == ["/ping", "/ping"]
    assert stub_server.received[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_ping_error_answers_raise(stub_server, private_key):
    stub_server.replies = [StubReply(status=401, body={"detail": "Unauthorized"})]

    with pytest.raises(ApiKeyRejected):
        make_client(stub_server.url, private_key).ping()


# ------------------------------------------------------------------------- hostile answers (json_intake)


def test_an_answer_with_nul_and_lone_surrogates_is_read_normalised(stub_server, private_key):
    raw = json.dumps(rec_success(["A2"])).replace('"A2"', '"A\\u00002"').replace('"Name A2"', '"Name \\ud800A2"')
    stub_server.replies = [StubReply(body=raw.encode())]
    client = make_client(stub_server.url, private_key)

    answer = client.recommend(query="A1x", context="[]", site_key="s1", num_results=1, created_at="x")

    assert [(item.sku, item.name) for item in answer.results] == [("A2", "Name \ufffdA2")]


@pytest.mark.parametrize(
    "body",
    [
        b'{"status_code": "200", "results": [], "x": NaN}',
        b'{"status_code": "200", "results": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["nan", "depth-5000"],
)
def test_an_answer_json_cannot_hold_is_an_invalid_answer_not_a_crash(stub_server, private_key, body):
    stub_server.replies = [StubReply(body=body)]
    client = make_client(stub_server.url, private_key)

    with pytest.raises(InvalidAnswer, match="/rec answered 200 without a JSON object"):
        client.recommend(query="A1x", context="[]", site_key="s1", num_results=1, created_at="x")

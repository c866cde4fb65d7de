"""The BitrecsRequest synapse on the wire: field names, JSON round trips, body hash and bittensor headers."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

# Until requirements.txt carries bittensor==10.5.0, a venv without it skips this module instead of failing collection.
# subnet.protocol is imported first, and bittensor only through it, so the import leaves the other loggers alone.
protocol = pytest.importorskip("subnet.protocol", exc_type=ImportError)

import bittensor as bt  # noqa: E402
import pydantic  # noqa: E402

from subnet.protocol import REQUEST_FIELDS, BitrecsRequest, parse_request, request_for_miners  # noqa: E402
from subnet.signing import load_public_key, verify_ed25519  # noqa: E402
from subnet.types import decode_results, encode_result  # noqa: E402

# bittensor 10.5.0's `Synapse.body_hash` reads `self.model_fields`, which pydantic 2.11+ deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Accessing the 'model_fields' attribute on the instance")

DATA = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
LUMA_ED25519 = (
    "d76a15e91dc88469aa36fb7f280cb454f706ac715714034fee7fe6c6825c4173"
    "22f729188e552959395b7163fb3dfeb1ae5a67757ca2150b36583bc69e34d207"
)
SYNAPSE_FIELDS = ("name", "timeout", "total_size", "header_size", "dendrite", "axon", "computed_body_hash")
# SHA3-256 of the empty string: the body hash when `required_hash_fields` is empty.
EMPTY_BODY_HASH = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
MINER_HOTKEY = "5Gj948cw84Fg92zs7JrcMuoGCQs5YNGGz91EcuavebDf14wQ"


@pytest.fixture
def luma_raw() -> str:
    return (DATA / "rec_request_luma.json").read_text(encoding="utf-8")


@pytest.fixture
def luma_body(luma_raw) -> dict:
    return json.loads(luma_raw)


@pytest.fixture
def miner_response(luma_body) -> BitrecsRequest:
    items = [
        {"sku": "WSH11-28-Blue", "name": "Ina Compression Short - 28 Blue", "price": "49", "reason": "Matching shorts"},
        {"sku": "24-WG087", "name": "Sprite Yoga Strap 10 foot", "price": "21", "reason": "Pairs with a tank"},
        {"sku": "24-UG06", "name": "Affirm Water Bottle", "price": "7", "reason": "Low cost add on"},
    ]
    return BitrecsRequest(
        **{
            **luma_body,
            "created_at": "2025-06-28T20:00:02",
            "user": "",
            "context": "[]",
            "results": [encode_result(item=item) for item in items],
            "models_used": ["google/gemini-2.0-flash-lite-001"],
            "miner_uid": "42",
            "miner_hotkey": MINER_HOTKEY,
        }
    )


def test_bitrecs_request_is_a_bittensor_synapse_with_exactly_the_ten_protocol_fields():
    protocol_fields = tuple(name for name in BitrecsRequest.model_fields if name not in SYNAPSE_FIELDS)

    assert issubclass(BitrecsRequest, bt.Synapse)
    assert protocol_fields == REQUEST_FIELDS
    assert set(BitrecsRequest.model_fields) == set(REQUEST_FIELDS) | set(SYNAPSE_FIELDS)


def test_nine_fields_are_required_nullable_keys_and_num_results_defaults_to_zero():
    schema = BitrecsRequest.model_json_schema()
    fields = BitrecsRequest.model_fields

    assert sorted(schema["required"]) == sorted(set(REQUEST_FIELDS) - {"num_results"})
    assert fields["num_results"].annotation is int
    assert fields["num_results"].default == 0
    for name in ("created_at", "user", "query", "context", "site_key", "miner_uid", "miner_hotkey"):
        assert fields[name].annotation == str | None
    for name in ("results", "models_used"):
        assert fields[name].annotation == list | None


def test_gateway_body_round_trips_through_the_validator_parse_unchanged(luma_raw, luma_body):
    request = parse_request(data=luma_raw)

    assert request.to_request_body() == luma_body
    assert json.loads(json.dumps(request.to_request_body())) == luma_body
    assert tuple(request.to_request_body()) == REQUEST_FIELDS
    assert request.name == "BitrecsRequest"


def test_parse_request_accepts_bytes_text_and_a_decoded_object_alike(luma_raw, luma_body):
    assert parse_request(data=luma_raw.encode()) == parse_request(data=luma_raw) == parse_request(data=luma_body)


def test_spec_signature_verifies_over_the_parsed_request(luma_raw):
    request = parse_request(data=luma_raw)

    verify_ed25519(
        public_key=load_public_key(hex_key=PUBLIC_KEY_HEX),
        signature=LUMA_ED25519,
        timestamp="1751140800",
        body=request.to_request_body(),
        now=1751140800,
    )


def test_lax_coercion_signs_the_coerced_value_as_the_public_validator_does(luma_body):
    as_string = parse_request(data={**luma_body, "num_results": "3"})

    assert as_string.num_results == 3
    assert as_string.to_request_body() == luma_body


@pytest.mark.parametrize("missing", sorted(set(REQUEST_FIELDS) - {"num_results"}))
def test_each_nullable_field_is_a_required_key(luma_body, missing):
    del luma_body[missing]

    with pytest.raises(pydantic.ValidationError, match=missing):
        parse_request(data=luma_body)


def test_num_results_may_be_left_out(luma_body):
    del luma_body["num_results"]

    assert parse_request(data=luma_body).num_results == 0


def test_null_values_are_accepted_and_unknown_keys_ignored(luma_body):
    request = parse_request(data={**luma_body, "results": None, "miner_signature": "ab", "name": "Other"})

    assert request.results is None
    assert request.name == "BitrecsRequest"
    assert "miner_signature" not in request.model_dump()


@pytest.mark.parametrize(("field", "value"), [("query", 5), ("results", "[]"), ("num_results", "three")])
def test_wrong_types_are_refused(luma_body, field, value):
    with pytest.raises(pydantic.ValidationError, match=field):
        parse_request(data={**luma_body, field: value})


def test_parse_request_refuses_json_that_is_not_an_object():
    with pytest.raises(ValueError, match="JSON object"):
        parse_request(data="[]")


def test_miner_response_round_trips_through_the_synapse_json(miner_response):
    wire = miner_response.model_dump_json()

    received = parse_request(data=wire)

    assert received == miner_response
    assert set(json.loads(wire)) == set(REQUEST_FIELDS) | set(SYNAPSE_FIELDS)
    assert json.loads(wire)["name"] == "BitrecsRequest"
    assert received.to_request_body()["miner_uid"] == "42"
    assert decode_results(results=received.results or [])[2] == {
        "sku": "24-UG06",
        "name": "Affirm Water Bottle",
        "price": "7",
        "reason": "Low cost add on",
    }


def test_required_hash_fields_is_empty_so_the_body_hash_covers_no_field(luma_body, miner_response):
    request = parse_request(data=luma_body)

    assert BitrecsRequest.required_hash_fields == ()
    assert request.body_hash == EMPTY_BODY_HASH == hashlib.sha3_256(b"").hexdigest()
    assert miner_response.body_hash == EMPTY_BODY_HASH
    assert request.to_headers()["computed_body_hash"] == EMPTY_BODY_HASH


def test_to_dict_stringifies_lists_as_the_public_validator_logs_them(miner_response, luma_body):
    logged = miner_response.to_dict()

    assert list(logged) == list(REQUEST_FIELDS)
    assert logged["models_used"] == "['google/gemini-2.0-flash-lite-001']"
    assert logged["results"].startswith('[\'{"sku":"WSH11-28-Blue"')
    assert parse_request(data=luma_body).to_dict()["results"] is None


def test_null_miner_fields_are_lost_in_the_headers_and_the_axon_cannot_rebuild_the_synapse(luma_body):
    headers = parse_request(data=luma_body).to_headers()

    assert "bt_header_input_obj_miner_uid" not in headers
    with pytest.raises(pydantic.ValidationError, match="miner_uid"):
        BitrecsRequest.from_headers(headers)


def test_request_for_miners_replaces_nulls_so_the_axon_can_rebuild_the_synapse(luma_body):
    request = parse_request(data={**luma_body, "results": None})

    prepared = request_for_miners(request=request)
    rebuilt = BitrecsRequest.from_headers(prepared.to_headers())

    assert prepared.miner_uid == prepared.miner_hotkey == ""
    assert prepared.results == []
    assert prepared.query == request.query
    assert request.miner_uid is None
    assert rebuilt.name == "BitrecsRequest"


def test_importing_the_protocol_leaves_existing_loggers_as_they_were():
    code = (
        "import logging, sys\n"
        "logger = logging.getLogger('catalog_sync.services')\n"
        "logger.setLevel(logging.INFO)\n"
        "logger.addHandler(logging.StreamHandler(sys.stdout))\n"
        "import subnet.protocol\n"
        "print(logging.getLevelName(logger.level), len(logger.handlers), 'bittensor' in sys.modules)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    )

    assert completed.stdout.strip().splitlines()[-1] == "INFO 1 True"

"""Request signing of the validator `/rec` API against the vectors of BITRECS_PROTOCOL.md §1.8 and §2."""

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bitrecs_site.json_intake import JsonIntakeError
from subnet.signing import (
    LOCALNET_HMAC_KEY,
    SIGNED_FIELDS,
    SIGNED_FIELDS_WITH_MINER_SIGNATURE,
    SignatureError,
    SignatureExpired,
    SignatureFromFuture,
    SignatureMalformed,
    SignatureMismatch,
    canonical_body,
    check_timestamp,
    derive_public_key_hex,
    generate_private_key_hex,
    load_private_key,
    load_public_key,
    public_key_hex,
    sign_ed25519,
    sign_localnet_hmac,
    signing_message,
    verify_ed25519,
    verify_localnet_hmac,
)
from subnet.types import REQUEST_FIELDS, build_request_body, decode_results, encode_result, format_created_at

DATA = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[2]

# RFC 8032 test key 1, the key of the spec's vectors.
PRIVATE_KEY_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
TIMESTAMP = "1751140800"
NOW = 1751140800

CAFE_SHA256 = "59fe9d0b2bff0c4115d23adc2306871f4ab1ae098212b708613b63b24197f613"
CAFE_ED25519 = (
    "492cad73551279d152a35eb8cb2d8dd3a7eee2f28a326cf52faff9655ab407a1"
    "3103c9634d6b1cc746c44086a2d44cc713e5892cd86d55876e33a79530d7ee0f"
)
CAFE_HMAC = "5f8627b25b1e5869b542df6722fffadf2a7a846a2d98c0029e0f09c9cd09129c"
LUMA_SHA256 = "847190d8292a386a17a165c08b13930afe92018d750cbcc99c3ac7ecfa890396"
LUMA_ED25519 = (
    "d76a15e91dc88469aa36fb7f280cb454f706ac715714034fee7fe6c6825c4173"
    "22f729188e552959395b7163fb3dfeb1ae5a67757ca2150b36583bc69e34d207"
)
LUMA_HMAC = "7e3f9b593ea01ecc1a58421eb11f89439fa950d549edc3a62b4346d1951d9cfd"


def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def cafe_body() -> dict:
    return _load("rec_request_cafe.json")


@pytest.fixture
def luma_body() -> dict:
    return _load("rec_request_luma.json")


@pytest.fixture
def private_key():
    return load_private_key(hex_key=PRIVATE_KEY_HEX)


@pytest.fixture
def public_key():
    return load_public_key(hex_key=PUBLIC_KEY_HEX)


# --- canonical bytes and the spec's vectors ---------------------------------------------------------------


def test_signing_message_reproduces_the_cafe_vector_byte_for_byte(cafe_body):
    expected = (DATA / "signed_message_cafe.txt").read_bytes().rstrip(b"\n")

    message = signing_message(timestamp=TIMESTAMP, body=cafe_body)

    assert message == expected
    assert len(message) == 519
    assert hashlib.sha256(message).hexdigest() == CAFE_SHA256


def test_signing_message_reproduces_the_luma_vector(luma_body):
    message = signing_message(timestamp=TIMESTAMP, body=luma_body)

    assert len(message) == 1076
    assert hashlib.sha256(message).hexdigest() == LUMA_SHA256


def test_an_int_timestamp_signs_the_same_bytes_as_its_decimal_string(cafe_body):
    assert signing_message(timestamp=1751140800, body=cafe_body) == signing_message(timestamp=TIMESTAMP, body=cafe_body)


@pytest.mark.parametrize(
    ("body_name", "signature"), [("rec_request_cafe.json", CAFE_ED25519), ("rec_request_luma.json", LUMA_ED25519)]
)
def test_sign_ed25519_reproduces_the_spec_signatures(private_key, body_name, signature):
    assert sign_ed25519(private_key=private_key, timestamp=TIMESTAMP, body=_load(body_name)) == signature


@pytest.mark.parametrize(
    ("body_name", "signature"), [("rec_request_cafe.json", CAFE_HMAC), ("rec_request_luma.json", LUMA_HMAC)]
)
def test_sign_localnet_hmac_reproduces_the_spec_digests(body_name, signature):
    assert sign_localnet_hmac(timestamp=TIMESTAMP, body=_load(body_name)) == signature
    assert LOCALNET_HMAC_KEY == b"change-me"


def test_canonical_body_sorts_keys_uses_default_separators_and_escapes_non_ascii():
    body = {
        "created_at": "2025-06-28T20:00:00",
        "user": "",
        "num_results": 2,
        "query": "a/b",
        "context": "Café 😀 \x7f\n\t",
        "site_key": "s1",
        "results": [],
        "models_used": [],
        "miner_uid": None,
        "miner_hotkey": None,
    }

    assert canonical_body(body=body) == (
        '{"context": "Caf\\u00e9 \\ud83d\\ude00 \\u007f\\n\\t", "created_at": "2025-06-28T20:00:00", '
        '"miner_hotkey": null, "miner_uid": null, "models_used": [], "num_results": 2, "query": "a/b", '
        '"results": [], "site_key": "s1", "user": ""}'
    )


def test_canonical_body_leaves_out_keys_outside_the_signed_fields(cafe_body):
    with_extra = {**cafe_body, "name": "BitrecsRequest", "timeout": 12.0, "miner_signature": "ab"}

    assert canonical_body(body=with_extra) == canonical_body(body=cafe_body)


def test_canonical_body_refuses_a_body_missing_a_signed_field(cafe_body):
    del cafe_body["miner_hotkey"]

    with pytest.raises(ValueError, match="body lacks signed fields: miner_hotkey"):
        canonical_body(body=cafe_body)


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_results", "2"), ("num_results", True), ("num_results", 2.0), ("results", ()), ("query", 5)],
)
def test_canonical_body_refuses_values_the_validator_would_hold_with_another_type(cafe_body, field, value):
    cafe_body[field] = value

    with pytest.raises(TypeError, match=field):
        canonical_body(body=cafe_body)


def test_newer_upstream_field_set_adds_a_null_miner_signature_in_sorted_position(cafe_body):
    body = canonical_body(body=cafe_body, fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE)

    assert SIGNED_FIELDS == REQUEST_FIELDS
    assert (*REQUEST_FIELDS, "miner_signature") == SIGNED_FIELDS_WITH_MINER_SIGNATURE
    assert body.endswith(
        '"miner_hotkey": null, "miner_signature": null, "miner_uid": null, "models_used": [], '
        '"num_results": 2, "query": "A1x", "results": [], "site_key": "s1", "user": ""}'
    )


def test_absent_defaulted_fields_sign_as_the_model_default(cafe_body):
    without = {key: value for key, value in cafe_body.items() if key != "num_results"}

    assert canonical_body(body=without) == canonical_body(body={**cafe_body, "num_results": 0})


def test_newer_upstream_field_set_accepts_a_body_that_carries_miner_signature(cafe_body, private_key, public_key):
    body = {**cafe_body, "miner_signature": None}
    fields = SIGNED_FIELDS_WITH_MINER_SIGNATURE
    signature = sign_ed25519(private_key=private_key, timestamp=TIMESTAMP, body=body, fields=fields)

    verify_ed25519(public_key=public_key, signature=signature, timestamp=TIMESTAMP, body=body, now=NOW, fields=fields)
    assert signature != CAFE_ED25519
    with pytest.raises(SignatureMismatch):
        verify_ed25519(
            public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=body, now=NOW, fields=fields
        )


# --- verification -----------------------------------------------------------------------------------------


def test_verify_ed25519_accepts_the_spec_signature_in_either_case(cafe_body, public_key):
    verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW)
    verify_ed25519(public_key=public_key, signature=CAFE_ED25519.upper(), timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_verify_localnet_hmac_accepts_the_spec_digest(cafe_body):
    verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_verify_localnet_hmac_is_case_sensitive_like_the_public_validator(cafe_body):
    with pytest.raises(SignatureMismatch):
        verify_localnet_hmac(signature=CAFE_HMAC.upper(), timestamp=TIMESTAMP, body=cafe_body, now=NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [("query", "A2x"), ("num_results", 3), ("context", "[]"), ("site_key", "s2"), ("miner_uid", ""), ("results", [""])],
)
def test_verify_ed25519_refuses_a_tampered_body(cafe_body, public_key, field, value):
    cafe_body[field] = value

    with pytest.raises(SignatureMismatch):
        verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_verify_localnet_hmac_refuses_a_tampered_body(cafe_body):
    cafe_body["query"] = "A2x"

    with pytest.raises(SignatureMismatch):
        verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_verify_ed25519_refuses_a_signature_bound_to_another_timestamp(cafe_body, public_key):
    with pytest.raises(SignatureMismatch):
        verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp="1751140801", body=cafe_body, now=NOW)


def test_verify_ed25519_refuses_another_key(cafe_body):
    other_key = load_public_key(hex_key=derive_public_key_hex(private_key_hex=generate_private_key_hex()))

    with pytest.raises(SignatureMismatch):
        verify_ed25519(public_key=other_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_verify_localnet_hmac_refuses_another_key(cafe_body):
    with pytest.raises(SignatureMismatch):
        verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, key=b"other", now=NOW)


def test_verify_accepts_a_timestamp_exactly_300_seconds_old(cafe_body, public_key):
    verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW + 300)
    verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, now=NOW + 300)


def test_verify_refuses_a_stale_timestamp_even_with_a_valid_signature(cafe_body, public_key):
    with pytest.raises(SignatureExpired):
        verify_ed25519(
            public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW + 301
        )
    with pytest.raises(SignatureExpired):
        verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, now=NOW + 301)


def test_verify_accepts_a_timestamp_up_to_60_seconds_ahead(cafe_body, public_key):
    verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW - 60)


def test_verify_refuses_a_timestamp_beyond_the_allowed_future_skew(cafe_body, public_key):
    with pytest.raises(SignatureFromFuture):
        verify_ed25519(public_key=public_key, signature=CAFE_ED25519, timestamp=TIMESTAMP, body=cafe_body, now=NOW - 61)
    with pytest.raises(SignatureFromFuture):
        verify_localnet_hmac(signature=CAFE_HMAC, timestamp=TIMESTAMP, body=cafe_body, now=NOW - 61)


def test_verify_without_a_future_bound_accepts_any_future_timestamp_like_the_public_validator(cafe_body, public_key):
    verify_ed25519(
        public_key=public_key,
        signature=CAFE_ED25519,
        timestamp=TIMESTAMP,
        body=cafe_body,
        now=NOW - 86_400,
        max_future_skew=None,
    )


@pytest.mark.parametrize("timestamp", ["1.5", " 1751140800", "+1751140800", "1_751_140_800", "", "-1", "١٢٣"])
def test_check_timestamp_refuses_anything_but_decimal_digits(timestamp):
    with pytest.raises(SignatureMalformed):
        check_timestamp(timestamp=timestamp, now=NOW)


def test_check_timestamp_returns_the_seconds():
    assert check_timestamp(timestamp=TIMESTAMP, now=NOW + 10) == 1751140800


@pytest.mark.parametrize("signature", [CAFE_ED25519[:-2], CAFE_ED25519 + "00", "zz" + CAFE_ED25519[2:], ""])
def test_verify_ed25519_refuses_a_malformed_signature(cafe_body, public_key, signature):
    with pytest.raises(SignatureMalformed):
        verify_ed25519(public_key=public_key, signature=signature, timestamp=TIMESTAMP, body=cafe_body, now=NOW)


def test_signature_errors_share_one_base():
    for error in (SignatureMalformed, SignatureExpired, SignatureFromFuture, SignatureMismatch):
        assert issubclass(error, SignatureError)
    assert issubclass(SignatureError, ValueError)


# --- keys -------------------------------------------------------------------------------------------------


def test_public_key_of_the_rfc_8032_key(private_key):
    assert public_key_hex(private_key=private_key) == PUBLIC_KEY_HEX
    assert derive_public_key_hex(private_key_hex=PRIVATE_KEY_HEX) == PUBLIC_KEY_HEX
    assert derive_public_key_hex(private_key_hex=PRIVATE_KEY_HEX.upper() + "\n") == PUBLIC_KEY_HEX


def test_generated_private_key_is_64_hex_and_signs_verifiably(cafe_body):
    hex_key = generate_private_key_hex()
    signature = sign_ed25519(private_key=load_private_key(hex_key=hex_key), timestamp=TIMESTAMP, body=cafe_body)

    assert len(hex_key) == 64
    assert int(hex_key, 16) >= 0
    assert hex_key != generate_private_key_hex()
    verify_ed25519(
        public_key=load_public_key(hex_key=derive_public_key_hex(private_key_hex=hex_key)),
        signature=signature,
        timestamp=TIMESTAMP,
        body=cafe_body,
        now=NOW,
    )


@pytest.mark.parametrize("hex_key", [PRIVATE_KEY_HEX[:-1], PRIVATE_KEY_HEX + "00", "g" * 64, ""])
def test_keys_must_be_64_hex_characters(hex_key):
    with pytest.raises(ValueError, match="64 hex characters"):
        load_private_key(hex_key=hex_key)
    with pytest.raises(ValueError, match="64 hex characters"):
        load_public_key(hex_key=hex_key)


# --- the gateway's body -----------------------------------------------------------------------------------


def test_build_request_body_gives_the_ten_fields_with_values_a_validator_accepts():
    body = build_request_body(
        query="A1x", context='[{"sku":"A1","name":"Tee","price":"10"}]', site_key="s1", num_results=2, created_at="c"
    )

    assert tuple(body) == REQUEST_FIELDS
    assert body == {
        "created_at": "c",
        "user": "",
        "num_results": 2,
        "query": "A1x",
        "context": '[{"sku":"A1","name":"Tee","price":"10"}]',
        "site_key": "s1",
        "results": [],
        "models_used": [],
        "miner_uid": "",
        "miner_hotkey": "",
    }


def test_a_built_body_still_verifies_after_the_json_round_trip_to_the_validator(private_key, public_key):
    body = build_request_body(query="WT02-M-Green", context="[]", site_key="shop", num_results=3, created_at="c")
    signature = sign_ed25519(private_key=private_key, timestamp=TIMESTAMP, body=body)

    received = json.loads(json.dumps(body).encode())

    verify_ed25519(public_key=public_key, signature=signature, timestamp=TIMESTAMP, body=received, now=NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"query": "ab"}, "query must be 3 to 40"),
        ({"query": "x" * 41}, "query must be 3 to 40"),
        ({"num_results": 0}, "num_results must be an integer from 1 to 20"),
        ({"num_results": 21}, "num_results must be an integer from 1 to 20"),
        ({"num_results": True}, "num_results must be an integer from 1 to 20"),
        ({"context": ""}, "context must be a non-empty"),
        ({"site_key": ""}, "site_key must not be empty"),
    ],
)
def test_build_request_body_refuses_values_the_validator_rejects(overrides, message):
    arguments = {"query": "A1x", "context": "[]", "site_key": "s1", "num_results": 2, "created_at": "c"} | overrides

    with pytest.raises(ValueError, match=message):
        build_request_body(**arguments)


def test_format_created_at_gives_utc_seconds():
    when = datetime(2025, 6, 28, 22, 0, 0, 987_000, tzinfo=timezone(timedelta(hours=2)))

    assert format_created_at(when=when) == "2025-06-28T20:00:00"
    assert format_created_at(when=when.astimezone(UTC)) == "2025-06-28T20:00:00"


def test_format_created_at_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="aware"):
        format_created_at(when=datetime(2025, 6, 28, 20, 0, 0))  # noqa: DTZ001


def test_results_round_trip_as_compact_json_strings():
    item = {"sku": "24-UG06", "name": "Affirm Water Bottle", "price": "7", "reason": "Low cost add on"}

    encoded = encode_result(item=item)

    assert encoded == '{"sku":"24-UG06","name":"Affirm Water Bottle","price":"7","reason":"Low cost add on"}'
    assert decode_results(results=[encoded]) == [item]


@pytest.mark.parametrize(
    ("results", "error"),
    [(["{'sku': 'a'}"], JsonIntakeError), (["[1]"], ValueError), ([{"sku": "a"}], ValueError)],
)
def test_decode_results_is_strict(results, error):
    with pytest.raises(error):
        decode_results(results=results)


def test_signing_and_wire_types_do_not_import_bittensor():
    code = "import sys, subnet.signing, subnet.types; print('bittensor' in sys.modules)"

    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )

    assert completed.stdout.strip() == "False"

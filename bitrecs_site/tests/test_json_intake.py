"""The one JSON normaliser: any input gives a value PostgreSQL's jsonb and text accept, or JsonIntakeError.

Property-based (hypothesis, derandomized: the same cases every run). The storage check needs PostgreSQL (CI and
`make test` with DATABASE_URL set); on SQLite it is skipped, since SQLite accepts what PostgreSQL refuses.
"""

import json
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrecs_site.json_intake import (
    DEFAULT_MAX_DEPTH,
    JsonIntakeError,
    JsonTooLarge,
    clean_text,
    normalise_json,
    parse_json,
    parse_json_object,
)

PROPERTY = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any code point, lone surrogates and NUL included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)
# Fragments that make JSON text near-valid and hostile: non-finite numbers, NUL and surrogate escapes, deep nesting.
TOKENS = [
    "{", "}", "[", "]", ",", ":", '"k"', '"v"', '"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"\\udfff\\ud800"',
    '"\\ud83d\\ude00"', "NaN", "Infinity", "-Infinity", "1e999", "-1e400", "0", "-0.0", "1.5e-320", "true", "null",
    "9" * 4400, "[" * 70, "]" * 70, "{\"a\":" * 70, '"\x00"', '"\\', "\ufeff", " ",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
hostile_text = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    json_values.map(lambda v: json.dumps(v, allow_nan=True, ensure_ascii=False)),
    token_soup,
)
hostile_bytes = st.one_of(
    st.binary(max_size=64),
    hostile_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    hostile_text.map(lambda text: text.encode("utf-16", "surrogatepass")),
)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *strings_in(item)]]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def assert_postgresql_stores(value: Any) -> None:
    """What Django's JSONField sends (json.dumps) is valid jsonb, and every string is valid text."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb", [json.dumps(value)])
        cursor.execute("SELECT count(*) FROM unnest(%s::text[])", [strings_in(value)])


@pytest.fixture
def postgresql(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the storage property needs PostgreSQL (SQLite accepts NUL and lone surrogates)")


def check(parse: Any) -> None:
    try:
        value = parse()
    except JsonIntakeError as exc:
        assert exc.status_code in (400, 413)
        assert exc.code in ("invalid_json", "payload_too_large")
        assert exc.message
        return
    assert depth(value) <= DEFAULT_MAX_DEPTH
    try:
        assert_postgresql_stores(value)
    except DatabaseError as exc:  # pragma: no cover - the failure this test exists to catch
        pytest.fail(f"PostgreSQL refused {value!r}: {exc}")


@PROPERTY
@given(data=hostile_bytes)
def test_any_bytes_give_a_storable_value_or_a_4xx_error(postgresql: None, data: bytes) -> None:
    check(lambda: parse_json(data))


@PROPERTY
@given(text=hostile_text)
def test_any_text_gives_a_storable_value_or_a_4xx_error(postgresql: None, text: str) -> None:
    check(lambda: parse_json(text))


@PROPERTY
@given(value=json_values)
def test_any_decoded_value_normalises_to_a_storable_value_or_a_4xx_error(postgresql: None, value: Any) -> None:
    check(lambda: normalise_json(value))


# What PostgreSQL's jsonb holds: any text but NUL and lone surrogates (category Cs, which the normaliser replaces).
storable_chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
clean_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(storable_chars, max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(storable_chars, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTY
@given(value=clean_values, ascii_only=st.booleans())
def test_json_that_postgresql_can_hold_comes_back_unchanged(value: Any, ascii_only: bool) -> None:
    assert parse_json(json.dumps(value, ensure_ascii=ascii_only).encode()) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"price": NaN}', "NaN is not a number JSON allows."),
        (b"[Infinity]", "Infinity is not a number JSON allows."),
        (b"[1e400]", "The number 1e400 is too large."),
        (b"[" * 100_000 + b"]" * 100_000, f"The JSON nests deeper than {DEFAULT_MAX_DEPTH} levels."),
        (b"[" * 65 + b"]" * 65, f"The JSON nests deeper than {DEFAULT_MAX_DEPTH} levels."),
        (b'{"title": "caf\xe9"}', "The body is not UTF-8 text (byte 14); send JSON in UTF-8."),
        ('{"a": 1}'.encode("utf-16"), "The body is not UTF-8 text (byte 0); send JSON in UTF-8."),
    ],
)
def test_what_is_refused_and_why(data: bytes, message: str) -> None:
    with pytest.raises(JsonIntakeError) as caught:
        parse_json(data)

    assert (caught.value.status_code, caught.value.code, caught.value.message) == (400, "invalid_json", message)


def test_a_body_over_the_limit_is_a_413() -> None:
    with pytest.raises(JsonTooLarge) as caught:
        parse_json(b"[" + b"1," * 600 + b"1]", max_bytes=1000)

    assert (caught.value.status_code, caught.value.code) == (413, "payload_too_large")
    assert caught.value.message == "The JSON is 1203 bytes; the limit is 1000 bytes."


def test_nul_is_stripped_and_the_key_without_it_wins_a_collision() -> None:
    value = parse_json(b'{"sku\\u0000": "late", "sku": "AB\\u0000C", "t\\u0000": 1}')

    assert value == {"sku": "AB" + "C", "t": 1}


def test_a_repeated_key_keeps_its_last_value_as_jsonb_does() -> None:
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}


def test_lone_surrogates_become_replacement_characters_and_pairs_are_kept() -> None:
    assert parse_json(b'["\\ud800x", "\\ud83d\\ude00"]') == ["\ufffdx", "\U0001f600"]
    assert clean_text("a\ud800\x00b") == "a\ufffdb"


def test_a_utf8_bom_is_dropped() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_parse_json_object_refuses_other_values() -> None:
    with pytest.raises(JsonIntakeError, match="must be a JSON object"):
        parse_json_object(b"[1]")


# Any JSON a sender may write: NUL and lone surrogates included, escaped (ensure_ascii) or raw where JSON allows.
any_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)


@given(value=any_values, ascii_only=st.booleans())
def test_the_shortcut_for_text_with_nothing_to_normalise_answers_what_the_walk_answers(
    value: Any, ascii_only: bool
) -> None:
    # given: a body as a sender writes it (raw surrogates cannot be sent as UTF-8: those go escaped)
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(value).encode()

    # then: parse_json (which skips the walk when no escape needs it) equals the walk over json.loads
    assert parse_json(body) == normalise_json(json.loads(body))


def test_the_shortcut_is_not_taken_for_nul_surrogates_or_depth() -> None:
    assert parse_json(b'{"a\\u0000": "b\\u0000c"}') == {"a": "bc"}
    assert parse_json(b'["\\uDBFF"]') == ["\ufffd"]
    with pytest.raises(JsonIntakeError, match="nests deeper than 2 levels"):
        parse_json(b"[[[1]]]", max_depth=2)

"""Property-based tests (hypothesis, derandomized) of the parsers of outside input built on the JSON normaliser:
widget event batches, validator answers (gateway side) and miners' results (validator side).

Each either returns values with no NUL and no lone surrogate (what PostgreSQL text holds), or refuses with its own
error type (InvalidRequest, InvalidAnswer, ValueError): never anything else.
"""

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitrecs_site.tests.test_json_intake import hostile_bytes, hostile_text, json_values, strings_in
from merchants.exceptions import InvalidRequest
from recommendations.services.events import parse_event_batch
from subnet.client import InvalidAnswer, _parse_rec_answer
from subnet.types import decode_results

PROPERTY = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
TS = 1_780_000_000_000
# Well-formed ids, some with a NUL the normaliser strips: the accepted path is taken too.
ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True).flatmap(
    lambda text: st.sampled_from([text, text + "\x00", "\x00" + text])
)


def assert_clean(value: Any) -> None:
    for text in strings_in(value):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate


# A batch that is valid in shape, with hostile text where text goes; or anything at all.
events = st.fixed_dictionaries(
    {"event_id": any_text | ids, "type": st.sampled_from(["view", "click", "x"]), "ts": st.integers(), "sku": any_text},
    optional={"rec_id": any_text, "session_id": any_text, "placement": any_text, "arm": any_text, "x": json_values},
)
batches = st.one_of(
    st.fixed_dictionaries({"site_key": any_text, "events": st.lists(events, max_size=3)}).map(
        lambda batch: json.dumps(batch).encode("utf-8", "surrogatepass")
    ),
    st.lists(events, min_size=1, max_size=3).map(
        lambda batch: json.dumps({"site_key": "sk_1", "events": [{**e, "ts": TS} for e in batch]}).encode()
    ),
    hostile_bytes,
)


@PROPERTY
@given(body=batches)
def test_an_event_batch_parses_to_clean_events_or_invalid_request(body: bytes) -> None:
    try:
        batch = parse_event_batch(body=body)
    except InvalidRequest as exc:
        assert exc.status_code == 400
        assert exc.message
        return
    assert batch.events
    assert_clean([batch.site_key, *batch.events])


def answer_response(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = "application/json"
    return response


items = st.fixed_dictionaries({"sku": any_text}, optional={"name": any_text, "price": any_text, "x": json_values})
answers = st.one_of(
    st.fixed_dictionaries({"status_code": st.just("200"), "results": st.lists(items, max_size=3)}).map(
        lambda answer: json.dumps(answer).encode("utf-8", "surrogatepass")
    ),
    hostile_bytes,
    hostile_text.map(
        lambda text: ('{"status_code": "200", "results": [' + text + "]}").encode("utf-8", "surrogatepass")
    ),
)


@PROPERTY
@given(body=answers)
def test_a_validator_answer_parses_to_clean_items_or_invalid_answer(body: bytes) -> None:
    try:
        answer = _parse_rec_answer(response=answer_response(body), latency=0.1, attempts=1)
    except InvalidAnswer:
        return
    assert_clean([[item.sku, item.name, item.price, item.extra] for item in answer.results])


@PROPERTY
@given(results=st.lists(st.one_of(hostile_text, json_values.map(json.dumps), json_values), max_size=3))
def test_a_miners_results_decode_to_clean_objects_or_value_error(results: list[Any]) -> None:
    try:
        decoded = decode_results(results=results)
    except ValueError:
        return
    assert all(isinstance(item, dict) for item in decoded)
    assert_clean(decoded)


@pytest.mark.parametrize("raw", ['{"sku": "A\\u0000B"}', '{"sku": "A\\ud800"}'])
def test_a_miners_result_with_nul_or_a_lone_surrogate_is_decoded_clean(raw: str) -> None:
    assert decode_results(results=[raw]) in ([{"sku": "AB"}], [{"sku": "A\ufffd"}])

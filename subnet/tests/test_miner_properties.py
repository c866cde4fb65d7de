"""Property tests of what a miner parses from outside: the request, its context and user profile, an LLM's answer.

Hypothesis, derandomized. The properties:
- `parse_request` raises nothing but ValueError (pydantic.ValidationError and json.JSONDecodeError are ones);
- the offline `recommend` answers any context, user profile and count: at most the count asked (and
  MAX_NUM_RESULTS), distinct SKUs, each from the context, never the query SKU;
- `parse_items` returns the `{sku, ...}` objects of any model answer text without raising.
"""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("subnet.protocol", exc_type=ImportError)

from subnet.miner.prompt import parse_items
from subnet.miner.strategies import MAX_NUM_RESULTS, recommend
from subnet.protocol import parse_request

PROPERTY = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text)
json_values = st.recursive(
    scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=12,
)
DEEP = [
    "[" * 5000,
    "{" + '"a":[' * 3000,
    "[" * 5000 + "]" * 5000,
    '{"cart": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"sku": "SKU-1", "a": ' * 3000 + "1" + "}" * 3000,
]
# parse_items rescans from each "{" of an object it cannot load, so a deep one costs depth x length: just past
# the decoder's nesting limit (about 1,000) is enough to reach its RecursionError.
DEEP_ITEMS = ['{"sku": "SKU-1", "a": ' * 1100 + "1" + "}" * 1100, "{" * 1100 + "}" * 1100]
context_items = st.fixed_dictionaries(
    {"sku": st.sampled_from(["SKU-1", "SKU-2", "sku-1", "SKU-3", " SKU-4 ", ""]) | scalar},
    optional={"name": scalar, "price": scalar, "extra": json_values},
)
contexts = st.one_of(
    st.lists(context_items | json_values, max_size=6).map(json.dumps),
    json_values.map(json.dumps),
    any_text,
    st.sampled_from(DEEP),
)
users = st.one_of(
    st.none(),
    any_text,
    st.fixed_dictionaries({"cart": st.lists(context_items | json_values, max_size=3) | json_values}).map(json.dumps),
    json_values.map(json.dumps),
    st.sampled_from(DEEP),
)


def _sku_of(item: Any) -> str:
    return str(item["sku"]) if isinstance(item, dict) and item.get("sku") else ""


@PROPERTY
@given(query=st.sampled_from(["SKU-1", "sku-2", "", "nothing"]) | any_text, context=contexts, user=users, count=scalar)
def test_the_offline_miner_answers_any_context_with_distinct_context_skus_but_the_query(query, context, user, count):
    num_results = count if isinstance(count, int) and not isinstance(count, bool) else 3

    answer = recommend(query=query, context=context, num_results=num_results, provider=None, user=user)

    skus = [item["sku"] for item in answer.items]
    try:
        offered = {_sku_of(item) for item in json.loads(context)} if context.startswith("[") else set()
    except (ValueError, RecursionError, TypeError):
        offered = set()
    assert len(skus) <= max(0, min(num_results, MAX_NUM_RESULTS))
    assert len({sku.casefold() for sku in skus}) == len(skus)
    assert set(skus) <= offered
    assert query.strip().casefold() not in {sku.strip().casefold() for sku in skus} or not query.strip()


request_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": scalar,
        "query": scalar,
        "context": scalar | contexts,
        "num_results": scalar | st.just("3"),
        "user": scalar,
        "site_key": scalar,
        "results": json_values,
        "models_used": json_values,
        "miner_uid": scalar,
        "miner_hotkey": scalar,
        "created_at": scalar,
        "extra": json_values,
    },
)


@PROPERTY
@given(
    data=st.one_of(
        request_fields.map(json.dumps),
        request_fields.map(lambda value: json.dumps(value).encode()),
        request_fields,
        st.binary(max_size=40),
        any_text,
        st.sampled_from(DEEP),
    )
)
def test_parse_request_raises_nothing_but_value_error(data):
    try:
        request = parse_request(data=data)
    except ValueError:
        return
    assert request.num_results is None or isinstance(request.num_results, int)


@PROPERTY
@given(
    text=st.one_of(json_values.map(json.dumps), any_text, st.sampled_from([*DEEP_ITEMS, "{'sku': 'A', 'x': True,}"]))
)
def test_parse_items_returns_sku_objects_from_any_model_text(text):
    items = parse_items(text)

    assert all(isinstance(item, dict) and "sku" in item for item in items)


def test_a_context_or_profile_nested_too_deeply_gives_an_empty_answer_not_a_crash():
    # given: found by the property above (json.loads raises RecursionError, which is not a ValueError)
    deep = "[" * 5000 + "]" * 5000

    # when
    answer = recommend(query="SKU-1", context=deep, num_results=3, provider=None, user='{"cart": ' + deep + "}")

    # then
    assert (answer.items, answer.models_used) == ([], ["bitrecs/offline-text-similarity"])


def test_a_request_nested_too_deeply_is_a_value_error():
    with pytest.raises(ValueError, match="The JSON nests deeper than 64 levels"):  # json_intake.JsonIntakeError
        parse_request(data='{"context": ' + "[" * 5000 + "]" * 5000 + "}")


def test_model_text_that_reads_as_a_python_set_of_dicts_gives_no_items():
    # given: found by the property above ("{{}}" is a set literal holding a dict: literal_eval raised TypeError)
    assert parse_items("Here you go: {{}} and {{'sku': 'A'}}") == [{"sku": "A"}]

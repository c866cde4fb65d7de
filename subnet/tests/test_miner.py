"""The reference miner's answer: a local OpenAI-compatible server (well-formed, malformed, slow, failing), offline."""

import json

import pytest

from subnet.answers import find_sku_problem
from subnet.miner.prompt import build_prompt, parse_items, select_items
from subnet.miner.providers import (
    ChatProvider,
    ProviderAuthError,
    ProviderConfigError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
    load_provider,
)
from subnet.miner.strategies import OFFLINE_MODEL, context_entries, recommend
from subnet.tests.conftest import StubReply
from subnet.types import decode_results, encode_result

QUERY = "WT02-M-Green"
# The §2 example catalog as validators forward it (rewritten, name-sorted).
CONTEXT = json.dumps(
    [
        {"sku": "24-UG06", "name": "Affirm Water Bottle", "price": "7"},
        {"sku": "24-WB02", "name": "Compete Track Tote", "price": "32"},
        {"sku": "24-MB02", "name": "Fusion Backpack", "price": "59"},
        {"sku": "WSH11-28-Blue", "name": "Ina Compression Short - 28 Blue", "price": "49"},
        {"sku": "WJ09-S-Blue", "name": "Jade Yoga Jacket - S Blue", "price": "32"},
        {"sku": "WH05-XS-Orange", "name": "Selene Yoga Hoodie - XS Orange", "price": "42"},
        {"sku": "24-WG087", "name": "Sprite Yoga Strap 10 foot", "price": "21"},
        {"sku": "WT02-M-Green", "name": "Zoe Tank - M Green", "price": "29"},
    ],
    separators=(",", ":"),
)
USER = json.dumps({"id": "u-1", "created_at": "", "cart": [{"sku": "24-WB02"}], "orders": [], "site_config": {}})
CONTEXT_SKUS = {entry.sku for entry in context_entries(CONTEXT)}
# What the offline strategy answers for QUERY (the cart's 24-WB02 last).
OFFLINE_ORDER = ["24-UG06", "24-MB02", "WSH11-28-Blue", "WJ09-S-Blue", "WH05-XS-Orange", "24-WG087", "24-WB02"]
GOOD = [
    {"sku": "WSH11-28-Blue", "name": "Ina Compression Short", "price": "49", "reason": "Completes the outfit!"},
    {"sku": "24-WG087", "name": "Sprite Yoga Strap", "price": "21", "reason": "A strap pairs with a tank"},
    {"sku": "24-UG06", "name": "Affirm Water Bottle", "price": "7", "reason": "Low cost add on"},
]
GOOD_JSON = json.dumps(GOOD)


def chat(text: str, *, model: str = "test-model") -> dict:
    return {"id": "c-1", "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


@pytest.fixture
def llm(stub_server):
    def make(*replies: StubReply, timeout: float = 2.0) -> ChatProvider:
        stub_server.replies = list(replies)
        return ChatProvider(
            name="local", base_url=f"{stub_server.url}/v1", model="test-model", api_key="k-1", timeout=timeout
        )

    return make


def skus_of(items) -> list[str]:
    return [item["sku"] for item in items]


def assert_valid_answer(items, *, num_results: int = 3) -> None:
    skus = skus_of(items)
    assert (
        find_sku_problem(skus=skus, query_sku=QUERY, num_results=num_results, is_known=CONTEXT_SKUS.__contains__)
        is None
    )


# ------------------------------------------------------------------------------------------ well-formed


def test_well_formed_completion_is_answered_as_given_with_names_and_prices_from_the_context(llm, stub_server):
    # given
    provider = llm(StubReply(body=chat(GOOD_JSON)))

    # when
    answer = recommend(query=QUERY, context=CONTEXT, num_results=3, provider=provider, user=USER)

    # then
    assert answer.items == [
        {
            "sku": "WSH11-28-Blue",
            "name": "Ina Compression Short - 28 Blue",
            "price": "49",
            "reason": "Completes the outfit",
        },
        {"sku": "24-WG087", "name": "Sprite Yoga Strap 10 foot", "price": "21", "reason": "A strap pairs with a tank"},
        {"sku": "24-UG06", "name": "Affirm Water Bottle", "price": "7", "reason": "Low cost add on"},
    ]
    assert answer.models_used == ["test-model"]
    assert answer.fallback == ""
    request = stub_server.received[0]
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer k-1"
    body = json.loads(request.body)
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.0
    assert [message["role"] for message in body["messages"]] == ["system", "user"]
    assert "exactly 3" in body["messages"][1]["content"]
    assert CONTEXT in body["messages"][1]["content"]


# ------------------------------------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    ("text", "expected", "rejected"),
    [
        pytest.param(f"```json\n{GOOD_JSON}\n```", ["WSH11-28-Blue", "24-WG087", "24-UG06"], [], id="fenced"),
        pytest.param(
            f"Here are my picks:\n{GOOD_JSON}\nThese raise the order value [really].",
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            [],
            id="prose-wrapped",
        ),
        pytest.param(
            "[{'sku': 'WSH11-28-Blue', 'reason': 'it's a match',}, {'sku': '24-WG087'}, {'sku': '24-UG06'},]",
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            [],
            id="single-quotes-trailing-commas",
        ),
        pytest.param(
            json.dumps({"recommendations": GOOD}), ["WSH11-28-Blue", "24-WG087", "24-UG06"], [], id="dict-wrapper"
        ),
        pytest.param(
            GOOD_JSON[:-40],  # cut inside the third item: two complete ones, the third from the offline strategy
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            [],
            id="truncated-keeps-complete",
        ),
        pytest.param(
            json.dumps([GOOD[0], {"sku": "NOPE-1", "name": "x"}, {"sku": "nope-2"}, GOOD[1], GOOD[2]]),
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            ["unknown sku 'NOPE-1'", "unknown sku 'nope-2'"],
            id="unknown-skus",
        ),
        pytest.param(
            json.dumps([GOOD[0], GOOD[0], {"sku": "wsh11-28-blue"}, GOOD[1]]),
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            ["duplicate sku 'WSH11-28-Blue'", "duplicate sku 'wsh11-28-blue'"],
            id="duplicates",
        ),
        pytest.param(
            json.dumps([{"sku": "wt02-m-green"}, GOOD[0], {"sku": "24-WB02"}, GOOD[1], GOOD[2]]),
            ["WSH11-28-Blue", "24-WG087", "24-UG06"],
            ["query sku 'wt02-m-green'", "cart sku '24-WB02'"],
            id="query-and-cart-skus",
        ),
    ],
)
def test_malformed_completion_is_repaired_and_checked(llm, request, text, expected, rejected):
    # given: the third pick's reason as the model gave it (none in the single-quoted case)
    third_reason = (
        "Complements Affirm Water Bottle"
        if request.node.callspec.id == "single-quotes-trailing-commas"
        else "Low cost add on"
    )
    provider = llm(StubReply(body=chat(text)))

    # when
    answer = recommend(query=QUERY, context=CONTEXT, num_results=3, provider=provider, user=USER)

    # then
    assert skus_of(answer.items) == expected
    assert answer.rejected == rejected
    topped_up = request.node.callspec.id in ("truncated-keeps-complete", "duplicates")
    assert answer.models_used == (["test-model", OFFLINE_MODEL] if topped_up else ["test-model"])
    assert answer.items[2]["reason"] == ("Goes with Zoe Tank M Green" if topped_up else third_reason)
    assert_valid_answer(answer.items)


def test_fewer_valid_picks_are_topped_up_offline_and_the_answer_says_so(llm):
    # given: one valid pick, then a truncated second item
    provider = llm(StubReply(body=chat('[{"sku":"24-WG087","reason":"strap"},{"sku":"24-MB0')))

    # when
    answer = recommend(query=QUERY, context=CONTEXT, num_results=4, provider=provider, user=USER)

    # then
    assert skus_of(answer.items) == ["24-WG087", "24-UG06", "24-MB02", "WSH11-28-Blue"]
    assert answer.items[1]["reason"] == "Goes with Zoe Tank M Green"
    assert answer.models_used == ["test-model", OFFLINE_MODEL]
    assert answer.fallback == "local gave 1 valid of 4 products"
    assert_valid_answer(answer.items, num_results=4)


def test_completion_with_no_json_at_all_is_answered_offline_in_full(llm):
    provider = llm(StubReply(body=chat("I cannot help with that.")))

    answer = recommend(query=QUERY, context=CONTEXT, num_results=3, provider=provider, user=USER)

    assert skus_of(answer.items) == OFFLINE_ORDER[:3]
    assert answer.models_used == ["test-model", OFFLINE_MODEL]


# ------------------------------------------------------------------------------------------ slow and failing


@pytest.mark.parametrize(
    ("reply", "fallback"),
    [
        pytest.param(StubReply(body=chat(GOOD_JSON), delay=1.0), "local did not answer within 0.3 s", id="slow"),
        pytest.param(StubReply(status=500, body={"error": "boom"}), "local answered HTTP 500", id="500"),
        pytest.param(
            StubReply(status=401, body={"error": "bad key"}), "local refused the API key (HTTP 401)", id="401"
        ),
        pytest.param(StubReply(body={"choices": []}), "local answered with no chat completion", id="no-choices"),
    ],
)
def test_provider_failure_falls_back_to_the_offline_strategy(llm, reply, fallback):
    # given
    provider = llm(reply, timeout=0.3)

    # when
    answer = recommend(query=QUERY, context=CONTEXT, num_results=3, provider=provider, user=USER)

    # then
    assert skus_of(answer.items) == OFFLINE_ORDER[:3]
    assert answer.models_used == [OFFLINE_MODEL]
    assert answer.fallback == fallback
    assert_valid_answer(answer.items)


@pytest.mark.parametrize(
    ("reply", "error", "status"),
    [
        (StubReply(status=500, body={}), ProviderHTTPError, 500),
        (StubReply(status=401, body={}), ProviderAuthError, 401),
        (StubReply(status=403, body={}), ProviderAuthError, 403),
    ],
)
def test_provider_raises_typed_http_errors(llm, reply, error, status):
    provider = llm(reply)

    with pytest.raises(error) as caught:
        provider.complete(system="s", user="u")

    assert caught.value.status == status


def test_provider_raises_typed_timeout_and_response_errors(llm):
    with pytest.raises(ProviderTimeout, match=r"did not answer within 0\.2 s"):
        llm(StubReply(body=chat("[]"), delay=0.6), timeout=0.2).complete(system="s", user="u")
    with pytest.raises(ProviderResponseError):
        llm(StubReply(body=b"not json")).complete(system="s", user="u")


# ------------------------------------------------------------------------------------------ offline


def test_offline_provider_is_deterministic_and_never_returns_query_or_cart():
    answers = [recommend(query=QUERY, context=CONTEXT, num_results=5, provider=None, user=USER) for _ in range(3)]

    assert [skus_of(answer.items) for answer in answers] == [OFFLINE_ORDER[:5]] * 3
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].models_used == [OFFLINE_MODEL]
    assert_valid_answer(answers[0].items, num_results=5)


def test_offline_uses_cart_items_only_when_nothing_else_is_left():
    answer = recommend(query=QUERY, context=CONTEXT, num_results=7, provider=None, user=USER)

    assert skus_of(answer.items) == OFFLINE_ORDER


def test_answer_is_capped_by_the_context_size():
    answer = recommend(query=QUERY, context=CONTEXT, num_results=20, provider=None)

    assert len(answer.items) == 7
    assert QUERY not in skus_of(answer.items)


def test_results_encode_as_the_protocol_expects():
    answer = recommend(query=QUERY, context=CONTEXT, num_results=3, provider=None, user=USER)

    results = [encode_result(item=item) for item in answer.items]

    assert (
        results[0] == '{"sku":"24-UG06","name":"Affirm Water Bottle","price":"7","reason":"Goes with Zoe Tank M Green"}'
    )
    assert decode_results(results=results) == answer.items


# ------------------------------------------------------------------------------------------ pieces


def test_parse_items_keeps_order_and_ignores_objects_without_sku():
    text = 'Note {"tip": 1}. [{"sku": "A", "reason": "has ] and } inside"}, {"name": "no sku"}, {"sku": "B"}]'

    assert parse_items(text) == [{"sku": "A", "reason": "has ] and } inside"}, {"sku": "B"}]


def test_select_items_stops_at_num_results():
    selection = select_items(
        items=GOOD, entries=context_entries(CONTEXT), query=QUERY, num_results=2, avoid=["24-WB02"]
    )

    assert skus_of(selection.items) == ["WSH11-28-Blue", "24-WG087"]
    assert selection.rejected == []


def test_prompt_lists_only_the_context_and_the_rules():
    prompt = build_prompt(query=QUERY, entries=context_entries(CONTEXT), num_results=3, cart=["24-WB02"], user=USER)

    assert "<sku_info>Zoe Tank - M Green</sku_info>" in prompt
    assert f"<context>{CONTEXT}</context>" in prompt
    assert '<cart>["24-WB02"]</cart>' in prompt
    assert "Pick exactly 3 unique complementary products from the CONTEXT" in prompt
    assert '"sku", "name", "price", "reason"' in prompt


def test_load_provider_reads_the_environment_at_call_time():
    environ = {
        "BITRECS_LLM_OPENROUTER_API_KEY": "or-key",
        "BITRECS_LLM_OPENROUTER_MODEL": "meta/llama",
        "BITRECS_LLM_TIMEOUT": "2.5",
    }

    provider = load_provider("openrouter", environ=environ)

    assert provider is not None
    assert (provider.base_url, provider.model, provider.api_key, provider.timeout) == (
        "https://openrouter.ai/api/v1",
        "meta/llama",
        "or-key",
        2.5,
    )
    assert provider.headers == {"HTTP-Referer": "https://bitrecs.ai", "X-Title": "bitrecs"}
    assert load_provider("ollama", environ={}).base_url == "http://localhost:11434/v1"  # type: ignore[union-attr]
    assert load_provider("offline", environ={}) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [("openai", "BITRECS_LLM_OPENAI_API_KEY is not set"), ("claude", "unknown provider 'claude'")],
)
def test_load_provider_refuses_missing_keys_and_unknown_names(name, message):
    with pytest.raises(ProviderConfigError, match=message):
        load_provider(name, environ={})

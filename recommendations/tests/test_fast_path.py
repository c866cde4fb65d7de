"""The WSGI fast path (recommendations.fast_path) answers byte for byte as Django's handler does, or leaves it to it."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import QueryDict
from django.test import RequestFactory
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from catalog_sync.models import Product
from merchants.models import Store
from recommendations import process_state
from recommendations.experiments import assign_arm
from recommendations.fast_path import WIDGET_MIDDLEWARE, WidgetFastPath, is_secure, parse_query
from recommendations.process_state import clear_process_caches
from recommendations.services import rebuild_store_lists
from recommendations.services.experiments import start_experiment
from recommendations.tests.test_serving import make_product, make_store, store_list
from recommendations.tests.test_serving_experiments import sid_for
from recommendations.views.widget import _input_serializer, plain_input

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations"
Answer = tuple[str, list[tuple[str, str]], bytes]


@pytest.fixture(autouse=True)
def _serving_settings(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    settings.RECS_ANSWER_CACHE_SECONDS = 300
    settings.WIDGET_RATE_LIMIT = "off"
    cache.clear()


@pytest.fixture
def shop() -> Store:
    store = make_store()
    products = [make_product(store, n) for n in range(8)]
    store_list(store, products[0], ["p1", "p2", "p3"])
    store_list(store, None, ["p4", "p5"], placement="home")
    return store


class CountingApp:
    """Django's handler, counting the requests the fast path leaves to it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(environ, start_response)


@contextmanager
def _test_transaction_kept() -> Iterator[None]:
    # What django.test.Client does: the handler's signals would close the test's connection (its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(app: Any, query: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Answer:
    """One GET through a WSGI application: (status line, headers in order, body)."""
    request = RequestFactory().get(URL, headers=headers, QUERY_STRING=query, **extra)
    environ = dict(request.environ)
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers=list(response_headers))

    with _test_transaction_kept():
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
    return started["status"], started["headers"], body


def without_fast_path(settings: Any) -> WSGIHandler:
    """Django's handler with every middleware but WidgetAnswerMiddleware: the view answers everything."""
    with_it = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [name for name in with_it if name != WIDGET_MIDDLEWARE]
    handler = WSGIHandler()
    settings.MIDDLEWARE = with_it
    return handler


def etag_of(answer: Answer) -> str:
    return dict(answer[1])["ETag"]


def q(**params: str) -> str:
    return urlencode({"site_key": "sk_test", **params})


# --- hits: the same bytes as Django's ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://shop.example.com"},
        {"Origin": "https://evil.example"},
        {"If-None-Match": "{etag}"},
        {"If-None-Match": 'W/"other", W/{etag}', "Origin": "https://www.shop.example.com"},
        {"If-None-Match": '"other"'},
    ],
)
@pytest.mark.parametrize("query", [q(sku="SKU-0"), q(sku="SKU-0", limit="2", utm_source="x"), q(placement="home")])
def test_a_cached_answer_is_sent_byte_for_byte_as_django_sends_it(
    shop: Store, settings: Any, headers: dict[str, str], query: str
) -> None:
    # given: the answer rendered by the view through the whole stack (which keeps it), and its ETag
    view_only = without_fast_path(settings)
    etag = etag_of(call(view_only, query))
    sent = {name: value.format(etag=etag) for name, value in headers.items()}
    by_view = call(view_only, query, headers=sent)
    by_middleware = call(WSGIHandler(), query, headers=sent)
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when: p1 and p4 sell out, so a recomputed answer would differ
    Product.objects.filter(store=shop, external_id__in=["p1", "p4"]).update(in_stock=False)
    fast = call(fast_path, query, headers=sent)

    # then: served from this process's cache without Django, with Django's status, headers (in order) and body
    assert inner.calls == 0
    assert fast == by_middleware
    assert (fast[0], sorted(fast[1]), fast[2]) == (by_view[0], sorted(by_view[1]), by_view[2])
    expected = "304 Not Modified" if etag in sent.get("If-None-Match", "") else "200 OK"
    assert fast[0] == expected
    names = [name for name, _ in fast[1]]
    assert {"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control", "Vary"} <= set(names)


def test_a_secure_request_carries_hsts_and_a_plain_one_is_redirected_by_django(shop: Store, settings: Any) -> None:
    # given: production's HTTPS settings, behind a proxy that says https in X-Forwarded-Proto
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    query = q(sku="SKU-0")
    secure: dict[str, Any] = {"HTTP_X_FORWARDED_PROTO": "https"}
    by_view = call(without_fast_path(settings), query, **secure)
    by_middleware = call(WSGIHandler(), query, **secure)
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when
    fast = call(fast_path, query, **secure)
    plain = call(fast_path, query, HTTP_X_FORWARDED_PROTO="http")

    # then
    assert fast == by_middleware
    assert sorted(fast[1]) == sorted(by_view[1]) and fast[2] == by_view[2]
    assert dict(fast[1])["Strict-Transport-Security"] == "max-age=3600"
    assert inner.calls == 1  # the plain request went to Django, which redirects it
    assert plain[0] == "301 Moved Permanently"
    assert dict(plain[1])["Location"] == "https://testserver/api/v1/recommendations?site_key=sk_test&sku=SKU-0"


def test_without_widget_answer_middleware_the_fast_path_serves_nothing(shop: Store, settings: Any) -> None:
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != WIDGET_MIDDLEWARE]
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    answers = [call(fast_path, q(sku="SKU-0")) for _ in range(2)]

    assert inner.calls == 2
    assert answers[0] == answers[1]


# --- what goes to Django -------------------------------------------------------------------------------------------


def test_a_miss_is_rendered_here_as_django_renders_it_and_kept_for_the_next_request(shop: Store, settings: Any) -> None:
    # given: the answer as the view renders it, and as WidgetAnswerMiddleware renders it
    by_view = call(without_fast_path(settings), q(sku="SKU-0"))
    clear_process_caches()
    by_middleware = call(WSGIHandler(), q(sku="SKU-0"))
    clear_process_caches()
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when: rendered here, then (p1 sold out meanwhile) asked again with a cache buster
    first = call(fast_path, q(sku="SKU-0"))
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)
    second = call(fast_path, q(sku="SKU-0", _="1700000000"))

    # then
    assert inner.calls == 0
    assert first == second == by_middleware
    assert (first[0], sorted(first[1]), first[2]) == (by_view[0], sorted(by_view[1]), by_view[2])
    assert list(process_state.answers._entries) == [("sk_test", "SKU-0", "", "", "")]


def test_parameters_in_another_form_are_rendered_by_django_and_then_sent_from_here(shop: Store) -> None:
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    answers = [call(fast_path, q(sku="SKU-0", limit="04")) for _ in range(2)]

    assert inner.calls == 1  # WidgetAnswerMiddleware rendered and kept it
    assert answers[0] == answers[1]
    assert answers[0][2].count(b'"sku":') == 4  # limit 04 is 4


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        (
            q(sku="SKU-0", limit="99"),
            "400 Bad Request",
            b'{"error":"invalid_request","detail":"limit: Ensure this value is less than or equal to 20.",'
            b'"fields":{"limit":["Ensure this value is less than or equal to 20."]}}',
        ),
        (
            q(sku="SKU-0", sid="bad!"),
            "400 Bad Request",
            b'{"error":"invalid_request","detail":"sid: This value does not match the required pattern.",'
            b'"fields":{"sid":["This value does not match the required pattern."]}}',
        ),
        (
            urlencode({"site_key": "sk_nope", "sku": "SKU-0"}),
            "404 Not Found",
            b'{"error":"store_not_found","detail":"No store has this site key."}',
        ),
        (
            "site_key=sk_test&sku=SKU-%FF%00",
            "400 Bad Request",  # refused by bitrecs_site.security.NulInRequestMiddleware before the view
            b'{"error": "bad_request", "detail": "The request carries a NUL character (%00); remove it."}',
        ),
        ("site_key=sk_test&sku=SKU-\xe9", "200 OK", b""),
    ],
)
def test_bad_input_and_unknown_site_keys_are_answered_by_django(
    shop: Store, settings: Any, query: str, status: str, body: bytes
) -> None:
    # given: the plain answer for SKU-0 is cached (a bad sid must not be served it)
    call(WSGIHandler(), q(sku="SKU-0"))
    by_view = call(without_fast_path(settings), query)
    inner = CountingApp()

    answers = [call(WidgetFastPath(inner), query) for _ in range(2)]

    assert inner.calls == 2
    assert answers[0][0] == answers[1][0] == by_view[0] == status
    assert sorted(answers[0][1]) == sorted(by_view[1]) and answers[0][2] == by_view[2]
    if body:
        assert answers[0][2] == body


@pytest.mark.parametrize(
    "headers", [{}, {"Origin": "https://shop.example.com"}, {"Origin": "https://evil.example"}, {"If-None-Match": "*"}]
)
@pytest.mark.parametrize(
    "query",
    [
        q(sku="SKU-0", viewed="SKU-1,SKU-3,SKU-1"),
        q(placement="cart", cart="SKU-2,SKU-0"),
        q(sku="SKU-0", viewed="SKU-4", cart="SKU-5", limit="3"),
        q(sku="SKU-0", viewed="nope"),
    ],
)
def test_a_personalised_request_in_plain_form_is_rendered_here_as_django_renders_it_and_never_kept(
    shop: Store, settings: Any, headers: dict[str, str], query: str
) -> None:
    # given: the answer as Django renders it through the whole stack (the view: no middleware serves sessions)
    by_django = call(WSGIHandler(), query, headers=headers)
    by_view = call(without_fast_path(settings), query, headers=headers)
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when: asked twice here, p2 selling out in between
    first = call(fast_path, query, headers=headers)
    Product.objects.filter(store=shop, external_id="p2").update(in_stock=False)
    second = call(fast_path, query, headers=headers)

    # then: rendered here each time (the second without p2), with Django's status, headers in order and body
    assert inner.calls == 0
    assert first == by_django == by_view
    assert first[0] == "200 OK" and dict(first[1])["Cache-Control"] == "private, no-store"
    assert b'"sku":"SKU-2"' not in second[2]
    assert list(process_state.answers._entries) == []


@pytest.mark.parametrize(
    "query",
    [
        q(sku="SKU-0", viewed=""),
        q(sku="SKU-0", viewed="SKU-1, SKU-2"),
        q(sku="SKU-0", cart="SKU-1,,SKU-2"),
        q(sku="SKU-0", viewed=",".join(f"S{n}" for n in range(21))),
    ],
)
def test_a_session_in_another_form_is_left_to_django(shop: Store, query: str) -> None:
    inner = CountingApp()

    answer = call(WidgetFastPath(inner), query)

    assert inner.calls == 1
    assert answer == call(WSGIHandler(), query)


def test_personalised_requests_are_never_served_from_the_shared_cache(shop: Store) -> None:
    # given: the plain answer for SKU-0 is cached
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)
    plain = call(fast_path, q(sku="SKU-0"))

    # when: the same query with a session, twice
    viewed = [call(fast_path, q(sku="SKU-0", viewed="SKU-1")) for _ in range(2)]
    empty_cart = call(fast_path, q(sku="SKU-0", cart=""))

    # then: each was rendered (the two with a session here, the empty cart by the view), none was kept
    assert inner.calls == 1
    assert b'"sku":"SKU-1"' in plain[2] and b'"sku":"SKU-1"' not in viewed[0][2]
    assert dict(viewed[0][1])["Cache-Control"] == dict(viewed[1][1])["Cache-Control"] == "private, no-store"
    assert "ETag" not in dict(viewed[0][1])
    assert empty_cart[0] == "200 OK"
    assert list(process_state.answers._entries) == [("sk_test", "SKU-0", "", "", "")]


def test_when_the_rate_limits_cache_fails_django_answers_its_json_500(
    shop: Store, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a cached answer, then the cache that counts the rate limits fails (as a Redis cache that is down does)
    settings.WIDGET_RATE_LIMIT = "100/min"
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)
    call(fast_path, q(sku="SKU-0"))

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)

    # when
    status, _, body = call(fast_path, q(sku="SKU-0"))

    # then
    assert inner.calls == 1
    assert (status, body) == (
        "500 Internal Server Error",
        b'{"error": "server_error", "detail": "Something failed on our side; try again later."}',
    )


def test_the_rate_limits_count_fast_path_answers_and_django_refuses_the_excess(shop: Store, settings: Any) -> None:
    settings.WIDGET_RATE_LIMIT = "3/min"
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    statuses = [call(fast_path, q(sku="SKU-0"))[0] for _ in range(4)]
    other_client = call(fast_path, q(sku="SKU-0"), REMOTE_ADDR="10.0.0.9")

    assert statuses == ["200 OK", "200 OK", "200 OK", "429 Too Many Requests"]
    assert inner.calls == 1  # the refused one: Django answers the 429
    assert other_client[0] == "200 OK"


# --- experiments and consent ------------------------------------------------------------------------------------


def test_each_arm_is_cached_apart_and_sent_as_django_sends_it(shop: Store, settings: Any) -> None:
    # given: a running split; one session in each arm; a visitor without consent (no sid)
    weights = {"network": 1, "local": 1}
    experiment = start_experiment(store=shop, name="split", weights=weights)
    network_sid = sid_for(shop, experiment.id, "network", weights)
    local_sid = sid_for(shop, experiment.id, "local", weights)
    queries = [q(sku="SKU-0", sid=network_sid), q(sku="SKU-0", sid=local_sid), q(sku="SKU-0")]
    by_middleware = [call(WSGIHandler(), query) for query in queries]
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    # when
    fast = [call(fast_path, query) for query in queries]
    another = next(
        sid
        for sid in (f"visitor-{n:04d}" for n in range(1000))
        if assign_arm(store_id=shop.id, experiment_id=experiment.id, session_id=sid, weights=weights) == "network"
    )
    other_network_sid = call(fast_path, q(sku="SKU-0", sid=another))

    # then
    assert inner.calls == 0
    assert fast == by_middleware
    assert [b'"arm":"network"' in fast[0][2], b'"arm":"local"' in fast[1][2], b'"arm":null' in fast[2][2]] == [
        True,
        True,
        True,
    ]
    assert other_network_sid == fast[0]  # another session in the same arm shares the arm's answer


@pytest.mark.parametrize("arm", ["holdout", "interleave"])
def test_arms_whose_answer_is_the_visitors_own_are_rendered_each_time_and_never_kept(
    shop: Store, settings: Any, arm: str
) -> None:
    experiment = start_experiment(store=shop, name="own", weights={arm: 1})
    query = q(sku="SKU-0", sid=sid_for(shop, experiment.id, arm, {arm: 1}))
    by_middleware = call(WSGIHandler(), query)
    by_view = call(without_fast_path(settings), query)
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)

    fast = [call(fast_path, query, headers={"If-None-Match": "*"}) for _ in range(2)]

    assert inner.calls == 0
    assert fast[0] == fast[1] == by_middleware
    assert (fast[0][0], sorted(fast[0][1]), fast[0][2]) == (by_view[0], sorted(by_view[1]), by_view[2])
    assert dict(fast[0][1])["Cache-Control"] == "private, no-store"
    assert list(process_state.answers._entries) == []


def test_a_session_id_whose_experiment_is_not_cached_is_rendered_with_its_arm(shop: Store) -> None:
    weights = {"network": 1, "local": 1}
    experiment = start_experiment(store=shop, name="split", weights=weights)
    query = q(sku="SKU-0", sid=sid_for(shop, experiment.id, "local", weights))
    kept = call(WSGIHandler(), query)
    process_state.running_experiments.clear()
    inner = CountingApp()

    again = call(WidgetFastPath(inner), query)

    assert inner.calls == 0
    assert again == kept
    assert b'"arm":"local"' in again[2]


# --- invalidation -------------------------------------------------------------------------------------------------


def test_after_recs_answer_cache_seconds_a_rebuilt_list_and_new_settings_are_served(
    shop: Store, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a cached answer, then the store's lists rebuilt, p1 sold out and SKU-2 excluded by the merchant
    settings.RECS_ANSWER_CACHE_SECONDS = 10
    settings.RECS_STORE_CACHE_SECONDS = 5
    inner = CountingApp()
    fast_path = WidgetFastPath(inner)
    before = call(fast_path, q(sku="SKU-0"))
    rebuild_store_lists(store=shop)
    Product.objects.filter(store=shop, external_id="p1").update(in_stock=False)
    shop.settings = {"recommendations": {"exclude_skus": ["SKU-2"]}}
    shop.save(update_fields=["settings"])
    later = (time.monotonic() + 10.001, time.time() + 10.001)
    cached = call(fast_path, q(sku="SKU-0"))

    # when: the answer's 10 s are over (for this process's cache and the shared one, when there is one)
    monkeypatch.setattr(time, "monotonic", lambda: later[0])
    monkeypatch.setattr(time, "time", lambda: later[1])
    after = call(fast_path, q(sku="SKU-0"))
    monkeypatch.undo()

    # then
    assert cached == before
    assert inner.calls == 0
    assert b'"sku":"SKU-1"' in before[2] and b'"sku":"SKU-1"' not in after[2]
    assert b'"sku":"SKU-2"' in before[2] and b'"sku":"SKU-2"' not in after[2]
    assert etag_of(after) != etag_of(before)


# --- reading requests as Django does ---------------------------------------------------------------------------------

_QUERY_TEXT = st.text(alphabet=st.sampled_from("ab=&%+;2F0x-_ .~\x7f"), max_size=40)


@hypothesis_settings(max_examples=200, deadline=None)
@given(query=_QUERY_TEXT)
def test_parse_query_reads_what_request_get_reads(query: str) -> None:
    parsed = parse_query(query_string=query)
    django = QueryDict(query)

    if any(len(values) > 1 for _, values in django.lists()):
        assert parsed is None  # a repeated parameter is Django's to refuse (bitrecs_site.query_params)
    else:
        assert parsed == {name: django[name] for name in django}


def test_parse_query_leaves_non_ascii_and_too_many_fields_to_django(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3

    assert parse_query(query_string="sku=caf\xe9") is None
    assert parse_query(query_string="a=1&b=2&c=3&d=4") is None
    assert parse_query(query_string="a=1&b=2&c=3") == {"a": "1", "b": "2", "c": "3"}
    assert parse_query(query_string="sku=A%2CB+C&limit=4&flag") == {"sku": "A,B C", "limit": "4", "flag": ""}
    assert parse_query(query_string="sku=A%2CB+C&sku=D") is None


@pytest.mark.parametrize("proxy_header", [None, ("HTTP_X_FORWARDED_PROTO", "https")])
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"wsgi.url_scheme": "https"},
        {"HTTP_X_FORWARDED_PROTO": "https"},
        {"HTTP_X_FORWARDED_PROTO": "https, http"},
        {"HTTP_X_FORWARDED_PROTO": " http", "wsgi.url_scheme": "https"},
    ],
)
def test_is_secure_agrees_with_django(settings: Any, proxy_header: Any, extra: dict[str, str]) -> None:
    settings.SECURE_PROXY_SSL_HEADER = proxy_header
    environ = {**RequestFactory().get(URL).environ, **extra}

    assert is_secure(environ=environ) is WSGIRequest(environ).is_secure()


def test_the_served_wsgi_application_is_the_fast_path_in_front_of_django() -> None:
    from bitrecs_site.wsgi import application

    assert isinstance(application, WidgetFastPath)
    assert isinstance(application.application, WSGIHandler)
    assert application.outer[False] is not None and application.outer[True] is not None


_VALUES = st.one_of(
    st.sampled_from(["", " ", "0", "1", "4", "04", "+4", "4.0", "20", "21", "99", "-1", "product", "cart", "home"]),
    st.sampled_from(["PRODUCT", "sk_test", "sk test", "SKU-0", " SKU-0", "SKU-0 ", "a\x00b", "x" * 256, "x" * 65]),
    st.sampled_from(["session-0001", "short", "session 0001", "s" * 64, "s" * 65]),
    st.text(max_size=6),
)
_SKU_LISTS = st.one_of(
    _VALUES,
    st.sampled_from(
        ["SKU-1,SKU-2", "SKU-1,SKU-1", "SKU-1, SKU-2", " SKU-1", "SKU-1,", ",", "a,,b", "a\x00,b", "x" * 256 + ",a"]
    ),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4).map(",".join),
    st.integers(min_value=19, max_value=22).map(lambda n: ",".join(f"S{i}" for i in range(n))),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(["site_key", "sku", "placement", "limit", "sid", "other"]), _VALUES, max_size=6
    ),
    session=st.dictionaries(st.sampled_from(["cart", "viewed"]), _SKU_LISTS, max_size=2),
)
def test_plain_input_reads_what_the_input_serializer_validates(params: dict[str, str], session: dict[str, str]) -> None:
    query = QueryDict(urlencode({**params, **session}))
    plain = plain_input(query=query)
    try:
        validated: dict[str, Any] | None = dict(_input_serializer().run_validation(query))
    except ValidationError:
        validated = None

    if plain is not None:
        assert plain == validated
        assert [type(plain[name]) for name in ("limit", "cart", "viewed")] == [int, list, list]


def test_plain_input_reads_the_widgets_requests_and_leaves_the_rest_to_the_serializer() -> None:
    assert plain_input(query=QueryDict("site_key=sk_test&sku=SKU-0&limit=4&_=1")) == {
        "site_key": "sk_test",
        "sku": "SKU-0",
        "placement": "product",
        "limit": 4,
        "cart": [],
        "viewed": [],
        "sid": "",
    }
    assert plain_input(query=QueryDict("site_key=sk_test&placement=home&sid=session-0001"))["limit"] == 4  # type: ignore[index]
    assert plain_input(query=QueryDict("site_key=sk_test&sku=SKU-0&limit=04")) is None
    assert plain_input(query=QueryDict("site_key=sk_test&sku=SKU-0&viewed=")) is None
    assert plain_input(query=QueryDict("site_key=sk_test&sku=SKU-0&viewed=SKU-2,SKU-1,SKU-2&cart=SKU-3")) == {
        "site_key": "sk_test",
        "sku": "SKU-0",
        "placement": "product",
        "limit": 4,
        "cart": ["SKU-3"],
        "viewed": ["SKU-2", "SKU-1"],
        "sid": "",
    }
    assert plain_input(query=QueryDict("site_key=sk_test&sku=SKU-0&viewed=SKU-2,%20SKU-1")) is None
    assert plain_input(query=QueryDict("site_key=sk_test&placement=product")) is None

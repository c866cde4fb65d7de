"""The shared HTTP helpers: Retry-After in both forms, error text out of answers, Shopify ids, JSON readers."""

from datetime import UTC, datetime

import pytest
from requests import Response

from bitrecs_site.http import (
    error_fields,
    error_text,
    json_get,
    json_list,
    json_str,
    platform_id,
    retry_after_seconds,
    shopify_gid_number,
    timeouts,
)


def _response(status: int, body: bytes, *, content_type: str = "application/json", reason: str = "") -> Response:
    response = Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.reason = reason
    return response


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("30", 30.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert retry_after_seconds(value) == expected


def test_an_http_date_retry_after_counts_from_now():
    # given: RFC 9110's IMF-fixdate, and the obsolete RFC 850 and asctime forms it still accepts
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)

    # when / then
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60.0
    assert retry_after_seconds("Wednesday, 21-Oct-15 07:29:00 GMT", now=now) == 120.0
    assert retry_after_seconds("Wed Oct 21 07:27:30 2015", now=now) == 30.0


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_no_number_and_no_date_is_ignored(value):
    assert retry_after_seconds(value) is None


def test_the_connect_timeout_never_exceeds_the_read_timeout():
    assert timeouts(read=20.0) == (5.0, 20.0)
    assert timeouts(read=0.2) == (0.2, 0.2)
    assert timeouts(read=30.0, connect=2.0) == (2.0, 30.0)


def test_error_text_prefers_the_named_fields_then_the_json_then_the_text():
    oauth = _response(400, b'{"error": "invalid_grant", "error_description": "revoked", "other": 1}')
    graphql = _response(400, b'{"errors": [{"message": "bad"}]}')
    other_json = _response(400, b'{"detail": "nope"}')
    page = _response(502, b"<html>Bad gateway</html>", content_type="text/html", reason="Bad Gateway")
    empty = _response(503, b"", content_type="text/plain", reason="Service Unavailable")

    assert error_text(oauth, fields=("error", "error_description", "errors")) == "invalid_grant - revoked"
    assert error_text(graphql, fields=("errors",)) == "[{'message': 'bad'}]"
    assert error_text(other_json, fields=("errors",)) == "{'detail': 'nope'}"
    assert error_text(page, fields=("errors",)) == "<html>Bad gateway</html>"
    assert error_text(empty, fields=("errors",)) == "Service Unavailable"
    assert error_text(_response(500, b"x" * 1000, content_type="text/plain"), fields=(), limit=10) == "x" * 10


def test_error_fields_are_empty_without_a_json_object_holding_them():
    wc = _response(401, b'{"code": "woocommerce_rest_cannot_view", "message": "Sorry", "data": {"status": 401}}')

    assert error_fields(wc, fields=("code", "message")) == "woocommerce_rest_cannot_view - Sorry"
    assert error_fields(_response(401, b'{"data": {}}'), fields=("code", "message")) == ""
    assert error_fields(_response(401, b"[1, 2]"), fields=("code",)) == ""
    assert error_fields(_response(401, b"oops", content_type="text/plain"), fields=("code",)) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gid://shopify/Product/42", "42"),
        ("gid://shopify/ProductVariant/7?from=bulk", "7"),
        (" gid://shopify/Order/9 ", "9"),
        ("gid://shopify/Product/abc", ""),
        ("gid://other/Product/42", ""),
        ("42", ""),
        (42, ""),
        (None, ""),
    ],
)
def test_shopify_gid_number(value, expected):
    assert shopify_gid_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "42"),
        (" 42 ", "42"),
        ("gid://shopify/LineItem/5", "5"),
        ("gid://shopify/LineItem/", ""),
        ("sku-1", "sku-1"),
        (True, ""),
        (None, ""),
        (4.2, ""),
        ("  ", ""),
    ],
)
def test_platform_id(value, expected):
    assert platform_id(value) == expected


def test_the_lenient_json_readers_read_a_wrong_type_as_absent():
    body = {"shop": {"currencyCode": " EUR ", "tags": ["a"]}, "list": "not a list"}

    assert json_get(body, "shop", "currencyCode") == " EUR "
    assert json_get(body, "shop", "missing", "deeper") is None
    assert json_get(["not", "an", "object"], "shop") is None
    assert json_str(body["shop"], "currencyCode") == "EUR"
    assert json_str(body["shop"], "tags") == ""
    assert json_list(body["shop"], "tags") == ["a"]
    assert json_list(body, "list") == []
    assert json_list([1, 2]) == [1, 2]

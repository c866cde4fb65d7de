"""One error path: every error outside the pages for people is JSON {"error", "detail"}, whoever raised it."""

import pytest
from django.test import Client, override_settings

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bitrecs_site.tests.error_urls")]


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    ["/nothing", "/api/v1/nothing", "/webhooks/nothing", "/subnet/nothing", "/shopify/admin/api/nothing"],
)
def test_an_unknown_path_is_a_json_404(client: Client, path: str) -> None:
    body = assert_json_error(client.get(path), 404, "not_found")

    assert body["detail"] == "Nothing is served at this path; the API is described at /api/docs/."


def test_a_bare_405_of_a_plain_view_becomes_json_and_keeps_allow(client: Client) -> None:
    response = client.get("/webhooks/shopify")

    body = assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    assert body["detail"] == "This path takes POST only."


def test_a_drf_405_is_json(client: Client) -> None:
    assert_json_error(client.delete("/subnet/public_key"), 405, "method_not_allowed")


def test_a_disallowed_host_is_a_json_400(client: Client) -> None:
    body = assert_json_error(client.get("/healthz", HTTP_HOST="evil.example"), 400, "bad_host")

    assert body["detail"] == "This host name is not served here."


def test_a_suspicious_operation_is_a_json_400(client: Client) -> None:
    assert_json_error(client.get("/api/test/suspicious"), 400, "bad_request")


def test_permission_denied_is_a_json_403_without_the_internal_reason(client: Client) -> None:
    body = assert_json_error(client.get("/api/test/forbidden"), 403, "forbidden")

    assert "internal" not in body["detail"]


def test_an_uncaught_exception_is_a_json_500(client: Client) -> None:
    client.raise_request_exception = False

    body = assert_json_error(client.get("/api/test/boom"), 500, "server_error")

    assert "bug" not in body["detail"]


def test_a_missing_csrf_token_is_a_json_403() -> None:
    client = Client(enforce_csrf_checks=True)

    assert_json_error(client.post("/api/test/form", {"a": "1"}), 403, "csrf_failed")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_a_body_over_django_s_limit_is_a_json_413(client: Client) -> None:
    response = client.post("/woocommerce/callback", data=b"{" + b" " * 500 + b"}", content_type="application/json")

    assert_json_error(response, 413, "payload_too_large")


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
def test_too_many_form_fields_is_a_json_400(client: Client) -> None:
    response = client.post("/api/test/form", {f"f{i}": "1" for i in range(10)})

    assert_json_error(response, 400, "too_many_fields")


def test_a_text_error_from_a_view_becomes_json_and_keeps_its_headers(client: Client) -> None:
    response = client.get("/api/test/text-error")

    assert_json_error(response, 503, "unavailable")
    assert response["Retry-After"] == "7"


@override_settings(DEBUG=True)
def test_in_local_mode_the_debug_404_page_is_json_too(client: Client) -> None:
    assert_json_error(client.get("/api/v1/nothing"), 404, "not_found")


def test_invalid_json_in_a_drf_body_is_a_json_400(client: Client) -> None:
    # No DRF view takes a body yet: the parser is checked directly on what a view would read.
    from io import BytesIO

    from bitrecs_site.json_intake import JsonIntakeError
    from bitrecs_site.parsers import StrictJSONParser

    with pytest.raises(JsonIntakeError, match="NaN is not a number JSON allows"):
        StrictJSONParser().parse(BytesIO(b'{"a": NaN}'))
    assert StrictJSONParser().parse(BytesIO(b'{"a\\u0000": "b\\u0000"}')) == {"a": "b"}


@pytest.mark.parametrize(
    ("path", "status"), [("/admin/nothing/", 404), ("/demo/products/nothing", 503), ("/woocommerce/return", 404)]
)
def test_pages_for_people_keep_html_errors(admin_client: Client, path: str, status: int) -> None:
    response = admin_client.get(path)

    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"

import pytest
from django.test import Client, override_settings

from bitrecs_site.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_and_cache_ok(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "cache": "ok"}


def test_healthz_reports_broker_down_with_503(client: Client) -> None:
    # given a broker URL where nothing listens (port 9 is discard; closed on loopback)
    original = celery_app.conf.broker_url, celery_app.conf.broker_write_url
    celery_app.conf.update(broker_url="redis://127.0.0.1:9/0", broker_write_url="redis://127.0.0.1:9/0")
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.update(broker_url=original[0], broker_write_url=original[1])

    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "down", "cache": "ok"}


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}
)
def test_healthz_reports_the_cache_down_with_503(client: Client) -> None:
    # given a Redis cache where nothing listens
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "ok", "cache": "down"}


def test_healthz_reports_the_database_down_with_503(client: Client, monkeypatch) -> None:
    # given a database that refuses connections (a closed loopback port)
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", "9")
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server to be unreachable")
    connection.close()
    try:
        response = client.get("/healthz")
    finally:
        connection.close()

    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "down", "broker": "ok", "cache": "ok"}


def test_openapi_schema_is_served_as_openapi_3(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@override_settings(DEBUG=False)
def test_api_docs_page_uses_local_assets_only(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "swagger-ui" in body
    assert "cdn.jsdelivr.net" not in body

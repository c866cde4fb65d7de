"""GET /healthz: each dependency (database, broker, cache) reported on its own; 503 when one is down."""

import logging
import secrets

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from bitrecs_site.celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason goes to the log
        logger.warning("health.database_down", extra={"error": str(exc)})
        return "down"
    return "ok"


def _check_broker() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises transport-specific errors
        logger.warning("health.broker_down", extra={"error": str(exc)})
        return "down"
    return "ok"


def _check_cache() -> str:
    # A round trip through the cache (Redis in production): the widget's rate limits and answers live there.
    key = f"healthz:{secrets.token_hex(8)}"
    try:
        cache.set(key, "1", timeout=5)
        found = cache.get(key)
        cache.delete(key)
    except Exception as exc:  # redis-py and the cache backends raise their own errors
        logger.warning("health.cache_down", extra={"error": str(exc)})
        return "down"
    return "ok" if found == "1" else "down"


def healthz(request: HttpRequest) -> JsonResponse:
    """Report the database, the broker and the cache, each "ok" or "down"; 200 when all are ok, else 503."""
    checks = {"database": _check_database(), "broker": _check_broker(), "cache": _check_cache()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)

"""Settings for bench.widget_bench: the real settings, production-like (DEBUG off), plus a bare reference view.

Secrets still come from the local mode (BITRECS_LOCAL_DIR points at the bench's own folder), so nothing has to be
configured; DEBUG is switched off afterwards because with it on Django keeps the SQL of every query.
"""

from bitrecs_site.settings import *  # noqa: F403
from bitrecs_site.settings import LOGGING

DEBUG = False
ROOT_URLCONF = "bench.bench_urls"
WIDGET_RATE_LIMIT = "off"
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}

# Connections kept for the whole run (settings.py keeps them 60 s, on PostgreSQL and SQLite alike): a new
# SQLite connection costs more than the whole widget answer (schema load + PRAGMAs).
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405

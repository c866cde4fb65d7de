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

# Persistent connections, as production has on PostgreSQL (CONN_MAX_AGE=60 in settings.py). The local SQLite
# default opens a connection per request, which costs more than the whole widget answer (schema load + PRAGMAs).
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405

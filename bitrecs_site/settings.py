"""All settings, from the environment (django-environ).

Local mode (DJANGO_DEBUG on, the default) works on a fresh machine with nothing running:
SQLite, a file-system Celery transport, a local-memory cache, and secrets generated once
and kept under `.local/`. Outside local mode every secret must be set, or start-up fails
with a message naming the missing variable.
"""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Local mode: embedded defaults and generated secrets. Production sets DJANGO_DEBUG=false.
LOCAL_MODE = DEBUG
LOCAL_DIR = Path(env.str("BITRECS_LOCAL_DIR", default=str(BASE_DIR / ".local")))


def _local_secret(name: str, make: Callable[[], str]) -> str:
    """Return the secret kept in .local/secrets/<name>, creating it once (safe across processes)."""
    folder = LOCAL_DIR / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = make()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def secret(name: str, *, make: Callable[[], str]) -> str:
    """Read a secret from the environment; in local mode generate and keep one, otherwise fail naming it."""
    value = env.str(name, default="").strip()
    if value:
        return value
    if not LOCAL_MODE:
        raise ImproperlyConfigured(
            f"{name} is not set. It is required when DJANGO_DEBUG is off; see README.md, 'Configuration'."
        )
    return _local_secret(name, make)


SECRET_KEY = secret("DJANGO_SECRET_KEY", make=lambda: secrets.token_urlsafe(50))
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
APP_URL = env.str("APP_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "merchants",
    "catalog_sync",
    "recommendations",
    "subnet",
    "portal",
]

MIDDLEWARE = [
    # Outermost: an error answered without a JSON body on a JSON path gets the common one.
    "bitrecs_site.exception_handler.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A NUL in the URL or a form is refused (400) before a view looks it up in PostgreSQL (which refuses it).
    "bitrecs_site.security.NulInRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The widget's answers without a session leave here, with the headers of the two above (see its docstring).
    "recommendations.middleware.WidgetAnswerMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "bitrecs_site.security.HtmlContentSecurityPolicyMiddleware",
    # A query that repeats a parameter gets 400 JSON naming it (not the widget API, served above).
    "bitrecs_site.query_params.SingleQueryParametersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "bitrecs_site.exception_handler.DomainErrorMiddleware",
]

ROOT_URLCONF = "bitrecs_site.urls"
CSRF_FAILURE_VIEW = "bitrecs_site.exception_handler.csrf_failure"
WSGI_APPLICATION = "bitrecs_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.navigation.portal_navigation",
            ],
        },
    },
]

# The portal's email sign-in (Shopify merchants arrive from their admin, WooCommerce ones by a signed link).
LOGIN_URL = "portal-login"
LOGIN_REDIRECT_URL = "portal-home"
LOGOUT_REDIRECT_URL = "portal-login"

# Database: SQLite file in local mode, PostgreSQL (or any URL django-environ knows) from DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: wait for locks instead of failing, write-ahead log for readers.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that stalls fails a request (503) after this many seconds instead of holding its worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
# Persistent connections (PostgreSQL and SQLite alike): a widget request should not pay a connect.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis from REDIS_URL, local memory otherwise.
REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bitrecs"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = LOCAL_DIR / "static"
# Static files of the project itself (the demo storefront's scripts); each app keeps its own in <app>/static.
STATICFILES_DIRS = [BASE_DIR / "bitrecs_site" / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Transport security outside local mode: behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips
# it from clients), plain-HTTP requests are redirected to HTTPS and HTTPS answers carry HSTS. /healthz answers
# on plain HTTP too, for load balancers that probe inside the network.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Preloading commits the domain and all its subdomains to HTTPS in browsers for good: the operator's choice,
# so its deploy-check reminder (security.W021) is silenced while it is off.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"

# Content-Security-Policy on HTML pages (bitrecs_site.security; django-csp), on outside local mode or with
# BITRECS_CSP=true. Scripts come from our own origin only, as static files (no inline script, no nonce): the demo
# storefront, the API docs, the WooCommerce return page and the server-rendered pages to come. Inline styles are
# allowed. Pages are framed by nobody, except the Shopify embedded admin's, which set their shop's frame-ancestors
# themselves and get App Bridge's sources on top (bitrecs_site.security.SHOPIFY_EMBEDDED_SOURCES).
CSP_POLICY: dict[str, object] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
CONTENT_SECURITY_POLICY = CSP_POLICY if env.bool("BITRECS_CSP", default=not DEBUG) else None

# Webhook and callback bodies larger than this are refused with 413 before they are read.
MAX_WEBHOOK_BODY_BYTES = env.int("MAX_WEBHOOK_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_WEBHOOK_BODY_BYTES

# Platform credentials are encrypted at rest with MultiFernet: the first key encrypts, all keys decrypt.
# Rotate by putting a new key first, then `python manage.py rotate_encryption_keys`.
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in secret("FIELD_ENCRYPTION_KEYS", make=lambda: Fernet.generate_key().decode()).split(",")
    if key.strip()
]

# Shopify app credentials (Partner Dashboard) and Admin API settings.
SHOPIFY_API_KEY = env.str("SHOPIFY_API_KEY", default="local-shopify-client-id" if LOCAL_MODE else "")
if not SHOPIFY_API_KEY:
    raise ImproperlyConfigured("SHOPIFY_API_KEY is not set. It is required when DJANGO_DEBUG is off.")
SHOPIFY_API_SECRET = secret("SHOPIFY_API_SECRET", make=lambda: secrets.token_hex(16))
# During a secret rotation Shopify may keep signing with the old secret for up to an hour.
SHOPIFY_API_SECRET_PREVIOUS = env.str("SHOPIFY_API_SECRET_PREVIOUS", default="")
SHOPIFY_API_VERSION = env.str("SHOPIFY_API_VERSION", default="2026-10")
SHOPIFY_SCOPES = env.str("SHOPIFY_SCOPES", default="read_products,read_inventory,read_orders")
# Shopify-managed installation (the preferred path for embedded apps): an embedded load of a shop we hold no
# token for renders the app home, whose first API call exchanges its ID token for an offline token. Off: such a
# load starts the authorization-code grant instead (apps not configured for managed installation).
SHOPIFY_MANAGED_INSTALL = env.bool("SHOPIFY_MANAGED_INSTALL", default=True)
SHOPIFY_ADMIN_URL_TEMPLATE = env.str("SHOPIFY_ADMIN_URL_TEMPLATE", default="https://{shop}")
SHOPIFY_HMAC_MAX_AGE_SECONDS = env.int("SHOPIFY_HMAC_MAX_AGE_SECONDS", default=300)
SHOPIFY_TOKEN_REFRESH_MARGIN_SECONDS = env.int("SHOPIFY_TOKEN_REFRESH_MARGIN_SECONDS", default=600)
# Shopify catalogs with at least this many products are read with a bulk operation instead of pages.
SHOPIFY_BULK_THRESHOLD = env.int("SHOPIFY_BULK_THRESHOLD", default=5000)
PLATFORM_HTTP_TIMEOUT_SECONDS = env.float("PLATFORM_HTTP_TIMEOUT_SECONDS", default=20.0)
# Let platform clients call stores on private or loopback addresses (server-side request forgery guard off):
# local mode and benchmarks against local fake stores only.
PLATFORM_ALLOW_PRIVATE_HOSTS = env.bool("PLATFORM_ALLOW_PRIVATE_HOSTS", default=LOCAL_MODE)

# WooCommerce key provisioning.
WOOCOMMERCE_APP_NAME = env.str("WOOCOMMERCE_APP_NAME", default="Bitrecs")
WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS = env.int("WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS", default=3600)
# Anonymous GET /woocommerce/connect writes a pending key request: at most this many are kept per store URL
# (the newest; opening the page again replaces the oldest), and each client IP may start this many per hour.
WOOCOMMERCE_PENDING_INSTALLS_PER_STORE = env.int("WOOCOMMERCE_PENDING_INSTALLS_PER_STORE", default=3)
WOOCOMMERCE_CONNECT_RATE_LIMIT = env.str("WOOCOMMERCE_CONNECT_RATE_LIMIT", default="30/hour")

# Subnet.
BITRECS_NETWORK = env.str("BITRECS_NETWORK", default="local")
BITRECS_NETUID = env.int("BITRECS_NETUID", default=122)
BITRECS_API_KEY = env.str("BITRECS_API_KEY", default="local" if LOCAL_MODE else "")

# Widget.
WIDGET_RATE_LIMIT = env.str("WIDGET_RATE_LIMIT", default="600/min")
# The portal's hotkey sign-in (challenge + verify) per client IP; "off" for none.
PORTAL_HOTKEY_RATE_LIMIT = env.str("PORTAL_HOTKEY_RATE_LIMIT", default="30/min")
if not DEBUG and not REDIS_URL and WIDGET_RATE_LIMIT != "off":
    # The limits count in the cache: local memory would count per worker process (two workers, twice the limit).
    raise ImproperlyConfigured("REDIS_URL is not set. The rate limits need it when DJANGO_DEBUG is off.")
# /api/v1/events answers its own CORS preflight (any origin may send events; they are checked by site key).
CORS_URLS_REGEX = r"^/(api/v1/(?!events)|widget\.js).*$"

# Django REST framework and the OpenAPI schema.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies go through the one intake normaliser (bitrecs_site.json_intake).
    "DEFAULT_PARSER_CLASSES": ["bitrecs_site.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "bitrecs_site.exception_handler.handle_exception",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Bitrecs API",
    "DESCRIPTION": "Storefront recommendations for Shopify and WooCommerce, served by the Bitrecs subnet.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets served by us (drf-spectacular-sidecar): no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The default hook, then the event intake (a plain Django view drf-spectacular cannot see).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recommendations.openapi.add_event_intake",
    ],
}

# Celery: Redis or RabbitMQ from CELERY_BROKER_URL; a file-system transport (no server) otherwise.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = LOCAL_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers keep their database connection across tasks (bitrecs_site.celery closes it per CONN_MAX_AGE instead).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task whose worker process dies is put back on the queue (tasks that opt into acks_late are idempotent).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(LOCAL_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Refresh Shopify's 60-minute offline tokens before they expire: every 5 minutes.
    "refresh-shopify-tokens": {"task": "merchants.refresh_expiring_tokens", "schedule": 300.0},
    # Forget webhook ids older than the dedup window (Shopify retries for 4 hours): hourly.
    "prune-webhook-events": {"task": "merchants.prune_webhook_events", "schedule": 3600.0},
    # Hand off deliveries stored while the broker was down (answered 200: they are in the database): every 5 min.
    "redispatch-pending-webhooks": {"task": "merchants.redispatch_pending_webhooks", "schedule": 300.0},
    # Forget Shopify OAuth states and WooCommerce key requests that expired unused: hourly.
    "prune-expired-installs": {"task": "merchants.prune_expired_installs", "schedule": 3600.0},
    # Heal lost webhooks (WooCommerce never retries them): a catch-up sync of every store every 15 minutes.
    "catch-up-syncs": {"task": "catalog_sync.catch_up_all", "schedule": 900.0},
    # A full sync, which also removes products deleted on the platform: daily at 03:17 UTC
    # (https://crontab.guru/#17_3_*_*_*).
    "full-syncs": {"task": "catalog_sync.full_sync_all", "schedule": crontab(minute="17", hour="3")},
    # Re-enqueue syncs whose next step was lost (a worker died between two steps): every 5 minutes.
    "resume-stalled-syncs": {"task": "catalog_sync.resume_stalled", "schedule": 300.0},
    # Ask the network for product lists that are missing or stale (BITRECS_ASK_BATCH per store): every
    # BITRECS_ASK_INTERVAL_SECONDS (5 minutes; 1 minute in local mode, so the demo shows network lists soon).
    # Forget old network answers (no longer served, past the conversion window) and attempt records: daily.
    "prune-network-answers": {
        "task": "recommendations.prune_network_answers",
        "schedule": crontab(minute="41", hour="4"),
    },
    "prune-network-requests": {"task": "subnet.prune_network_requests", "schedule": crontab(minute="47", hour="4")},
    # Delete saved engines past RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS and those of deleted stores: hourly.
    "prune-saved-engines": {"task": "recommendations.prune_saved_engines", "schedule": 3600.0},
    # Shopper events: write spooled batches (intake also kicks a drain), roll yesterday and today up, prune.
    "drain-events": {"task": "recommendations.drain_events", "schedule": 60.0},
    # Every minute in local mode, so the demo's portal figures move while the demo storefront is used.
    "rollup-events": {
        "task": "recommendations.rollup_recent_days",
        "schedule": env.float("BITRECS_ROLLUP_INTERVAL_SECONDS", default=60.0 if LOCAL_MODE else 900.0),
    },
    "prune-events": {"task": "recommendations.prune_events", "schedule": crontab(minute="53", hour="4")},
    "ask-network": {
        "task": "subnet.ask_network",
        "schedule": env.float("BITRECS_ASK_INTERVAL_SECONDS", default=60.0 if LOCAL_MODE else 300.0),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "filters": {"drop_rate_limited": {"()": "bitrecs_site.exception_handler.DropRateLimitedFilter"}},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django logs every 4xx as a WARNING; 429s are counted by the limiter, not logged one by one.
        "django.request": {"filters": ["drop_rate_limited"]},
    },
}

# Subnet: the gateway's request signing, the validator client, and the reference validator.
# The gateway signs every /rec request with this Ed25519 private key (the 32-byte seed as 64 hex
# characters; any 32 random bytes are a valid seed); validators verify against GET /subnet/public_key.
BITRECS_SIGNING_KEY = secret("BITRECS_SIGNING_KEY", make=lambda: secrets.token_hex(32))
# Validator client: seconds per /rec call (a validator answers in about 5-10 s, serially), the total
# budget of one call including backoff waits, requests in flight and requests per minute per validator
# (public validators allow 120/min per client IP across all routes).
BITRECS_VALIDATOR_TIMEOUT_SECONDS = env.float("BITRECS_VALIDATOR_TIMEOUT_SECONDS", default=20.0)
BITRECS_VALIDATOR_CALL_BUDGET_SECONDS = env.float("BITRECS_VALIDATOR_CALL_BUDGET_SECONDS", default=90.0)
BITRECS_VALIDATOR_MAX_IN_FLIGHT = env.int("BITRECS_VALIDATOR_MAX_IN_FLIGHT", default=1)
BITRECS_VALIDATOR_REQUESTS_PER_MINUTE = env.int("BITRECS_VALIDATOR_REQUESTS_PER_MINUTE", default=100)
# Reference validator (`manage.py run_validator`): loopback in local mode. Its network decides the
# signature scheme, as the public validator's NETWORK does: testnet/mainnet Ed25519 against the
# gateway key fetched from {BITRECS_PROXY_URL}/public_key, localnet HMAC "change-me"; mainnet also admits
# only BITRECS_VALIDATOR_WHITELIST (single IPs). BITRECS_PROXY_URL means what it means to the public
# validators: the gateway's subnet root (default {APP_URL}/subnet), where /public_key and
# /miner/stats/from/<from>/to/<to> are served.
BITRECS_VALIDATOR_HOST = env.str("BITRECS_VALIDATOR_HOST", default="127.0.0.1")
BITRECS_VALIDATOR_PORT = env.int("BITRECS_VALIDATOR_PORT", default=7779)
BITRECS_VALIDATOR_NETWORK = env.str("BITRECS_VALIDATOR_NETWORK", default="testnet")
BITRECS_VALIDATOR_WHITELIST = env.list("BITRECS_VALIDATOR_WHITELIST", default=[])
BITRECS_VALIDATOR_RATE_LIMIT_PER_MINUTE = env.int("BITRECS_VALIDATOR_RATE_LIMIT_PER_MINUTE", default=120)
BITRECS_PROXY_URL = env.str("BITRECS_PROXY_URL", default="").rstrip("/")
# Seconds between the reference validator's weight settings (the public default is 500 blocks, ~100 min).
BITRECS_VALIDATOR_WEIGHTS_INTERVAL_SECONDS = env.float("BITRECS_VALIDATOR_WEIGHTS_INTERVAL_SECONDS", default=60.0)
# Asking the network (subnet.ask_network). Validators come from the chain of BITRECS_NETWORK (the local
# chain, or the subtensor metagraph of test/finney: permit + serving axon, API on BITRECS_VALIDATOR_API_PORT),
# drawn by stake among the healthy ones; BITRECS_VALIDATOR_URL pins one validator instead. Each validator's
# API key: BITRECS_VALIDATOR_API_KEYS ("hotkey=key,..."), else BITRECS_API_KEY. Health from /ping is kept for
# BITRECS_VALIDATOR_HEALTH_TTL_SECONDS; a validator that failed is skipped for BITRECS_VALIDATOR_DOWN_SECONDS.
# Then: products asked per store per run (0 turns asking off), results per answer, and minutes before a
# product is asked again whatever the last outcome.
BITRECS_VALIDATOR_URL = env.str("BITRECS_VALIDATOR_URL", default="").rstrip("/")
BITRECS_VALIDATOR_API_KEYS = env.dict("BITRECS_VALIDATOR_API_KEYS", default={})
BITRECS_VALIDATOR_API_PORT = env.int("BITRECS_VALIDATOR_API_PORT", default=7779)
BITRECS_VALIDATOR_HEALTH_TTL_SECONDS = env.int("BITRECS_VALIDATOR_HEALTH_TTL_SECONDS", default=60)
BITRECS_VALIDATOR_DOWN_SECONDS = env.int("BITRECS_VALIDATOR_DOWN_SECONDS", default=60)
BITRECS_METAGRAPH_TTL_SECONDS = env.int("BITRECS_METAGRAPH_TTL_SECONDS", default=600)
BITRECS_ASK_BATCH = env.int("BITRECS_ASK_BATCH", default=20)
# Days the record of each attempt (NetworkRequest) is kept.
BITRECS_NETWORK_REQUEST_RETENTION_DAYS = env.int("BITRECS_NETWORK_REQUEST_RETENTION_DAYS", default=30)
BITRECS_ASK_NUM_RESULTS = env.int("BITRECS_ASK_NUM_RESULTS", default=5)
BITRECS_ASK_COOLDOWN_MINUTES = env.int("BITRECS_ASK_COOLDOWN_MINUTES", default=60)

# --- Recommendations: stored lists and the widget endpoint (recommendations app) ---------------------
# Items stored per precomputed list: more than the widget's maximum `limit` (20), so serve-time rules
# (out of stock, exclusions, price range) can drop some and still fill the answer.
RECS_LIST_SIZE = env.int("RECS_LIST_SIZE", default=30)
# Cart lists (complements of one product in the cart) are precomputed for at most this many products,
# the best sellers first; a product without one is answered from its product list.
RECS_CART_LISTS_MAX = env.int("RECS_CART_LISTS_MAX", default=20000)
# A network list is served (over the local one) while it is younger than this.
RECS_NETWORK_MAX_AGE_SECONDS = env.int("RECS_NETWORK_MAX_AGE_SECONDS", default=24 * 3600)
# Days a replaced network answer is kept so its rec_id still names its miner (validators look 60 days back).
RECS_NETWORK_ANSWER_RETENTION_DAYS = env.int("RECS_NETWORK_ANSWER_RETENTION_DAYS", default=120)
# Non-personalised answers: Cache-Control public max-age and stale-while-revalidate. With the answer cache
# below, an item that sells out leaves every cached copy within about a minute (10 + 30 + 20 s).
RECS_CACHE_MAX_AGE_SECONDS = env.int("RECS_CACHE_MAX_AGE_SECONDS", default=30)
RECS_CACHE_STALE_SECONDS = env.int("RECS_CACHE_STALE_SECONDS", default=20)
# Each web process reuses a non-personalised answer it rendered for this many seconds (0: off); keep it far
# below the public max-age so a product that sold out leaves the answer within seconds.
RECS_ANSWER_CACHE_SECONDS = env.float("RECS_ANSWER_CACHE_SECONDS", default=10.0)
# The web processes also share the answers they render through this Redis (default REDIS_URL; "off": each renders
# its own), each never served past RECS_ANSWER_CACHE_SECONDS after it was rendered.
RECS_SHARED_ANSWERS_URL = env.str("RECS_SHARED_ANSWERS_URL", default=REDIS_URL)
# How long a web process keeps a store's serving config (site key, domain, rules) before re-reading it.
RECS_STORE_CACHE_SECONDS = env.float("RECS_STORE_CACHE_SECONDS", default=30.0)
# Personalised answers (cart/viewed) use an in-memory engine that a web process loads (the saved one, below) or builds
# in a background thread, only for stores up to this many products (0: never; stored lists are merged instead). At
# 20,000 products the engine answers better (evaluate_recs: NDCG@10 0.0514 against the stored lists' 0.0435 on
# amazon_office_sample_5000) but costs a third more CPU per answer (bench/README.md, 2026-12-04).
RECS_LIVE_ENGINE_MAX_PRODUCTS = env.int("RECS_LIVE_ENGINE_MAX_PRODUCTS", default=5000)
RECS_LIVE_ENGINE_TTL_SECONDS = env.int("RECS_LIVE_ENGINE_TTL_SECONDS", default=900)
# A rebuild in the worker (or the first web process to build) saves the store's engine here; the other web processes
# load it instead of building their own while it is younger than RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS (0: never
# saved or loaded). A folder every web and worker process of one machine can read and write. Every rebuild and refresh
# saves it again (a product or order change, and the nightly full sync's rebuild), so 26 hours outlasts the day.
RECS_ENGINE_SNAPSHOT_DIR = Path(env.str("RECS_ENGINE_SNAPSHOT_DIR", default=str(LOCAL_DIR / "engines")))
RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS = env.int("RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS", default=26 * 3600)
# Webhook-driven refreshes: wait this long to coalesce a burst into one engine build per store; stores
# above RECS_REFRESH_MAX_PRODUCTS get a full rebuild instead; at most RECS_REFRESH_MAX_LISTS lists per refresh.
RECS_REFRESH_DELAY_SECONDS = env.int("RECS_REFRESH_DELAY_SECONDS", default=30)
RECS_REFRESH_MAX_PRODUCTS = env.int("RECS_REFRESH_MAX_PRODUCTS", default=20000)
RECS_REFRESH_MAX_LISTS = env.int("RECS_REFRESH_MAX_LISTS", default=500)
# Per-site-key limit on the widget endpoint (all of a store's shoppers together); WIDGET_RATE_LIMIT
# (per client IP, above) set to "off" turns both off, as load tests do.
WIDGET_SITE_RATE_LIMIT = env.str("WIDGET_SITE_RATE_LIMIT", default="30000/min")
# Proxies in front of the web process that append to X-Forwarded-For (0: the client IP is REMOTE_ADDR).
WIDGET_TRUSTED_PROXIES = env.int("WIDGET_TRUSTED_PROXIES", default=0)

# --- Shopper events (POST /api/v1/events), attribution and rollups ------------------------------------
# Raw events are kept this many days (rolled up daily first; the portal reads only the rollups).
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=90)
# The experiment report's per-visitor rows (VisitorDay: an anonymous session id's counts per day and arm) are kept
# this many days; the report of an experiment older than that has no per-visitor figures (its daily totals stay).
EXPERIMENT_VISITOR_RETENTION_DAYS = env.int("EXPERIMENT_VISITOR_RETENTION_DAYS", default=400)
# Accepted batches wait in a spool until a drain writes them: journal files on the web host's local disk
# (EVENTS_SPOOL_DIR, persistent storage), or a Redis list when EVENTS_SPOOL_URL is set (key EVENTS_SPOOL_KEY;
# give that Redis appendonly persistence). Each web process drains in a thread every
# EVENTS_DRAIN_INTERVAL_SECONDS (EVENTS_DRAIN_IN_PROCESS off: intake enqueues a Celery drain at most that often);
# beat drains every minute anyway, which also takes journals of web processes that died.
EVENTS_SPOOL_URL = env.str("EVENTS_SPOOL_URL", default="")
EVENTS_SPOOL_KEY = env.str("EVENTS_SPOOL_KEY", default="bitrecs:events:spool")
EVENTS_SPOOL_DIR = env.str("EVENTS_SPOOL_DIR", default=str(LOCAL_DIR / "event-spool"))
EVENTS_DRAIN_INTERVAL_SECONDS = env.float("EVENTS_DRAIN_INTERVAL_SECONDS", default=2.0)
EVENTS_DRAIN_IN_PROCESS = env.bool("EVENTS_DRAIN_IN_PROCESS", default=True)
# Assisted sales (a click, then a purchase of that product in the same session within the window) are off
# unless a store turns them on in Store.settings["attribution"] = {"assisted": true, "window_hours": 24}.
ATTRIBUTION_DEFAULT_WINDOW_HOURS = env.int("ATTRIBUTION_DEFAULT_WINDOW_HOURS", default=24)

"""Test settings: the real settings with fast, isolated overrides."""

from bitrecs_site.settings import *  # noqa: F403
from bitrecs_site.settings import DATABASES, LOCAL_DIR, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run tasks in-process; a real worker started by a test (bitrecs_site.testing.celery_worker) turns it off.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SHOPIFY_API_KEY = "test-client-id"
SHOPIFY_API_SECRET = "test-client-secret"  # noqa: S105
SHOPIFY_API_SECRET_PREVIOUS = ""
FIELD_ENCRYPTION_KEYS = ["7enPUKYxONBe791CTEBqqsf2L88D7bkRAdLvnQUf8Os="]
WIDGET_RATE_LIMIT = "off"
PORTAL_HOTKEY_RATE_LIMIT = "off"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a real Celery worker process in the tests can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(LOCAL_DIR / "test-db.sqlite3")}
# Per-client limit on GET /woocommerce/connect: the suite connects from one address; its own test turns it on.
WOOCOMMERCE_CONNECT_RATE_LIMIT = "off"
# Saved engines (recommendations.engine.loader) are off: a test that wants them turns them on with a folder of its own.
RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS = 0
# No test starts the web process's drain thread: it would outlive its test and drain later tests' spools into their
# databases (it logged events.drain_failed against a torn-down PostgreSQL test database). Intake kicks the Celery
# drain instead (eager here, so inline); tests that read events drain explicitly.
EVENTS_DRAIN_IN_PROCESS = False

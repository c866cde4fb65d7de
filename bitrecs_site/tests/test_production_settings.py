"""Production mode (DJANGO_DEBUG=false, every secret set): deploy checks pass and the security headers are there.

Settings are read once per process, so each check runs in a subprocess with the production environment.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from bitrecs_site.settings import CSP_POLICY
from merchants.tests.factories import StoreFactory

HOST = "bitrecs.example.com"
# A <script> element without a src: inline code, which the policy's script-src 'self' blocks.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)

# Requests made by a child process under the production settings; it prints what came back as JSON.
PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST=%(host)r)
https = {"HTTP_X_FORWARDED_PROTO": "https"}
out = {}
for name, path, headers in [
    ("http_docs", "/api/docs/", {}),
    ("docs", "/api/docs/", https),
    ("widget", "/widget.js", {**https, "HTTP_ORIGIN": "https://shop.example"}),
    ("health_http", "/healthz", {}),
    ("api_404", "/api/v1/nothing", https),
    ("demo", "/demo/", https),
    ("widget_api", "/api/v1/recommendations?site_key=sk_unknown&placement=home", {**https, "HTTP_ORIGIN": "https://shop.example"}),
]:
    r = client.get(path, **headers)
    out[name] = {"status": r.status_code, "headers": dict(r.headers)}
print(json.dumps(out))
"""


def production_env() -> dict[str, str]:
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{db['NAME']}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "BITRECS_", "SHOPIFY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bitrecs_site.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="prod-" + "k3y" * 20,
        DJANGO_ALLOWED_HOSTS=HOST,
        APP_URL=f"https://{HOST}",
        DATABASE_URL=database_url,
        FIELD_ENCRYPTION_KEYS="7enPUKYxONBe791CTEBqqsf2L88D7bkRAdLvnQUf8Os=",
        SHOPIFY_API_KEY="prod-client-id",
        SHOPIFY_API_SECRET="prod-client-secret",
        BITRECS_SIGNING_KEY="11" * 32,
        BITRECS_API_KEY="prod-api-key",
        REDIS_URL=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
    )
    return env


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=settings.BASE_DIR, env=production_env(), capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.django_db
def test_manage_py_check_deploy_passes_with_no_warning() -> None:
    done = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "System check identified no issues (1 silenced)."


@pytest.fixture(scope="module")
def probe(django_db_setup: None, django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        done = run([sys.executable, "-c", PROBE % {"host": HOST}])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_plain_http_is_redirected_to_https(probe: dict[str, Any]) -> None:
    answer = probe["http_docs"]

    assert answer["status"] == 301
    assert answer["headers"]["Location"] == f"https://{HOST}/api/docs/"


def test_https_behind_the_proxy_gets_hsts_nosniff_and_a_csp_on_html(probe: dict[str, Any]) -> None:
    answer = probe["docs"]

    assert answer["status"] == 200
    headers = answer["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_widget_script_is_served_cross_origin_without_a_csp(probe: dict[str, Any]) -> None:
    answer = probe["widget"]

    assert answer["status"] == 200
    headers = answer["headers"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in headers
    assert "Cross-Origin-Resource-Policy" not in headers


def test_healthz_answers_on_plain_http_for_load_balancers(probe: dict[str, Any]) -> None:
    assert probe["health_http"]["status"] in (200, 503)  # not redirected; 503 when a dependency is down


def test_errors_are_json_in_production(probe: dict[str, Any]) -> None:
    answer = probe["api_404"]

    assert (answer["status"], answer["headers"]["Content-Type"]) == (404, "application/json")


@pytest.mark.django_db
@override_settings(CONTENT_SECURITY_POLICY=CSP_POLICY)
def test_the_shopify_app_home_keeps_its_frame_ancestors_inside_the_full_policy(client: Client, fake_shopify) -> None:
    shop = "csp-shop.myshopify.com"
    StoreFactory(domain=shop, site_key="sk_csp")

    response = client.get("/shopify/install", fake_shopify.install_query(shop, embedded="1"))

    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == f"https://{shop} https://admin.shopify.com"
    assert policy["script-src"] == "'self' https://cdn.shopify.com"  # no nonce asked for: no inline script
    scripts = re.findall(r"<script[^>]*>", response.content.decode())
    assert len(scripts) == 2
    assert all(" src=" in tag for tag in scripts)  # App Bridge and the embedded portal's static script
    assert INLINE_SCRIPT.findall(response.content.decode()) == []
    assert "X-Frame-Options" not in response


def test_the_demo_storefront_gets_the_policy_with_scripts_from_our_origin_only(probe: dict[str, Any]) -> None:
    answer = probe["demo"]

    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in answer["headers"]["Content-Security-Policy"].split(";"))
    assert (policy["script-src"], policy["frame-ancestors"]) == ("'self'", "'none'")


def test_the_widget_api_keeps_its_cors_and_gets_no_policy(probe: dict[str, Any]) -> None:
    answer = probe["widget_api"]

    assert (answer["status"], answer["headers"]["Content-Type"]) == (404, "application/json")
    assert answer["headers"]["Access-Control-Allow-Origin"] == "*"
    assert "Content-Security-Policy" not in answer["headers"]


@pytest.mark.parametrize("template", sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")), ids=str)
def test_no_template_has_an_inline_script(template: Path) -> None:
    assert INLINE_SCRIPT.findall(template.read_text(encoding="utf-8")) == []


def test_production_refuses_rate_limits_counted_per_process() -> None:
    env = {key: value for key, value in production_env().items() if key != "REDIS_URL"}

    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: REDIS_URL is not set. "
        "The rate limits need it when DJANGO_DEBUG is off."
    )

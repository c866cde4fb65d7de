"""A local fake of Shopify, served over real HTTP on 127.0.0.1, plus pytest fixtures that use it.

It speaks Shopify's wire format and is written independently of merchants.services.shopify, so a
mistake there is caught here rather than mirrored:

- `GET /{shop}/admin/oauth/authorize`: the merchant approves at once; 302 to `redirect_uri` with
  code, host, shop, state, timestamp and a hex `hmac` signed with the app secret.
- `POST /{shop}/admin/oauth/access_token` (form or JSON): the authorization-code grant (single-use
  codes; `expiring=1` answers a 60-minute token with a refresh token), the refresh-token grant
  (rotates the refresh token; the previous one stays valid until the new one is first used), and token
  exchange (an App Bridge ID token for an offline token: the ID token must be an HS256 JWT signed with the
  app secret for this shop, else `invalid_subject_token`; `uninstall_app(shop)` makes Shopify answer
  `invalid_client`, which shopify-app-python reads as "credentials invalid or app uninstalled").
  `fail_next_token_request(status=…)` makes the next answer a 4xx/5xx.
- `webhook_headers`/`deliver_webhook`: signed webhook deliveries with Shopify's exact headers.
- `id_token`: App Bridge ID tokens (HS256 JWTs).

Fixtures: `fake_shopify` (settings point SHOPIFY_ADMIN_URL_TEMPLATE at it) and `install_shopify_app`.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client

from bitrecs_site.testing.fake_server import FakeRequest, FakeResponse, FakeServer

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse
else:
    TestResponse = HttpResponse

WEBHOOK_PATH = "/webhooks/shopify"
WEBHOOK_API_VERSION = "2026-10"
# Token exchange: the RFC 8693 names Shopify uses.
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_ACCESS_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
ID_TOKEN_LEEWAY_SECONDS = 10


@dataclass
class FakeShopState:
    """What the fake remembers about one shop's grants."""

    access_tokens: list[str] = field(default_factory=list)
    refresh_token: str | None = None
    # Valid until `refresh_token` is first used (Shopify's rule since 2026-08-28).
    previous_refresh_token: str | None = None


@dataclass
class TokenFailure:
    status: int
    grant_type: str | None
    body: dict[str, Any]


class FakeShopify:
    """State and helpers of the fake; `handle` (run by a FakeServer) reads and changes it under `lock`."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.Lock()
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        """Forget every code, token, recorded request and failure (run before each test)."""
        self.codes: dict[str, dict[str, Any]] = {}
        self.shops: dict[str, FakeShopState] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.failures: list[TokenFailure] = []
        self.access_token_lifetime = 3600
        self.refresh_token_lifetime = 90 * 24 * 3600
        self.granted_scope: str | None = None
        self.token_delay_seconds = 0.0
        self.refresh_received = threading.Event()
        self.hold_refresh: threading.Event | None = None
        self.exchange_received = threading.Event()
        self.hold_exchange: threading.Event | None = None
        self.uninstalled_shops: set[str] = set()

    # --- configuration -------------------------------------------------------------------------------

    @property
    def admin_url_template(self) -> str:
        """The value for SHOPIFY_ADMIN_URL_TEMPLATE that points a shop's admin at this fake."""
        return self.base_url + "/{shop}"

    def fail_next_token_request(
        self, *, status: int, grant_type: str | None = None, body: dict[str, Any] | None = None
    ) -> None:
        """Answer the next token request (of `grant_type`, or any) with `status` instead of tokens."""
        default = {"error": "invalid_request", "error_description": "This request was refused by the fake."}
        if status >= 500:
            default = {"errors": "Internal Server Error"}
        self.failures.append(TokenFailure(status=status, grant_type=grant_type, body=body or default))

    def refresh_requests(self) -> list[dict[str, str]]:
        return [form for form in self.token_requests if form.get("grant_type") == "refresh_token"]

    def exchange_requests(self) -> list[dict[str, str]]:
        return [form for form in self.token_requests if form.get("grant_type") == TOKEN_EXCHANGE_GRANT_TYPE]

    def uninstall_app(self, shop: str) -> None:
        """The merchant removes the app: its tokens die and token exchange for the shop is refused."""
        self.uninstalled_shops.add(shop)
        self.shops.pop(shop, None)

    def is_valid_access_token(self, shop: str, token: str) -> bool:
        state = self.shops.get(shop)
        return state is not None and token in state.access_tokens

    # --- signing, as Shopify does it -----------------------------------------------------------------

    def sign_query(self, params: Mapping[str, str], *, secret: str | None = None) -> str:
        """The hex HMAC-SHA256 Shopify adds as `hmac` to the install and callback URLs."""
        message = "&".join(
            f"{key}={value}" for key, value in sorted(params.items()) if key not in ("hmac", "signature")
        )
        return hmac.new((secret or self.client_secret).encode(), message.encode(), hashlib.sha256).hexdigest()

    def install_query(
        self, shop: str, *, timestamp: int | None = None, secret: str | None = None, **extra: str
    ) -> dict[str, str]:
        """The query Shopify sends to the app URL when a merchant opens or installs the app."""
        name = shop.split(".")[0]
        params = {
            "host": base64.urlsafe_b64encode(f"admin.shopify.com/store/{name}".encode()).decode().rstrip("="),
            "shop": shop,
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
            **extra,
        }
        params["hmac"] = self.sign_query(params, secret=secret)
        return params

    def webhook_headers(
        self,
        *,
        topic: str,
        shop: str,
        body: bytes,
        event_id: str | None = None,
        webhook_id: str | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        """The headers of a webhook delivery, named and cased exactly as Shopify sends them."""
        digest = hmac.new((secret or self.client_secret).encode(), body, hashlib.sha256).digest()
        return {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": WEBHOOK_API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        }

    def deliver_webhook(
        self,
        client: Client,
        *,
        topic: str,
        shop: str,
        payload: dict[str, Any] | bytes,
        event_id: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        """POST a signed delivery to the app's webhook endpoint; `headers` replaces or adds headers."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = self.webhook_headers(topic=topic, shop=shop, body=body, event_id=event_id, secret=secret)
        sent.update(headers or {})
        return client.post(WEBHOOK_PATH, data=body, content_type="application/json", headers=sent)

    def id_token(
        self,
        shop: str,
        *,
        secret: str | None = None,
        lifetime: int = 60,
        nbf_offset: int = 0,
        omit: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """An App Bridge ID token for a staff member of `shop`; `claims` override, `omit` removes claims."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": f"https://{shop}/admin",
            "dest": f"https://{shop}",
            "aud": self.client_id,
            "sub": "42",
            "exp": now + lifetime,
            "nbf": now + nbf_offset,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "sid": secrets.token_hex(16),
            **claims,
        }
        for name in omit:
            payload.pop(name, None)
        return jwt.encode(payload, secret or self.client_secret, algorithm="HS256")

    # --- what the merchant's browser does -------------------------------------------------------------

    def approve(self, authorize_url: str) -> dict[str, str]:
        """Follow the app's redirect to the authorize page over HTTP; return the callback query Shopify sends."""
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        if response.status_code != 302:
            raise AssertionError(f"the fake authorize page answered {response.status_code}: {response.text}")
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return {key: values[0] for key, values in query.items()}

    # --- the endpoints --------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Serve one HTTP request (called from the server's threads): the authorize page and the token endpoint."""
        if request.method == "GET" and (shop := _oauth_shop(request.path, "authorize")) is not None:
            params = {key: values[0] for key, values in parse_qs(request.query_string).items()}
            with self.lock:
                status, headers, body = self.handle_authorize(shop, params)
            return FakeResponse(status, body, headers=headers)
        if request.method != "POST" or (shop := _oauth_shop(request.path, "access_token")) is None:
            return FakeResponse(404, b"Not Found", "text/plain")
        if (request.headers.get("Content-Type") or "").startswith("application/json"):
            form = {key: str(value) for key, value in json.loads(request.body or b"{}").items()}
        else:
            form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        # Answer first, then wait: a slow answer must not touch the state of the test that follows.
        with self.lock:
            status, answer = self.handle_token(shop, form)
            delay, hold, hold_exchange = self.token_delay_seconds, self.hold_refresh, self.hold_exchange
        if form.get("grant_type") == "refresh_token":
            self.refresh_received.set()
            if hold is not None:
                hold.wait(timeout=10)
        if form.get("grant_type") == TOKEN_EXCHANGE_GRANT_TYPE:
            self.exchange_received.set()
            if hold_exchange is not None:
                hold_exchange.wait(timeout=10)
        if delay:
            time.sleep(delay)
        return FakeResponse(status, json.dumps(answer).encode(), "application/json")

    def handle_authorize(self, shop: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.authorize_requests.append({"shop": shop, **params})
        if params.get("client_id") != self.client_id:
            return 400, {"Content-Type": "text/html"}, b"<h1>Oauth error invalid_request: unknown client_id</h1>"
        if not params.get("redirect_uri") or not params.get("state"):
            return 400, {"Content-Type": "text/html"}, b"<h1>Oauth error invalid_request: redirect_uri and state</h1>"
        code = secrets.token_hex(16)
        self.codes[code] = {"shop": shop, "scope": params.get("scope", ""), "used": False}
        name = shop.split(".")[0]
        answer = {
            "code": code,
            "host": base64.urlsafe_b64encode(f"admin.shopify.com/store/{name}".encode()).decode().rstrip("="),
            "shop": shop,
            "state": params["state"],
            "timestamp": str(int(time.time())),
        }
        answer["hmac"] = self.sign_query(answer)
        return 302, {"Location": f"{params['redirect_uri']}?{urlencode(answer)}"}, b""

    def handle_token(self, shop: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append({"shop": shop, **form})
        grant_type = form.get("grant_type")
        for failure in self.failures:
            if failure.grant_type in (None, grant_type):
                self.failures.remove(failure)
                return failure.status, failure.body
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 400, {"error": "invalid_client", "error_description": "Client credentials are invalid."}
        if grant_type == "refresh_token":
            return self._refresh(shop, form.get("refresh_token", ""))
        if grant_type == TOKEN_EXCHANGE_GRANT_TYPE:
            return self._token_exchange(shop, form)
        if grant_type not in (None, "authorization_code"):
            return 400, {"error": "unsupported_grant_type", "error_description": f"{grant_type} is not supported."}
        code = self.codes.get(form.get("code", ""))
        if code is None or code["used"] or code["shop"] != shop:
            return 400, {
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used",
            }
        code["used"] = True
        return 200, self._mint(shop, scope=code["scope"], expiring=form.get("expiring") == "1")

    def _refresh(self, shop: str, refresh_token: str) -> tuple[int, dict[str, Any]]:
        state = self.shops.get(shop)
        if (
            state is None
            or not refresh_token
            or refresh_token not in (state.refresh_token, state.previous_refresh_token)
        ):
            return 400, {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}
        if refresh_token == state.refresh_token:
            state.previous_refresh_token = refresh_token  # still valid until the new one is first used
        scope = self.granted_scope if self.granted_scope is not None else django_settings.SHOPIFY_SCOPES
        return 200, self._mint(shop, scope=scope, expiring=True)

    def _token_exchange(self, shop: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            return 400, {"error": "invalid_request", "error_description": f"subject_token_type must be {ID_TOKEN_TYPE}"}
        if form.get("requested_token_type") != OFFLINE_ACCESS_TOKEN_TYPE:
            # Shopify also issues online tokens; this fake only offline ones.
            return 400, {"error": "invalid_request", "error_description": "Unsupported requested_token_type"}
        invalid_subject = {
            "error": "invalid_subject_token",
            "error_description": "Token exchange cannot be performed due to an invalid subject token.",
        }
        try:
            claims = jwt.decode(
                form.get("subject_token", ""),
                self.client_secret,
                algorithms=["HS256"],
                audience=self.client_id,
                leeway=ID_TOKEN_LEEWAY_SECONDS,
                options={"require": ["iss", "dest", "aud", "sub", "exp", "nbf", "sid"]},
            )
        except jwt.PyJWTError:
            return 400, invalid_subject
        if claims["dest"] != f"https://{shop}" or claims["iss"] != f"https://{shop}/admin":
            return 400, invalid_subject
        if shop in self.uninstalled_shops:
            return 400, {"error": "invalid_client", "error_description": "The app is not installed on this shop."}
        scope = self.granted_scope if self.granted_scope is not None else django_settings.SHOPIFY_SCOPES
        return 200, self._mint(shop, scope=scope, expiring=form.get("expiring") == "1")

    def _mint(self, shop: str, *, scope: str, expiring: bool) -> dict[str, Any]:
        state = self.shops.setdefault(shop, FakeShopState())
        access_token = "shpat_" + secrets.token_hex(16)
        state.access_tokens.append(access_token)
        answer: dict[str, Any] = {
            "access_token": access_token,
            "scope": self.granted_scope if self.granted_scope is not None else scope,
        }
        if expiring:
            state.refresh_token = "shprt_" + secrets.token_hex(16)
            answer.update(
                expires_in=self.access_token_lifetime,
                refresh_token=state.refresh_token,
                refresh_token_expires_in=self.refresh_token_lifetime,
            )
        return answer


def _oauth_shop(path: str, action: str) -> str | None:
    """The shop of /{shop}/admin/oauth/{action}, else None."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[1:3] == ["admin", "oauth"] and parts[3] == action:
        return parts[0]
    return None


@pytest.fixture(scope="session")
def _fake_shopify_server() -> Iterator[FakeShopify]:
    fake = FakeShopify(client_id=django_settings.SHOPIFY_API_KEY, client_secret=django_settings.SHOPIFY_API_SECRET)
    with FakeServer(fake.handle, name="fake-shopify") as server:
        fake.base_url = server.base_url
        yield fake


@pytest.fixture
def fake_shopify(_fake_shopify_server: FakeShopify, settings: Any) -> Iterator[FakeShopify]:
    """The fake Shopify, reset, with SHOPIFY_ADMIN_URL_TEMPLATE pointing at it."""
    fake = _fake_shopify_server
    fake.reset()
    fake.client_id = settings.SHOPIFY_API_KEY
    fake.client_secret = settings.SHOPIFY_API_SECRET
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = fake.admin_url_template
    yield fake
    for hold in (fake.hold_refresh, fake.hold_exchange):
        if hold is not None:
            hold.set()  # never leave a request of the next test waiting
    fake.reset()


@pytest.fixture
def install_shopify_app(client: Client, fake_shopify: FakeShopify) -> Callable[[str], TestResponse]:
    """Install the app on a shop the way a merchant does: /shopify/install → fake authorize → /shopify/callback."""

    def install(shop: str) -> TestResponse:
        start = client.get("/shopify/install", fake_shopify.install_query(shop))
        if start.status_code != 302:
            raise AssertionError(f"/shopify/install answered {start.status_code}: {start.content!r}")
        return client.get("/shopify/callback", fake_shopify.approve(start["Location"]))

    return install

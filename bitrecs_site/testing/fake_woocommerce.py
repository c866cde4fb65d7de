"""A local fake WooCommerce store that speaks WooCommerce's wire formats, plus pytest fixtures for it.

What it serves, on 127.0.0.1 over plain http (a real socket, in a thread):

- `GET /wc-auth/v1/authorize`: validates the five parameters the way class-wc-auth.php does (401 page
  "Error: Missing parameter …", "Invalid scope …", "The callback_url needs to be over SSL") and shows
  a grant page. `FakeWooCommerce.approve()` then plays the merchant clicking Approve: it mints a key pair,
  POSTs the JSON WooCommerce sends to callback_url through a transport you give it (e.g. the Django test
  client), deletes the key when that answer is not 200, and returns the browser's return_url redirect.
- `GET /wp-json/wc/v3/system_status` and `/wp-json/wc/v3/products`: authenticated as WooCommerce does over
  plain http, i.e. one-legged OAuth 1.0a only (signature over PHP's rawurlencode normalisation, HMAC-SHA1 or
  -SHA256, 15-minute timestamp window, single-use nonces); Basic auth and consumer_key query parameters are
  ignored without https, exactly as WC_REST_Authentication does. Errors carry WooCommerce's
  {"code", "message", "data": {"status"}} bodies. Can be told to fail (e.g. 500, 429 + Retry-After) or be slow.
- Optional https (`tls=True`): a self-signed certificate for 127.0.0.1, trusted by pointing REQUESTS_CA_BUNDLE
  at `ca_bundle` (the `fake_woocommerce_https` fixture does), so the production path runs for real: HTTP Basic
  auth (or consumer_key/consumer_secret query parameters), with OAuth 1.0a still accepted as WooCommerce does.
- `plain_permalinks = True` serves /wp-json/… as the shop's front page (200 HTML), as WordPress does without
  pretty permalinks; `redirect_to = "https://…"` answers every REST call with a 301 there.
- Webhook deliveries: `build_webhook_delivery()` / `build_ping()` produce the body and headers WC_Webhook
  sends (wp_json_encode body, X-WC-Webhook-* headers, Hookshot user agent); `send_delivery()` posts them.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest
import requests

WC_VERSION = "9.8.5"
WP_VERSION = "6.8.1"
HOOKSHOT_USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
OAUTH_WINDOW_SECONDS = 15 * 60
REQUIRED_OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)

# A transport delivers one POST (url, body, headers) and returns the HTTP status it got.
Transport = Callable[[str, bytes, dict[str, str]], int]


@dataclass
class ApiKey:
    """A row of wp_woocommerce_api_keys, as far as the fake needs it."""

    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    description: str = ""
    revoked: bool = False


@dataclass(frozen=True)
class Approval:
    """What happened when the merchant approved: the key, the callback WooCommerce sent, where the browser went."""

    key: ApiKey
    callback_url: str
    callback_body: bytes
    callback_headers: dict[str, str]
    callback_status: int
    # return_url?success=1&user_id=… when the callback answered 200; None when WooCommerce showed an error.
    return_location: str | None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    """One webhook request as WooCommerce would send it."""

    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"


class AuthorizeRefused(AssertionError):
    """The fake's /wc-auth/v1/authorize refused the request, as WooCommerce would."""


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None
    code: str = "fake_failure"


class FakeWooCommerce:
    """A fake WooCommerce store on a free port of 127.0.0.1."""

    def __init__(self, *, require_https_callback: bool = True, tls: bool = False) -> None:
        self.require_https_callback = require_https_callback
        self.tls = tls
        self.ca_bundle: Path | None = None
        self.plain_permalinks = False
        self.redirect_to: str | None = None
        self.keys: dict[str, ApiKey] = {}
        self.products: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.failure: _Failure | None = None
        self.delay_seconds = 0.0
        self._nonces: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._next_key_id = 1
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # Lifecycle.

    def start(self) -> "FakeWooCommerce":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False  # a deliberately slow answer must not hold up teardown
        scheme = "http"
        if self.tls:
            self.ca_bundle = _write_self_signed_certificate()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca_bundle, self.ca_bundle.with_suffix(".key"))
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        self._server = server
        self.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-woocommerce", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down: later calls get a refused connection, like a store that is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.ca_bundle is not None:
            shutil.rmtree(self.ca_bundle.parent, ignore_errors=True)
            self.ca_bundle = None

    # Store content and behaviour.

    def add_product(self, **overrides: Any) -> dict[str, Any]:
        product_id = 100 + len(self.products)
        product: dict[str, Any] = {
            "id": product_id,
            "name": f"Product {product_id}",
            "slug": f"product-{product_id}",
            "permalink": f"{self.base_url}/product/product-{product_id}/",
            "type": "simple",
            "status": "publish",
            "sku": f"SKU-{product_id}",
            "price": "19.99",
            "regular_price": "19.99",
            "stock_status": "instock",
            "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
            "tags": [],
            "images": [],
            "date_modified_gmt": "2025-01-01T00:00:00",
        }
        product.update(overrides)
        self.products.append(product)
        return product

    def fail_with(self, status: int, *, retry_after: str | None = None) -> None:
        """Answer every REST call with this status (e.g. 500, 503, 429), until `recover()`."""
        self.failure = _Failure(status=status, retry_after=retry_after)

    def recover(self) -> None:
        self.failure = None

    def issue_key(self, *, permissions: str = "read", description: str = "") -> ApiKey:
        """Create a key pair as WooCommerce's create_keys() does: ck_/cs_ + wc_rand_hash() (40 hex)."""
        with self._lock:
            key = ApiKey(
                key_id=self._next_key_id,
                consumer_key="ck_" + secrets.token_hex(20),
                consumer_secret="cs_" + secrets.token_hex(20),
                permissions=permissions,
                description=description,
            )
            self._next_key_id += 1
            self.keys[key.consumer_key] = key
        return key

    def revoke_key(self, consumer_key: str) -> None:
        with self._lock:
            if consumer_key in self.keys:
                self.keys[consumer_key].revoked = True

    # The merchant's side of /wc-auth/v1/authorize.

    def approve(self, authorize_url: str, *, transport: Transport) -> Approval:
        """Open the authorize URL (over HTTP), approve, and deliver the callback through `transport`."""
        params = self._open_grant_screen(authorize_url)
        key = self.issue_key(permissions=params["scope"], description=f"{params['app_name']} - API (fake)")
        body = json.dumps(
            {
                "key_id": key.key_id,
                "user_id": params["user_id"],
                "consumer_key": key.consumer_key,
                "consumer_secret": key.consumer_secret,
                "key_permissions": key.permissions,
            }
        ).encode()
        headers = {"Content-Type": "application/json;charset=UTF-8", "User-Agent": f"WordPress/{WP_VERSION}"}
        status = transport(params["callback_url"], body, headers)
        location = None
        if status == 200:
            location = _add_query(params["return_url"], {"success": "1", "user_id": params["user_id"]})
        else:
            # class-wc-auth.php: the key is deleted and the merchant sees "An error occurred in the request…".
            with self._lock:
                del self.keys[key.consumer_key]
        return Approval(
            key=key,
            callback_url=params["callback_url"],
            callback_body=body,
            callback_headers=headers,
            callback_status=status,
            return_location=location,
        )

    def deny(self, authorize_url: str) -> str:
        """Open the authorize URL and press Deny; returns where the browser is sent (success=0)."""
        params = self._open_grant_screen(authorize_url)
        return _add_query(params["return_url"], {"success": "0", "user_id": params["user_id"]})

    def _open_grant_screen(self, authorize_url: str) -> dict[str, str]:
        if not authorize_url.startswith(self.base_url + "/"):
            raise AuthorizeRefused(f"{authorize_url} does not point at this fake store ({self.base_url}).")
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        if response.status_code != 200:
            raise AuthorizeRefused(f"HTTP {response.status_code}: {response.text}")
        return dict(parse_qsl(urlsplit(authorize_url).query))

    # Request handling (called from the server's threads).

    def _record(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=handler.command,
                    path=path,
                    query=query,
                    headers={name.lower(): value for name, value in handler.headers.items()},
                )
            )

    def _authorize_page(self, query: dict[str, str]) -> tuple[int, str]:
        for name in ("app_name", "scope", "user_id", "return_url", "callback_url"):
            if not query.get(name):
                return 401, f"Error: Missing parameter {name}."
        if query["scope"] not in ("read", "write", "read_write"):
            return 401, f"Error: Invalid scope {query['scope']}."
        for name in ("return_url", "callback_url"):
            parts = urlsplit(query[name])
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return 401, f"Error: The {query[name]} is not a valid URL."
        if self.require_https_callback and not query["callback_url"].lower().startswith("https://"):
            return 401, "Error: The callback_url needs to be over SSL."
        return 200, (
            f"<h1>{query['app_name']} would like to connect to your store</h1>"
            f"<p>This will give {query['app_name']} {query['scope']} access.</p>"
            '<a class="wc-auth-approve" href="#">Approve</a> <a class="wc-auth-deny" href="#">Deny</a>'
        )

    def _rest(self, handler: BaseHTTPRequestHandler, route: str, query: dict[str, str]) -> tuple[int, Any, dict]:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        failure = self.failure
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, _wc_error(failure.code, "The fake store was told to fail.", failure.status), headers
        if handler.command != "GET" or route not in ("system_status", "products"):
            return 404, _wc_error("rest_no_route", "No route was found matching the URL and request method.", 404), {}
        key, error = self._authenticate(handler, query)
        if error is not None:
            return 401, error, {}
        if key is None:
            message = (
                "Sorry, you cannot list resources." if route == "products" else "Sorry, you cannot view this resource."
            )
            return 401, _wc_error("woocommerce_rest_cannot_view", message, 401), {}
        if route == "system_status":
            return 200, self._system_status(), {}
        return self._list_products(query)

    def _authenticate(
        self, handler: BaseHTTPRequestHandler, query: dict[str, str]
    ) -> tuple[ApiKey | None, dict | None]:
        """WC_REST_Authentication: over https Basic auth (or query keys) first; OAuth 1.0a otherwise."""
        if self.tls:
            key, error, tried = self._basic_authentication(handler, query)
            if tried:
                return key, error
        given = [name for name in REQUIRED_OAUTH_PARAMS if name in query]
        if not given:
            return None, None  # unauthenticated: the endpoint's permission check answers
        for name in REQUIRED_OAUTH_PARAMS:
            if not query.get(name):
                return None, _wc_error(
                    "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameter {name}", 401
                )
        with self._lock:
            key = self.keys.get(query["oauth_consumer_key"])
        if key is None or key.revoked:
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        method = query["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401
            )
        scheme = "https" if self.tls else "http"
        base_uri = f"{scheme}://{handler.headers.get('Host', '')}{urlsplit(handler.path).path}"
        expected = wc_oauth_signature(
            method=handler.command, base_uri=base_uri, params=query, consumer_secret=key.consumer_secret
        )
        provided = unquote(query["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected, provided):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.", 401
            )
        try:
            timestamp = int(query["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if abs(time.time() - timestamp) > OAUTH_WINDOW_SECONDS:
            return None, _wc_error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        with self._lock:
            nonce = (key.consumer_key, query["oauth_nonce"])
            if nonce in self._nonces:
                return None, _wc_error(
                    "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401
                )
            self._nonces.add(nonce)
        if handler.command in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
            )
        return key, None

    def _basic_authentication(
        self, handler: BaseHTTPRequestHandler, query: dict[str, str]
    ) -> tuple[ApiKey | None, dict | None, bool]:
        header = handler.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, None, False
        elif query.get("consumer_key") and query.get("consumer_secret"):
            user, password = query["consumer_key"], query["consumer_secret"]
        else:
            return None, None, False
        with self._lock:
            key = self.keys.get(user)
        if key is None or key.revoked:
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401), True
        if not hmac.compare_digest(key.consumer_secret, password):
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401), True
        if handler.command in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return (
                None,
                _wc_error(
                    "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
                ),
                True,
            )
        return key, None, True

    def _system_status(self) -> dict[str, Any]:
        return {
            "environment": {
                "home_url": self.base_url,
                "site_url": self.base_url,
                "version": WC_VERSION,
                "wp_version": WP_VERSION,
                "wp_multisite": False,
                "server_info": "fake",
            },
            "database": {"wc_database_version": WC_VERSION},
            "active_plugins": [],
            "theme": {"name": "Storefront"},
            "settings": {"api_enabled": True, "currency": "USD"},
            "security": {"secure_connection": False},
            "pages": [],
        }

    def _list_products(self, query: dict[str, str]) -> tuple[int, Any, dict]:
        try:
            per_page = int(query.get("per_page", "10"))
            page = int(query.get("page", "1"))
        except ValueError:
            per_page, page = 0, 0
        if not 1 <= per_page <= 100 or page < 1:
            bad = "per_page" if not 1 <= per_page <= 100 else "page"
            body = _wc_error("rest_invalid_param", f"Invalid parameter(s): {bad}", 400)
            body["data"]["params"] = {bad: f"{bad} must be between 1 (inclusive) and 100 (inclusive)"}
            return 400, body, {}
        total = len(self.products)
        total_pages = (total + per_page - 1) // per_page
        items = self.products[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        if page < total_pages:
            next_url = f"{self.base_url}/wp-json/wc/v3/products?{urlencode({'per_page': per_page, 'page': page + 1})}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return 200, items, headers


def _make_handler(fake: FakeWooCommerce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "Apache"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._dispatch()

        do_PUT = do_DELETE = do_POST

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            # PHP's $_GET: a repeated name keeps its last value.
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            fake._record(self, parts.path, query)
            path = parts.path.rstrip("/")
            if path == "/wc-auth/v1/authorize" and self.command == "GET":
                status, html = fake._authorize_page(query)
                self._send(status, html.encode(), "text/html; charset=UTF-8", {})
            elif path.startswith("/wp-json/") and fake.redirect_to:
                self._send(301, b"", "text/html; charset=UTF-8", {"Location": fake.redirect_to + self.path})
            elif path.startswith("/wp-json/") and fake.plain_permalinks:
                self._send(
                    200, b"<!doctype html><title>My Shop</title><h1>Welcome</h1>", "text/html; charset=UTF-8", {}
                )
            elif path.startswith("/wp-json/wc/v3/"):
                status, body, headers = fake._rest(self, path.removeprefix("/wp-json/wc/v3/"), query)
                self._send(status, json.dumps(body).encode(), "application/json; charset=UTF-8", headers)
            else:
                self._send(404, b"<h1>Page not found</h1>", "text/html; charset=UTF-8", {})

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first (timeouts)
                self.wfile.write(body)

    return Handler


# WooCommerce's algorithms, written from its PHP.


def _rawurlencode(value: str) -> str:
    """PHP rawurlencode: RFC 3986, everything but unreserved characters encoded (including '/')."""
    return quote(value, safe="-_.~")


def wc_oauth_signature(*, method: str, base_uri: str, params: dict[str, str], consumer_secret: str) -> str:
    """WC_REST_Authentication::check_oauth_signature's expected signature for a request."""
    signed = {key: value for key, value in params.items() if key != "oauth_signature"}
    pairs = []
    for key in sorted(signed):  # uksort(strcmp)
        name = _rawurlencode(unquote(key)).replace("%", "%25")
        value = _rawurlencode(unquote(signed[key])).replace("%", "%25")
        pairs.append(f"{name}%3D{value}")
    string_to_sign = f"{method.upper()}&{_rawurlencode(base_uri)}&{'%26'.join(pairs)}"
    algorithm = hashlib.sha1 if params.get("oauth_signature_method") == "HMAC-SHA1" else hashlib.sha256
    digest = hmac.new(f"{consumer_secret}&".encode(), string_to_sign.encode(), algorithm).digest()
    return base64.b64encode(digest).decode()


def wp_json_encode(value: Any) -> bytes:
    """PHP json_encode's default output: compact, \\uXXXX for non-ASCII, and '/' escaped as '\\/'."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def webhook_signature(body: bytes, secret: str) -> str:
    """WC_Webhook::generate_signature: base64(HMAC-SHA256(body, secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def build_webhook_delivery(
    *,
    topic: str,
    payload: Any,
    secret: str | None,
    webhook_id: int = 7,
    delivery_id: str | None = None,
    source: str = "https://shop.example/",
    signature: str | None = None,
) -> Delivery:
    """The request WC_Webhook::deliver() sends; `signature` overrides the computed one, `secret=None` omits it."""
    body = wp_json_encode(payload)
    resource, _, event = topic.partition(".")
    headers = {
        "User-Agent": HOOKSHOT_USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": str(webhook_id),
        # wp_hash(webhook id . current second): an md5-length hex string.
        "X-WC-Webhook-Delivery-ID": delivery_id or hashlib.md5(f"{webhook_id}{time.time()}".encode()).hexdigest(),  # noqa: S324
    }
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    elif secret is not None:
        headers["X-WC-Webhook-Signature"] = webhook_signature(body, secret)
    return Delivery(body=body, headers=headers)


def build_ping(*, webhook_id: int = 7) -> Delivery:
    """The unsigned ping WC_Webhook::deliver_ping() sends when a webhook is saved."""
    return Delivery(
        body=f"webhook_id={webhook_id}".encode(),
        headers={"User-Agent": HOOKSHOT_USER_AGENT},
        content_type="application/x-www-form-urlencoded",
    )


def send_delivery(client: Any, url: str, delivery: Delivery) -> Any:
    """POST a delivery to our app through the Django test client; returns the response."""
    return client.generic(
        "POST",
        urlsplit(url).path or url,
        delivery.body,
        content_type=delivery.content_type,
        headers=delivery.headers,
    )


@dataclass
class DjangoClientTransport:
    """A Transport that posts to the path of the URL through the Django test client, keeping the responses."""

    client: Any
    responses: list[Any] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        response = self.client.generic(
            "POST", urlsplit(url).path, body, content_type=headers.get("Content-Type", ""), headers=extra
        )
        self.responses.append(response)
        return int(response.status_code)


def http_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    """A Transport over real HTTP, for a running server (e.g. pytest-django's live_server)."""
    return requests.post(url, data=body, headers=headers, timeout=60, allow_redirects=False).status_code


def _write_self_signed_certificate() -> Path:
    """A throwaway certificate + key for 127.0.0.1 (PEM files in a temp dir); returns the certificate's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-woocommerce")])
    now = datetime.now(tz=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="fake-woocommerce-"))
    cert_path = directory / "cert.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    cert_path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path


def _wc_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


def _add_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


# Fixtures.


@pytest.fixture
def fake_woocommerce() -> Iterator[FakeWooCommerce]:
    """A started fake WooCommerce store (plain http on 127.0.0.1), stopped after the test."""
    fake = FakeWooCommerce().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_woocommerce_https(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWooCommerce]:
    """The fake store over https with a self-signed certificate that requests trusts for this test."""
    fake = FakeWooCommerce(tls=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def woocommerce_settings(settings: Any) -> Any:
    """Settings for onboarding tests: an https APP_URL (WooCommerce insists on an https callback_url)."""
    settings.LOCAL_MODE = True
    settings.APP_URL = "https://bitrecs.test"
    settings.WOOCOMMERCE_APP_NAME = "Bitrecs"
    settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS = 3600
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 5.0
    return settings


@pytest.fixture
def woocommerce_transport(client: Any) -> DjangoClientTransport:
    """Delivers the fake store's callback POSTs to our app through the Django test client."""
    return DjangoClientTransport(client=client)

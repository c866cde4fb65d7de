"""The fake store's API keys: /wc-auth/v1/authorize and the merchant's approval, and request authentication
(OAuth 1.0a over http, Basic auth or query keys over https) as WC_REST_Authentication does it."""

import base64
import binascii
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from bitrecs_site.testing.fake_server import FakeRequest
from bitrecs_site.testing.fake_woocommerce.content import StoreContent
from bitrecs_site.testing.fake_woocommerce.webhooks import Transport
from bitrecs_site.testing.fake_woocommerce.wire import (
    OAUTH_WINDOW_SECONDS,
    REQUIRED_OAUTH_PARAMS,
    WP_VERSION,
    add_query,
    wc_error,
    wc_oauth_signature,
)


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


class AuthorizeRefused(AssertionError):
    """The fake's /wc-auth/v1/authorize refused the request, as WooCommerce would."""


class StoreAuth(StoreContent):
    """API keys, the authorize screen and request authentication."""

    def __init__(self, *, require_https_callback: bool = True, tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.require_https_callback = require_https_callback
        self.keys: dict[str, ApiKey] = {}
        # wp_woocommerce_api_keys.nonces: per key, {timestamp: nonce} for the last 15 minutes.
        self._nonces: dict[str, dict[int, str]] = {}
        self._next_key_id = 1

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
            location = add_query(params["return_url"], {"success": "1", "user_id": params["user_id"]})
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
        return add_query(params["return_url"], {"success": "0", "user_id": params["user_id"]})

    def _open_grant_screen(self, authorize_url: str) -> dict[str, str]:
        if not authorize_url.startswith(self.base_url + "/"):
            raise AuthorizeRefused(f"{authorize_url} does not point at this fake store ({self.base_url}).")
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        if response.status_code != 200:
            raise AuthorizeRefused(f"HTTP {response.status_code}: {response.text}")
        return dict(parse_qsl(urlsplit(authorize_url).query))

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

    def _authenticate(self, request: FakeRequest, query: dict[str, str]) -> tuple[ApiKey | None, dict | None]:
        """WC_REST_Authentication: over https Basic auth (or query keys) first; OAuth 1.0a otherwise."""
        if self.tls:
            key, error, tried = self._basic_authentication(request, query)
            if tried:
                return key, error
        given = [name for name in REQUIRED_OAUTH_PARAMS if name in query]
        if not given:
            return None, None  # unauthenticated: the endpoint's permission check answers
        for name in REQUIRED_OAUTH_PARAMS:
            if not query.get(name):
                return None, wc_error(
                    "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameter {name}", 401
                )
        with self._lock:
            key = self.keys.get(query["oauth_consumer_key"])
        if key is None or key.revoked:
            return None, wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        method = query["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return None, wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401
            )
        scheme = "https" if self.tls else "http"
        base_uri = f"{scheme}://{request.headers.get('Host', '')}{urlsplit(request.target).path}"
        expected = wc_oauth_signature(
            method=request.method, base_uri=base_uri, params=query, consumer_secret=key.consumer_secret
        )
        provided = unquote(query["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected, provided):
            return None, wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.", 401
            )
        try:
            timestamp = int(query["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if abs(time.time() - timestamp) > OAUTH_WINDOW_SECONDS:
            return None, wc_error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        with self._lock:
            used = self._nonces.setdefault(key.consumer_key, {})
            if query["oauth_nonce"] in used.values():
                return None, wc_error(
                    "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401
                )
            used[timestamp] = query["oauth_nonce"]
            expired = time.time() - OAUTH_WINDOW_SECONDS
            for stamp in [stamp for stamp in used if stamp < expired]:
                del used[stamp]
        if request.method in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return None, wc_error(
                "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
            )
        return key, None

    def _basic_authentication(
        self, request: FakeRequest, query: dict[str, str]
    ) -> tuple[ApiKey | None, dict | None, bool]:
        header = request.headers.get("Authorization", "")
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
            return None, wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401), True
        if not hmac.compare_digest(key.consumer_secret, password):
            return None, wc_error("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401), True
        if request.method in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return (
                None,
                wc_error(
                    "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
                ),
                True,
            )
        return key, None, True

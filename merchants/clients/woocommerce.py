"""A small typed client for a WooCommerce store's REST API (wc/v3), signed as the `woocommerce` package signs.

Requests are authenticated as WooCommerce expects: HTTP Basic over https, one-legged OAuth 1.0a query
parameters (the package's `OAuth`) over plain http. They go through one keep-alive `requests.Session` per
client (or the one it is given, e.g. a sync's, so its pages and variation listings reuse a few connections
instead of opening one per call). This module adds explicit timeouts, no redirects (credentials must not follow
a redirect to another host), one mapping from HTTP failures to merchants.exceptions, and dataclasses: raw JSON
never leaves it.
"""

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from requests.auth import HTTPBasicAuth
from woocommerce.oauth import OAuth

from bitrecs_site.http import error_fields, retry_after_seconds, timeouts
from merchants.exceptions import PlatformRejected, PlatformUnauthorized, PlatformUnavailable
from merchants.hosts import is_internal_address

logger = logging.getLogger(__name__)

API_VERSION = "wc/v3"
USER_AGENT = "Bitrecs/1.0 (WooCommerce REST client)"


@dataclass(frozen=True)
class ApiResponse:
    """One decoded answer: the JSON body plus the WordPress pagination headers (for the client's own methods)."""

    status_code: int
    body: Any
    total: int | None = None
    total_pages: int | None = None


@dataclass(frozen=True)
class SystemStatus:
    """What `GET system_status` tells about a store (also proof that a key can read it)."""

    home_url: str
    site_url: str
    woocommerce_version: str
    wordpress_version: str


def ensure_public_host(host: str) -> None:
    """Refuse a store whose host name resolves to an address inside a private network (server-side request
    forgery: merchants type the URL, our servers call it with credentials). Checked before every call, so a
    name re-pointed after install is refused too; a resolver that answers differently between this check and
    the connection (DNS rebinding within seconds) is not covered."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise PlatformUnavailable(f"{host} could not be resolved ({exc}).") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if is_internal_address(address):
            raise PlatformRejected(
                f"{host} resolves to {address}, which is not a public internet address; "
                "give the store's public address."
            )


class WooCommerceClient:
    """REST calls to one store, with one store's key pair; every failure is PlatformRejected or PlatformUnavailable."""

    def __init__(
        self,
        *,
        store_url: str,
        consumer_key: str,
        consumer_secret: str,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.store_url = store_url.rstrip("/")
        self.host = urlsplit(self.store_url).netloc
        self.timeout = float(settings.PLATFORM_HTTP_TIMEOUT_SECONDS if timeout is None else timeout)
        self.session = session if session is not None else requests.Session()
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret

    def __repr__(self) -> str:
        return f"WooCommerceClient(store_url={self.store_url!r})"  # never the keys

    def close(self) -> None:
        """Close the client's connections (a session it was given is closed too)."""
        self.session.close()

    # Building blocks: the typed methods below (and the sync's) are made of these.

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, Any] | None = None,
        data: Any = None,
    ) -> ApiResponse:
        """Call `{store}/wp-json/wc/v3/{endpoint}` and return the decoded answer, or raise the mapped error."""
        if method not in ("GET", "POST", "PUT", "DELETE"):
            raise ValueError(f"Unsupported method {method!r}.")
        if not settings.PLATFORM_ALLOW_PRIVATE_HOSTS:
            ensure_public_host(urlsplit(self.store_url).hostname or "")
        url, query, auth = self._signed(method, f"{self.store_url}/wp-json/{API_VERSION}/{endpoint}", params or {})
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        body = None
        if data is not None:
            body = json.dumps(data, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json;charset=utf-8"
        try:
            response = self.session.request(
                method,
                url,
                params=query,
                data=body,
                headers=headers,
                auth=auth,
                timeout=timeouts(read=self.timeout),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            # The exception text holds the signed URL (consumer key, signature): keep it out of messages.
            raise PlatformUnavailable(f"{self.host} did not answer within {self.timeout:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"{self.host} could not be reached ({type(exc).__name__}).") from exc
        return self._decode(response, endpoint=endpoint)

    def _signed(
        self, method: str, url: str, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None, HTTPBasicAuth | None]:
        """The URL, query and auth of a call: Basic auth over https, an OAuth 1.0a signed query over http."""
        if url.startswith("https"):
            return url, dict(params), HTTPBasicAuth(self._consumer_key, self._consumer_secret)
        unsigned = f"{url}?{urlencode(params)}" if params else url
        oauth = OAuth(
            url=unsigned,
            consumer_key=self._consumer_key,
            consumer_secret=self._consumer_secret,
            version=API_VERSION,
            method=method,
        )
        return oauth.get_oauth_url(), None, None

    def get(self, endpoint: str, *, params: dict[str, Any] | None = None) -> ApiResponse:
        """GET an endpoint (see `request`)."""
        return self.request("GET", endpoint, params=params)

    # Typed calls.

    def get_system_status(self) -> SystemStatus:
        """Read the store's system status; a cheap proof that the key pair works and may read."""
        body = self.get("system_status").body
        environment = body.get("environment") if isinstance(body, dict) else None
        if not isinstance(environment, dict):
            raise PlatformRejected(f"{self.host} answered system_status without an environment section.")
        return SystemStatus(
            home_url=str(environment.get("home_url") or ""),
            site_url=str(environment.get("site_url") or ""),
            woocommerce_version=str(environment.get("version") or ""),
            wordpress_version=str(environment.get("wp_version") or ""),
        )

    # Error mapping.

    def _decode(self, response: requests.Response, *, endpoint: str) -> ApiResponse:
        status = response.status_code
        if status == 429 or status >= 500:
            logger.warning("woocommerce.unavailable", extra={"host": self.host, "endpoint": endpoint, "status": status})
            raise PlatformUnavailable(
                f"{self.host} answered HTTP {status}{_error_suffix(response)}.",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise PlatformRejected(
                f"{self.host} redirected the API call (HTTP {status}) to {_strip_query(location)!r}; "
                "connect the store with its canonical address."
            )
        if status >= 400:
            logger.info("woocommerce.rejected", extra={"host": self.host, "endpoint": endpoint, "status": status})
            error = PlatformUnauthorized if status in (401, 403) else PlatformRejected
            raise error(f"{self.host} refused the API call (HTTP {status}){_error_suffix(response)}.")
        try:
            body = response.json()
        except ValueError as exc:
            if "json" in response.headers.get("Content-Type", "").lower():
                # WordPress meant to send JSON: a PHP notice or a plugin's output corrupted it, or it was cut off.
                raise PlatformRejected(
                    f"{self.host} answered {endpoint} with malformed JSON (HTTP {status}, {len(response.content)} "
                    "bytes); a PHP notice or a plugin's output may be corrupting its REST API answers."
                ) from exc
            # Typically plain permalinks: /wp-json/ is then served as an ordinary page.
            raise PlatformRejected(
                f"{self.host} did not answer {endpoint} with JSON; the store needs pretty permalinks "
                "for the WooCommerce REST API."
            ) from exc
        return ApiResponse(
            status_code=status,
            body=body,
            total=_int_header(response, "X-WP-Total"),
            total_pages=_int_header(response, "X-WP-TotalPages"),
        )


def _error_suffix(response: requests.Response) -> str:
    """WooCommerce's error code and message ({"code", "message", "data"}), when the body has them."""
    detail = error_fields(response, fields=("code", "message"), limit=400)
    return f": {detail}" if detail else ""


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _strip_query(url: str) -> str:
    """A URL without its query, which may echo our signed OAuth parameters."""
    return url.split("?", 1)[0][:300]

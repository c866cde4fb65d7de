"""A small typed client for a WooCommerce store's REST API (wc/v3), on top of the `woocommerce` package.

The package signs requests for us: HTTP Basic over https, one-legged OAuth 1.0a query parameters over plain
http. This module adds an explicit timeout, no redirects (credentials must not follow a redirect to another
host), one mapping from HTTP failures to merchants.exceptions, and dataclasses: raw JSON never leaves it.
"""

import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from woocommerce import API

from merchants.exceptions import PlatformRejected, PlatformUnauthorized, PlatformUnavailable
from merchants.hosts import is_internal_address

logger = logging.getLogger(__name__)

API_VERSION = "wc/v3"
USER_AGENT = "Bitrecs/1.0 (WooCommerce REST client)"
# Answers that say "these credentials or this URL will not work": retrying cannot help.
REJECTED_STATUSES = frozenset({400, 401, 403, 404, 405, 410})


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


@dataclass(frozen=True)
class ProductSummary:
    """The fields of a wc/v3 product that identify it; the sync extends this with what it stores."""

    id: int
    name: str
    sku: str
    status: str
    type: str
    permalink: str


@dataclass(frozen=True)
class ProductPage:
    """One page of `GET products`, with WordPress's totals (X-WP-Total, X-WP-TotalPages)."""

    page: int
    per_page: int
    items: list[ProductSummary] = field(default_factory=list)
    total: int | None = None
    total_pages: int | None = None

    @property
    def has_next(self) -> bool:
        return self.total_pages is not None and self.page < self.total_pages


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
    ) -> None:
        self.store_url = store_url.rstrip("/")
        self.host = urlsplit(self.store_url).netloc
        self.timeout = float(settings.PLATFORM_HTTP_TIMEOUT_SECONDS if timeout is None else timeout)
        self._api = API(
            url=self.store_url,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            version=API_VERSION,
            timeout=self.timeout,
            user_agent=USER_AGENT,
        )

    def __repr__(self) -> str:
        return f"WooCommerceClient(store_url={self.store_url!r})"  # never the keys

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
        kwargs: dict[str, Any] = {"params": dict(params or {}), "allow_redirects": False}
        if not settings.PLATFORM_ALLOW_PRIVATE_HOSTS:
            ensure_public_host(urlsplit(self.store_url).hostname or "")
        try:
            if method == "GET":
                response = self._api.get(endpoint, **kwargs)
            elif method == "POST":
                response = self._api.post(endpoint, data, **kwargs)
            elif method == "PUT":
                response = self._api.put(endpoint, data, **kwargs)
            elif method == "DELETE":
                response = self._api.delete(endpoint, **kwargs)
            else:
                raise ValueError(f"Unsupported method {method!r}.")
        except requests.Timeout as exc:
            # The exception text holds the signed URL (consumer key, signature): keep it out of messages.
            raise PlatformUnavailable(f"{self.host} did not answer within {self.timeout:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"{self.host} could not be reached ({type(exc).__name__}).") from exc
        return self._decode(response, endpoint=endpoint)

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

    def list_products(self, *, page: int = 1, per_page: int = 100) -> ProductPage:
        """Read one page of products (per_page is 1..100, the WordPress maximum)."""
        if not 1 <= per_page <= 100:
            raise ValueError("per_page must be between 1 and 100.")
        answer = self.get("products", params={"page": page, "per_page": per_page})
        if not isinstance(answer.body, list):
            raise PlatformRejected(f"{self.host} answered products with something other than a list.")
        items = [
            ProductSummary(
                id=int(item["id"]),
                name=str(item.get("name") or ""),
                sku=str(item.get("sku") or ""),
                status=str(item.get("status") or ""),
                type=str(item.get("type") or ""),
                permalink=str(item.get("permalink") or ""),
            )
            for item in answer.body
            if isinstance(item, dict) and "id" in item
        ]
        return ProductPage(
            page=page, per_page=per_page, items=items, total=answer.total, total_pages=answer.total_pages
        )

    # Error mapping.

    def _decode(self, response: requests.Response, *, endpoint: str) -> ApiResponse:
        status = response.status_code
        if status == 429 or status >= 500:
            logger.warning("woocommerce.unavailable", extra={"host": self.host, "endpoint": endpoint, "status": status})
            raise PlatformUnavailable(
                f"{self.host} answered HTTP {status}{_describe_error(response)}.",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
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
            raise error(f"{self.host} refused the API call (HTTP {status}){_describe_error(response)}.")
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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(tz=UTC)).total_seconds())


def _describe_error(response: requests.Response) -> str:
    """WooCommerce's error code and message ({"code", "message", "data"}), when the body has them."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or not body.get("code"):
        return ""
    return f": {str(body['code'])[:100]} ({str(body.get('message') or '')[:300]})"


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _strip_query(url: str) -> str:
    """A URL without its query, which may echo our signed OAuth parameters."""
    return url.split("?", 1)[0][:300]

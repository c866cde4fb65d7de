"""Client for one shop's OAuth token endpoint (`/admin/oauth/access_token`): code exchange and token refresh.

Raw JSON never leaves this module: answers come back as `ShopifyToken` dataclasses, failures as
`PlatformRejected` (4xx: not worth retrying) or `PlatformUnavailable` (timeouts, 429, 5xx).
"""

import logging
from dataclasses import dataclass
from typing import Any

import requests

from merchants.exceptions import PlatformRejected, PlatformUnavailable

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0


class ShopifyTokenRejected(PlatformRejected):
    """The token endpoint answered 4xx; `upstream_status` tells a revoked grant (400/401) from the rest."""

    def __init__(self, message: str, *, upstream_status: int) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


@dataclass(frozen=True)
class ShopifyToken:
    """An offline access token; the expiry fields are None for a non-expiring token."""

    access_token: str
    scope: str
    expires_in: int | None
    refresh_token: str
    refresh_token_expires_in: int | None


class ShopifyOAuthClient:
    """Calls one shop's token endpoint with the app's credentials (never a process-global session)."""

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, timeout: float) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = (min(CONNECT_TIMEOUT_SECONDS, timeout), timeout)

    def exchange_code(self, *, code: str) -> ShopifyToken:
        """Exchange an authorization code for an expiring offline token (with its refresh token)."""
        return self._request_token({"code": code, "expiring": "1"})

    def refresh(self, *, refresh_token: str) -> ShopifyToken:
        """Trade a refresh token for a new access token; Shopify rotates the refresh token on every use."""
        return self._request_token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _request_token(self, fields: dict[str, str]) -> ShopifyToken:
        data = {"client_id": self.client_id, "client_secret": self.client_secret, **fields}
        try:
            response = requests.post(
                self.token_url, data=data, headers={"Accept": "application/json"}, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"Shopify's token endpoint did not answer within {self.timeout[1]:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"Shopify's token endpoint could not be reached: {type(exc).__name__}.") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise PlatformUnavailable(
                f"Shopify's token endpoint answered {response.status_code}; try again later.",
                retry_after=_retry_after(response),
            )
        if response.status_code >= 400:
            raise ShopifyTokenRejected(
                f"Shopify refused the token request ({response.status_code}): {_error_description(response)}",
                upstream_status=response.status_code,
            )
        return _parse_token(response)


def _parse_token(response: requests.Response) -> ShopifyToken:
    try:
        body: Any = response.json()
    except ValueError as exc:
        raise PlatformUnavailable("Shopify's token endpoint answered with something that is not JSON.") from exc
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise PlatformUnavailable("Shopify's token endpoint answered without an access_token.")
    return ShopifyToken(
        access_token=body["access_token"],
        scope=str(body.get("scope") or ""),
        expires_in=_optional_int(body.get("expires_in")),
        refresh_token=str(body.get("refresh_token") or ""),
        refresh_token_expires_in=_optional_int(body.get("refresh_token_expires_in")),
    )


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise PlatformUnavailable(f"Shopify's token endpoint answered a non-numeric lifetime {value!r}.") from exc


def _error_description(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason or "no detail"
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("error", "error_description", "errors") if body.get(key)]
        if parts:
            return " - ".join(parts)[:300]
    return str(body)[:200]


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None

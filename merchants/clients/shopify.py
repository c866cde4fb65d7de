"""Client for one shop's OAuth token endpoint (`/admin/oauth/access_token`): code exchange, token exchange, refresh.

Raw JSON never leaves this module: answers come back as `ShopifyToken` dataclasses, failures as
`PlatformRejected` (4xx: not worth retrying) or `PlatformUnavailable` (timeouts, 429, 5xx).
"""

import logging
import re
from dataclasses import dataclass
from typing import Any

import requests

from bitrecs_site.http import error_text, json_body, json_get, retry_after_seconds, timeouts
from merchants.exceptions import PlatformRejected, PlatformUnavailable

logger = logging.getLogger(__name__)

# The fields of an OAuth error answer that explain it (RFC 6749 §5.2, and Shopify's own "errors").
_ERROR_FIELDS = ("error", "error_description", "errors")
_HTML_OAUTH_ERROR = re.compile(r"Oauth error ([a-z_]{1,100})")
# OAuth 2.0 token exchange (RFC 8693) as Shopify speaks it: an App Bridge ID token in, an offline token out.
# (Type names, not secrets: hence the S105 waivers.)
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_ACCESS_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class ShopifyTokenRejected(PlatformRejected):
    """The token endpoint answered 4xx; `upstream_status` tells a revoked grant (400/401) from the rest.

    `upstream_error` is the OAuth `error` code of the answer (`invalid_subject_token`, `invalid_client` …), or "".
    """

    def __init__(self, message: str, *, upstream_status: int, upstream_error: str = "") -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.upstream_error = upstream_error


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
        self.timeout = timeouts(read=timeout)

    def exchange_code(self, *, code: str) -> ShopifyToken:
        """Exchange an authorization code for an expiring offline token (with its refresh token)."""
        return self._request_token({"code": code, "expiring": "1"})

    def exchange_id_token(self, *, id_token: str) -> ShopifyToken:
        """Exchange an App Bridge ID token for an expiring offline token (token exchange, managed installation).

        Sent as JSON, as Shopify's own libraries (shopify-app-python, @shopify/shopify-api) send this grant.
        """
        return self._request_token(
            {
                "grant_type": TOKEN_EXCHANGE_GRANT_TYPE,
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN_TYPE,
                "requested_token_type": OFFLINE_ACCESS_TOKEN_TYPE,
                "expiring": "1",
            },
            as_json=True,
        )

    def refresh(self, *, refresh_token: str) -> ShopifyToken:
        """Trade a refresh token for a new access token; Shopify rotates the refresh token on every use."""
        return self._request_token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _request_token(self, fields: dict[str, str], *, as_json: bool = False) -> ShopifyToken:
        data = {"client_id": self.client_id, "client_secret": self.client_secret, **fields}
        headers = {"Accept": "application/json"}
        try:
            if as_json:
                response = requests.post(self.token_url, json=data, headers=headers, timeout=self.timeout)
            else:
                response = requests.post(self.token_url, data=data, headers=headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"Shopify's token endpoint did not answer within {self.timeout[1]:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"Shopify's token endpoint could not be reached: {type(exc).__name__}.") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise PlatformUnavailable(
                f"Shopify's token endpoint answered {response.status_code}; try again later.",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            reason = error_text(response, fields=_ERROR_FIELDS)
            raise ShopifyTokenRejected(
                f"Shopify refused the token request ({response.status_code}): {reason}",
                upstream_status=response.status_code,
                upstream_error=_error_code(response),
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


def _error_code(response: requests.Response) -> str:
    """The OAuth `error` of a 4xx: from the JSON body, or from an HTML page's "Oauth error <code>: …"."""
    body = json_body(response)
    if body is None:
        match = _HTML_OAUTH_ERROR.search(response.text[:2000])
        return match.group(1) if match else ""
    error = json_get(body, "error")
    return error[:100] if isinstance(error, str) else ""

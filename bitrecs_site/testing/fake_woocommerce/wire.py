"""WooCommerce's and WordPress's algorithms and shapes, written from their PHP: OAuth 1.0a signatures, JSON
encoding, webhook signatures, error bodies, dates, slugs, WP_Query collection filters."""

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

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

# The order item meta key the Bitrecs plugin stores the recommendation id under.
REC_ID_META_KEY = "_bitrecs_rec_id"

WC_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"

_NUMERIC_SEGMENT = re.compile(r"(?<=/)\d+(?=/|$)")


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


def wc_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


def add_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def wc_time(moment: datetime) -> str:
    """A datetime in the format of WooCommerce's *_gmt fields ("2025-01-01T00:00:00", UTC, no offset)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(WC_TIME_FORMAT)


def slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def term_ref(term: Mapping[str, Any]) -> dict[str, Any]:
    """How a product lists one of its terms: id, name and slug (no parent)."""
    return {"id": term["id"], "name": term["name"], "slug": term["slug"]}


def tag_ref(tag_id: int, name: str) -> dict[str, Any]:
    return {"id": tag_id, "name": name, "slug": slugify(name)}


def route_name(route: str) -> str:
    """A route with its ids as '*': products/123/variations -> products/*/variations."""
    return _NUMERIC_SEGMENT.sub("*", "/" + route)[1:]


@dataclass(frozen=True)
class Filters:
    """The collection filters the fake understands (WP_Query semantics: date bounds are exclusive)."""

    statuses: frozenset[str] | None = None  # None is status=any
    type: str | None = None
    modified_after: str | None = None
    modified_before: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    gmt: bool = False
    descending: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "Filters":
        status = query.get("status", "any").strip()
        statuses = None if status in ("", "any") else frozenset(s.strip() for s in status.split(",") if s.strip())
        return cls(
            statuses=statuses,
            type=query.get("type") or None,
            modified_after=_query_date(query, "modified_after"),
            modified_before=_query_date(query, "modified_before"),
            created_after=_query_date(query, "after"),
            created_before=_query_date(query, "before"),
            gmt=query.get("dates_are_gmt", "").lower() in ("1", "true"),
            descending=query.get("order", "asc").lower() == "desc",
        )

    def matches(self, record: Any, *, hidden: frozenset[str] = frozenset({"trash"})) -> bool:
        if not isinstance(record, dict):
            return True  # a corrupt row is served whatever the filters, as a broken plugin would
        status = record.get("status")
        if (status in hidden) if self.statuses is None else (status not in self.statuses):
            return False
        if self.type is not None and record.get("type") != self.type:
            return False
        suffix = "_gmt" if self.gmt else ""
        modified = str(record.get("date_modified" + suffix) or "")[:19]
        created = str(record.get("date_created" + suffix) or "")[:19]
        return (
            (self.modified_after is None or modified > self.modified_after)
            and (self.modified_before is None or modified < self.modified_before)
            and (self.created_after is None or created > self.created_after)
            and (self.created_before is None or created < self.created_before)
        )


def _query_date(query: Mapping[str, str], name: str) -> str | None:
    """A date parameter as WordPress's rest_parse_date reads it, normalised to the stored format (UTC)."""
    value = query.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise ValueError(name) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(WC_TIME_FORMAT)

"""The `hmac` query parameter Shopify signs install and callback URLs with, and their timestamp."""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.utils import timezone

from merchants.exceptions import InvalidRequest, InvalidSignature, StaleRequest
from merchants.services.shopify.shop import app_secrets, validate_shop_domain

# Shopify's clocks and ours drift a little; a timestamp further ahead than this is not a real request.
TIMESTAMP_FUTURE_SKEW_SECONDS = 60


def _single(params: Mapping[str, Sequence[str]], key: str) -> str:
    values = params.get(key) or []
    if len(values) > 1:
        raise InvalidRequest(f"The parameter {key!r} appears more than once.")
    return values[0] if values else ""


def _query_hmac_message(params: Mapping[str, Sequence[str]]) -> str:
    """Shopify's signed message: every parameter but hmac/signature, delimiters escaped, sorted, joined with &."""
    pairs = []
    for raw_key, values in params.items():
        if raw_key in ("hmac", "signature"):
            continue
        if raw_key.endswith("[]"):
            key, value = raw_key[:-2], json.dumps([str(item) for item in values])
        elif len(values) == 1:
            key, value = raw_key, values[0]
        else:
            raise InvalidRequest(f"The parameter {raw_key!r} appears more than once.")
        key = key.replace("%", "%25").replace("=", "%3D")
        value = value.replace("%", "%25")
        pairs.append(f"{key}={value}".replace("&", "%26"))
    return "&".join(sorted(pairs))


def compute_query_hmac(*, params: Mapping[str, Sequence[str]], secret: str) -> str:
    """Return the hex HMAC-SHA256 Shopify puts in the `hmac` parameter of an install or callback URL."""
    return hmac.new(secret.encode(), _query_hmac_message(params).encode(), hashlib.sha256).hexdigest()


def verify_shopify_request(*, params: Mapping[str, Sequence[str]]) -> str:
    """Check a query Shopify signed (shop, hmac, timestamp) and return the shop; raise 400/401 otherwise."""
    shop = validate_shop_domain(_single(params, "shop"))
    received = _single(params, "hmac")
    if not received:
        raise InvalidSignature("The request carries no hmac parameter; open the app from the Shopify admin.")
    if not any(
        hmac.compare_digest(compute_query_hmac(params=params, secret=secret).encode(), received.encode())
        for secret in app_secrets()
    ):
        raise InvalidSignature("The hmac parameter does not match: the request was not signed by Shopify for this app.")
    _check_timestamp(_single(params, "timestamp"))
    return shop


def _check_timestamp(raw: str) -> None:
    try:
        timestamp = int(raw)
    except ValueError as exc:
        raise InvalidRequest("The timestamp parameter is missing or not a whole number of seconds.") from exc
    now = timezone.now().timestamp()
    max_age = int(settings.SHOPIFY_HMAC_MAX_AGE_SECONDS)
    if now - timestamp > max_age:
        raise StaleRequest(
            f"The request was signed {int(now - timestamp)} s ago; the limit is {max_age} s. "
            "Open the app from the Shopify admin again."
        )
    if timestamp - now > TIMESTAMP_FUTURE_SKEW_SECONDS:
        raise StaleRequest("The request's timestamp is in the future; check the server clock.")

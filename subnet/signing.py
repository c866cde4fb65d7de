"""Request signatures of the validator `/rec` API (BITRECS_PROTOCOL.md §1.8): canonical bytes, sign, verify, keys.

Two schemes share one signed message, `f"{x_timestamp}.{json.dumps(body, sort_keys=True)}"` in UTF-8:

* Ed25519 (public testnet and mainnet validators, and every network of ours): `x-signature` is the
  hex of the 64-byte signature by the gateway's key, whose raw public key the gateway serves.
* `localnet` HMAC-SHA256 with the public subnet's hard-coded key `change-me`: `x-signature` is the
  lowercase hex digest. Only for talking to a public validator started with `NETWORK=localnet`.

Pure functions: no Django settings, no bittensor import, no clock read unless `now` is omitted.
"""

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from subnet.types import REQUEST_FIELDS

# The keys the public validator signs over (0.8.2 to 0.8.4, and every localnet HMAC check).
SIGNED_FIELDS: Final[tuple[str, ...]] = REQUEST_FIELDS
# Later bitrecs-subnet releases (0.8.9, bittensor 10.0.0rc3) add `miner_signature` (null from a
# gateway) to the Ed25519 canonical body only; their localnet HMAC check still uses SIGNED_FIELDS.
SIGNED_FIELDS_WITH_MINER_SIGNATURE: Final[tuple[str, ...]] = (*REQUEST_FIELDS, "miner_signature")

LOCALNET_HMAC_KEY: Final = b"change-me"
# The public validator refuses a request when `now - timestamp > 300` (exactly 300 s old passes).
MAX_SIGNATURE_AGE_SECONDS: Final = 300
# The public validator accepts any future timestamp; ours refuses one more than this ahead of its clock.
MAX_FUTURE_SKEW_SECONDS: Final = 60

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")
_ED25519_SIGNATURE_RE: Final = re.compile(r"[0-9a-fA-F]{128}")
_KEY_HEX_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_STRING_FIELDS: Final = frozenset(
    {"created_at", "user", "query", "context", "site_key", "miner_uid", "miner_hotkey", "miner_signature"}
)
_LIST_FIELDS: Final = frozenset({"results", "models_used"})
# Fields the validator's model fills in when the key is absent; it signs the filled-in value.
_MODEL_DEFAULTS: Final[Mapping[str, object]] = {"num_results": 0, "miner_signature": None}


class SignatureError(ValueError):
    """A request signature that must be refused (the public validator answers 401 or 500)."""


class SignatureMalformed(SignatureError):
    """The timestamp is not decimal unix seconds, or the signature is not hex of the right length."""


class SignatureExpired(SignatureError):
    """The timestamp is older than the allowed age."""


class SignatureFromFuture(SignatureError):
    """The timestamp is further ahead of the verifier's clock than the allowed skew."""


class SignatureMismatch(SignatureError):
    """The signature does not match the body, timestamp and key."""


def canonical_body(*, body: Mapping[str, object], fields: Sequence[str] = SIGNED_FIELDS) -> str:
    """Return `json.dumps` of exactly `fields` of the body with sorted keys, Python's default separators, ASCII-only.

    The body must hold its values as the validator's pydantic model holds them after parsing
    (`num_results` an int, lists as lists); other types would sign bytes the validator never
    rebuilds, so they raise `TypeError`. Keys outside `fields` are left out, as the validator does;
    an absent `num_results` or `miner_signature` counts as the model's default (0, None).
    """
    missing = [name for name in fields if name not in body and name not in _MODEL_DEFAULTS]
    if missing:
        raise ValueError(f"body lacks signed fields: {', '.join(missing)}")
    picked = {name: body[name] if name in body else _MODEL_DEFAULTS[name] for name in fields}
    for name, value in picked.items():
        if name == "num_results":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("num_results must be an int")
        elif name in _LIST_FIELDS:
            if value is not None and not isinstance(value, list):
                raise TypeError(f"{name} must be a list or None")
        elif name in _STRING_FIELDS and value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None")
    return json.dumps(picked, sort_keys=True)


def signing_message(
    *, timestamp: int | str, body: Mapping[str, object], fields: Sequence[str] = SIGNED_FIELDS
) -> bytes:
    """Return the signed bytes: `"<x-timestamp>.<canonical body>"` in UTF-8, the timestamp as sent."""
    return f"{timestamp}.{canonical_body(body=body, fields=fields)}".encode()


def check_timestamp(
    *,
    timestamp: str,
    now: int | None = None,
    max_age: int = MAX_SIGNATURE_AGE_SECONDS,
    max_future_skew: int | None = MAX_FUTURE_SKEW_SECONDS,
) -> int:
    """Return the `x-timestamp` header as unix seconds, or raise if it is malformed, stale or too far ahead.

    Stricter than the public validator's `int(x_timestamp)`: only ASCII digits are accepted.
    `max_future_skew=None` accepts any future timestamp, as the public validator does.
    """
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureMalformed("x-timestamp must be integer unix seconds")
    seconds = int(timestamp)
    current = int(time.time()) if now is None else now
    if current - seconds > max_age:
        raise SignatureExpired(f"x-timestamp is more than {max_age} s old")
    if max_future_skew is not None and seconds - current > max_future_skew:
        raise SignatureFromFuture(f"x-timestamp is more than {max_future_skew} s in the future")
    return seconds


def sign_ed25519(
    *,
    private_key: Ed25519PrivateKey,
    timestamp: int | str,
    body: Mapping[str, object],
    fields: Sequence[str] = SIGNED_FIELDS,
) -> str:
    """Return the `x-signature` of a `/rec` request: lowercase hex of the Ed25519 signature (128 characters)."""
    return private_key.sign(signing_message(timestamp=timestamp, body=body, fields=fields)).hex()


def verify_ed25519(
    *,
    public_key: Ed25519PublicKey,
    signature: str,
    timestamp: str,
    body: Mapping[str, object],
    now: int | None = None,
    max_age: int = MAX_SIGNATURE_AGE_SECONDS,
    max_future_skew: int | None = MAX_FUTURE_SKEW_SECONDS,
    fields: Sequence[str] = SIGNED_FIELDS,
) -> None:
    """Check an Ed25519 `x-signature` (hex, either case) and its `x-timestamp`; raise a `SignatureError` if refused."""
    check_timestamp(timestamp=timestamp, now=now, max_age=max_age, max_future_skew=max_future_skew)
    if not isinstance(signature, str) or not _ED25519_SIGNATURE_RE.fullmatch(signature):
        raise SignatureMalformed("x-signature must be 128 hex characters")
    try:
        public_key.verify(bytes.fromhex(signature), signing_message(timestamp=timestamp, body=body, fields=fields))
    except InvalidSignature as exc:
        raise SignatureMismatch("x-signature does not match") from exc


def sign_localnet_hmac(
    *,
    timestamp: int | str,
    body: Mapping[str, object],
    key: bytes = LOCALNET_HMAC_KEY,
) -> str:
    """Return the `x-signature` a public `NETWORK=localnet` validator expects: lowercase hex HMAC-SHA256."""
    return hmac.new(key, signing_message(timestamp=timestamp, body=body), hashlib.sha256).hexdigest()


def verify_localnet_hmac(
    *,
    signature: str,
    timestamp: str,
    body: Mapping[str, object],
    key: bytes = LOCALNET_HMAC_KEY,
    now: int | None = None,
    max_age: int = MAX_SIGNATURE_AGE_SECONDS,
    max_future_skew: int | None = MAX_FUTURE_SKEW_SECONDS,
) -> None:
    """Check a localnet HMAC `x-signature` and its `x-timestamp`; raise a `SignatureError` if refused.

    The comparison is constant-time and case-sensitive (lowercase hex), as in the public validator.
    """
    check_timestamp(timestamp=timestamp, now=now, max_age=max_age, max_future_skew=max_future_skew)
    if not isinstance(signature, str):
        raise SignatureMalformed("x-signature must be a string")
    expected = sign_localnet_hmac(timestamp=timestamp, body=body, key=key)
    if not hmac.compare_digest(signature.encode("utf-8"), expected.encode("ascii")):
        raise SignatureMismatch("x-signature does not match")


def load_private_key(*, hex_key: str) -> Ed25519PrivateKey:
    """Return the Ed25519 private key held as 64 hex characters (the 32-byte seed), e.g. `BITRECS_SIGNING_KEY`."""
    return Ed25519PrivateKey.from_private_bytes(_key_bytes(hex_key=hex_key, what="private key"))


def load_public_key(*, hex_key: str) -> Ed25519PublicKey:
    """Return the Ed25519 public key held as 64 hex characters, the form `GET /public_key` serves."""
    return Ed25519PublicKey.from_public_bytes(_key_bytes(hex_key=hex_key, what="public key"))


def public_key_hex(*, private_key: Ed25519PrivateKey) -> str:
    """Return the raw 32-byte public key of a private key as 64 lowercase hex characters."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def derive_public_key_hex(*, private_key_hex: str) -> str:
    """Return the 64-hex public key of a 64-hex private key."""
    return public_key_hex(private_key=load_private_key(hex_key=private_key_hex))


def generate_private_key_hex() -> str:
    """Return a new random Ed25519 private key as 64 lowercase hex characters."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw.hex()


def _key_bytes(*, hex_key: str, what: str) -> bytes:
    stripped = hex_key.strip()
    if not _KEY_HEX_RE.fullmatch(stripped):
        raise ValueError(f"an Ed25519 {what} must be 64 hex characters")
    return bytes.fromhex(stripped)


# ---------------------------------------------------------------------------------- probes (ours, not public)

PROBE_DOMAIN: Final = "bitrecs-probes"


def probe_request_message(*, timestamp: str, hotkey: str, path: str) -> bytes:
    """What a validator signs with its hotkey (sr25519) to fetch probes: `"bitrecs-probes.<ts>.<hotkey>.<path>"`,
    `path` with its query string, so a signature is good for one request shape and `MAX_SIGNATURE_AGE_SECONDS`."""
    return f"{PROBE_DOMAIN}.{timestamp}.{hotkey}.{path}".encode()


def probe_response_message(*, timestamp: str, hotkey: str, body: bytes) -> bytes:
    """What the gateway signs (Ed25519, its `/public_key` key) over a probe answer: the domain, the request's
    timestamp and hotkey, then the body bytes as sent, so an answer cannot be replayed to another request."""
    return f"{PROBE_DOMAIN}.{timestamp}.{hotkey}.".encode() + body

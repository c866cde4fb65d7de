"""The gateway's Ed25519 request-signing key, read from settings when used (never at import time)."""

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from subnet.signing import load_private_key, public_key_hex


def get_signing_key() -> Ed25519PrivateKey:
    """Return the private key of `BITRECS_SIGNING_KEY`; raise `ImproperlyConfigured` naming it if unusable."""
    value = getattr(settings, "BITRECS_SIGNING_KEY", "")
    try:
        return load_private_key(hex_key=value or "")
    except ValueError as exc:
        raise ImproperlyConfigured("BITRECS_SIGNING_KEY must be an Ed25519 private key as 64 hex characters") from exc


def get_public_key_hex() -> str:
    """Return the gateway's raw Ed25519 public key as 64 lowercase hex characters (what validators fetch)."""
    return public_key_hex(private_key=get_signing_key())

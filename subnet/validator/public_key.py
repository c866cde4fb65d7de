"""The gateway's Ed25519 public key as the validator gets it: `GET {gateway}/subnet/public_key`, cached."""

import logging
import threading
import time
from typing import Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from subnet.signing import load_public_key

logger = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 30.0
# After a signature mismatch the key is fetched again, at most this often (a rotated gateway key).
MIN_REFRESH_INTERVAL_SECONDS = 300.0
# While there is no key, a failed fetch is not retried sooner than this (requests fail fast meanwhile).
RETRY_INTERVAL_SECONDS = 10.0


class GatewayKeyUnavailable(Exception):
    """The gateway's public key could not be fetched or is not 64 hex characters."""


class PublicKeySource(Protocol):
    def get(self) -> Ed25519PublicKey:
        """Return the current key; raise `GatewayKeyUnavailable` if there is none."""

    def refresh(self) -> Ed25519PublicKey | None:
        """Fetch again if allowed now; return the key if it changed, else None."""


class StaticPublicKey:
    """A fixed key (tests, or a key configured by hand)."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    def get(self) -> Ed25519PublicKey:
        return self._key

    def refresh(self) -> Ed25519PublicKey | None:
        return None


class GatewayPublicKey:
    """Fetches the key on first use and keeps it; thread-safe. No auth, no redirects, as public validators."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._min_refresh_interval = min_refresh_interval
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._key: Ed25519PublicKey | None = None
        self._raw = ""
        self._fetched_at = float("-inf")

    def get(self) -> Ed25519PublicKey:
        with self._lock:
            if self._key is None:
                if time.monotonic() - self._fetched_at < RETRY_INTERVAL_SECONDS:
                    raise GatewayKeyUnavailable(f"no gateway public key from {self.url} yet (last fetch failed)")
                self._fetch()
            if self._key is None:  # _fetch raises instead; keeps the type checker informed
                raise GatewayKeyUnavailable(f"no gateway public key from {self.url}")
            return self._key

    def refresh(self) -> Ed25519PublicKey | None:
        with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh_interval:
                return None
            previous = self._raw
            try:
                self._fetch()
            except GatewayKeyUnavailable:
                logger.warning("subnet.gateway_key_refresh_failed", extra={"url": self.url})
                return None
            return self._key if self._raw != previous else None

    def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            response = self._session.get(self.url, timeout=self._timeout, allow_redirects=False)
            response.raise_for_status()
            raw = response.json()["public_key"]
            if not isinstance(raw, str):
                raise TypeError("public_key is not a string")
            key = load_public_key(hex_key=raw)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise GatewayKeyUnavailable(f"cannot get the gateway public key from {self.url}: {exc}") from exc
        if raw != self._raw:
            logger.info("subnet.gateway_key_loaded", extra={"url": self.url, "public_key": raw})
        self._key, self._raw = key, raw

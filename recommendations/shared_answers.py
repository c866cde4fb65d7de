"""The widget's rendered answers shared by every web process through Redis (RECS_SHARED_ANSWERS_URL).

A process that renders a non-personalised answer keeps it in its own cache (process_state.answers) and here, until
the same moment: RECS_ANSWER_CACHE_SECONDS after it was rendered. Another process that misses its own cache reads
it from here and keeps it for what is left of that time, so an answer is never served older than
RECS_ANSWER_CACHE_SECONDS, whichever process serves it, and each answer is rendered about once per
RECS_ANSWER_CACHE_SECONDS instead of once per process. A stored answer is its body, ETag and Cache-Control; the
store's CORS origins come from the serving process's own store config.

Redis failing never fails a request: the error is logged, the shared cache is skipped for a few seconds, and
answers are rendered as without it.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "bitrecs:answers:v1:"
RETRY_AFTER_ERROR_SECONDS = 5.0


@dataclass(frozen=True)
class SharedAnswer:
    """An answer as every process may serve it: until expires_at (Unix time), its body with this ETag."""

    expires_at: float
    etag: str
    cache_control: str
    content: bytes


class SharedAnswers:
    """A small Redis client for the shared answers: get, put and clear (short timeouts; errors count as misses)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self._paused_until = 0.0

    def get(self, key: tuple[str, ...]) -> SharedAnswer | None:
        """The key's answer while it is fresh, else None (also when Redis fails)."""
        if self._paused_until > time.monotonic():
            return None
        try:
            raw = self.client.get(_redis_key(key))
        except redis.RedisError as error:
            self._pause(error)
            return None
        if not isinstance(raw, bytes):
            return None
        header, _, content = raw.partition(b"\n")
        try:
            expires_at, etag, cache_control = json.loads(header)
        except ValueError:
            return None
        if float(expires_at) <= time.time():
            return None
        return SharedAnswer(
            expires_at=float(expires_at), etag=str(etag), cache_control=str(cache_control), content=content
        )

    def put(self, key: tuple[str, ...], answer: SharedAnswer) -> None:
        """Keep the answer until its expires_at (nothing when it has passed or Redis fails)."""
        milliseconds = int((answer.expires_at - time.time()) * 1000)
        if milliseconds <= 0 or self._paused_until > time.monotonic():
            return
        header = json.dumps([answer.expires_at, answer.etag, answer.cache_control]).encode()
        try:
            self.client.set(_redis_key(key), header + b"\n" + answer.content, px=milliseconds)
        except redis.RedisError as error:
            self._pause(error)

    def clear(self) -> None:
        """Forget every shared answer (tests; a deploy that changes the answer's shape changes KEY_PREFIX)."""
        self._delete_matching(KEY_PREFIX + "*")

    def forget_site(self, site_key: str) -> None:
        """Forget one store's shared answers (a settings change, so every worker renders the change at once)."""
        self._delete_matching(f"{KEY_PREFIX}{_site_part(site_key)}:*")

    def _delete_matching(self, pattern: str) -> None:
        try:
            keys = list(self.client.scan_iter(match=pattern, count=1000))
            if keys:
                self.client.delete(*keys)
        except redis.RedisError as error:
            self._pause(error)

    def _pause(self, error: Exception) -> None:
        self._paused_until = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        logger.warning("recommendations.shared_answers_failed", extra={"error": str(error)})


def _site_part(site_key: str) -> str:
    return hashlib.blake2b(site_key.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


def _redis_key(key: tuple[str, ...]) -> str:
    """The answer's Redis key: the store's part first (so one store's answers can be forgotten), then the rest."""
    digest = hashlib.blake2b("\x00".join(key).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}{_site_part(key[0])}:{digest}"


_clients: dict[str, SharedAnswers] = {}


def get_shared_answers() -> SharedAnswers | None:
    """The client for RECS_SHARED_ANSWERS_URL (one per process), or None when it is empty or "off"."""
    url = str(settings.RECS_SHARED_ANSWERS_URL or "")
    if not url or url.strip().lower() == "off":
        return None
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = SharedAnswers(url)
    return client

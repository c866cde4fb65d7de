"""Client for a Bitrecs validator's HTTP API (`POST /rec`, `GET /ping`, `GET /version`; BITRECS_PROTOCOL.md §1).

Every `/rec` attempt is signed on its own with a fresh `x-timestamp`, so no body is ever sent older than
a few seconds and none is resent once its signature could have expired (validators do no replay checks).
Only answers that mean "the validator did not process this request" are retried, after the wait the
validator asks for: 429 and the 500 "General" answer its rate limiter produces (§1.5). Timeouts and
other failures are never retried on the same validator: it serves `/rec` serially and may still be
working on the request.

Every validator (by base URL) has one gate per process, shared by all clients and threads: at most
`max_in_flight` requests at a time and a token bucket of `requests_per_minute` (public validators allow
120 per minute per client IP across all routes). A 429 closes the gate for every caller until
Retry-After has passed.

Answers come back as dataclasses; raw JSON does not leave this module.
"""

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bitrecs_site.http import error_text, retry_after_seconds, timeouts
from bitrecs_site.json_intake import JsonIntakeError, parse_json
from subnet.keys import get_signing_key
from subnet.signing import SIGNED_FIELDS, canonical_body, load_private_key, sign_ed25519, sign_localnet_hmac
from subnet.types import RequestBody, build_request_body

logger = logging.getLogger(__name__)

# What public validators ask for when they rate-limit (`Retry-After: 60`, §1.5).
DEFAULT_RETRY_AFTER_SECONDS: Final = 60.0
DEFAULT_TIMEOUT_SECONDS: Final = 20.0
DEFAULT_CALL_BUDGET_SECONDS: Final = 90.0
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_MAX_IN_FLIGHT: Final = 1
DEFAULT_REQUESTS_PER_MINUTE: Final = 100
PING_TIMEOUT_SECONDS: Final = 5.0
# A retry is only worth sending if at least this much of the call budget is left for the answer.
MIN_ATTEMPT_SECONDS: Final = 1.0


class Scheme(StrEnum):
    """How `x-signature` is made (§1.8)."""

    ED25519 = "ed25519"
    LOCALNET_HMAC = "localnet"


def scheme_for_network(network: str) -> Scheme:
    """Return the signature scheme a validator of that network checks: HMAC only for `localnet`."""
    return Scheme.LOCALNET_HMAC if network.strip().lower() == "localnet" else Scheme.ED25519


# ---------------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class RecommendedItem:
    """One recommendation as the validator passed it on from the winning miner."""

    sku: str
    name: str
    price: str
    reason: str
    # Keys the miner added beyond sku/name/price/reason (validators pass them through).
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecAnswer:
    """A `200` answer of `/rec` (§1.10)."""

    status_code: str
    status_text: str
    original_query: str
    results: tuple[RecommendedItem, ...]
    models_used: tuple[str, ...]
    miner_uid: str
    miner_hotkey: str
    created_at: str
    catalog_size: str
    response_text: str
    reasoning: str
    user: str
    latency_seconds: float
    attempts: int


@dataclass(frozen=True)
class PingAnswer:
    """A `200` answer of `/ping`: the validator's clock (`st`, or `ts` in 0.8.9) and the round trip time."""

    detail: str
    server_time: int
    latency_seconds: float


@dataclass(frozen=True)
class VersionAnswer:
    """A `200` answer of `/version`; the fields are empty when the validator reports no metadata."""

    version: str
    spec: int | None
    hotkey: str
    uid: int | None
    btversion: str
    head: str
    server_time: int


# ----------------------------------------------------------------------------------------------- errors


class ValidatorError(Exception):
    """A `/rec`, `/ping` or `/version` call that gave no usable answer.

    `status` is the HTTP status (None if there was no answer) and `detail` the validator's `detail`.
    `retry_elsewhere` says whether another validator may succeed with the same request.
    """

    retry_elsewhere = False

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ValidatorUnavailable(ValidatorError):
    """No connection to the validator."""

    retry_elsewhere = True


class ValidatorTimeout(ValidatorError):
    """No answer in time; the validator may still process the request, so it is not resent there."""

    retry_elsewhere = True


class ValidatorBusy(ValidatorError):
    """This process's in-flight or rate budget for the validator had no room within the call budget."""

    retry_elsewhere = True


class ValidatorRateLimited(ValidatorError):
    """429, or the 500 "General" answer of a public validator's rate limiter; back off `retry_after` seconds."""

    retry_elsewhere = True

    def __init__(self, message: str, *, status: int | None = None, detail: str = "", retry_after: float) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after


class ValidatorRejected(ValidatorError):
    """A 4xx answer: the request, key or signature is wrong; resending it anywhere gives the same answer."""


class AuthorizationMissing(ValidatorRejected):
    """400 `{"detail":"Authorization is missing"}`."""


class ApiKeyRejected(ValidatorRejected):
    """401 `{"detail":"Unauthorized"}`: wrong `BITRECS_API_KEY` for this validator."""


class SignatureRejected(ValidatorRejected):
    """401 `{"detail":"error","status_code":401}`: expired timestamp or bad signature (or wrong gateway key)."""


class IpNotAllowed(ValidatorRejected):
    """403 (or 400) text/plain from a mainnet validator's IP whitelist."""


class ContentTypeRejected(ValidatorRejected):
    """415 `{"detail":"Only JSON requests are allowed"}`."""


class RequestInvalid(ValidatorRejected):
    """422: a header or body key is missing or has the wrong type."""


class ContextTooLarge(ValidatorRejected):
    """400 `{"detail":"error - context too large"}`."""


class CatalogRejected(ValidatorRejected):
    """400 `error - invalid catalog - size` (or localnet's `error - invalid catalog` / `dupe threshold reached`)."""


class ValidatorFailed(ValidatorError):
    """500 `{"detail":"error"}`: the request failed validation, no active miners, or no usable miner answer."""

    retry_elsewhere = True


class ValidatorNoResults(ValidatorFailed):
    """500 `{"detail":"error - forward"}`: the winning answer had no results."""


class ValidatorInternalError(ValidatorFailed):
    """500 `{"detail":"Internal server error"}`, or any other unexpected 5xx."""


class InvalidAnswer(ValidatorError):
    """A 200 whose body is not the §1.10 shape."""

    retry_elsewhere = True


# ------------------------------------------------------------------------------------------------ gates


class _Gate:
    """In-flight slots and a token bucket for one validator, shared by every client in the process."""

    def __init__(self, *, max_in_flight: int, requests_per_minute: int) -> None:
        if max_in_flight < 1 or requests_per_minute < 1:
            raise ValueError("max_in_flight and requests_per_minute must be at least 1")
        self.max_in_flight = max_in_flight
        self.requests_per_minute = requests_per_minute
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._rate = requests_per_minute / 60.0
        # A burst of at most 10 s worth of requests.
        self._capacity = max(1.0, min(float(requests_per_minute), self._rate * 10))
        self._tokens = self._capacity
        self._refilled_at: float | None = None
        self._closed_until = 0.0

    def acquire_slot(self, *, timeout: float) -> bool:
        return self._slots.acquire(timeout=max(timeout, 0.0))

    def release_slot(self) -> None:
        self._slots.release()

    def take_token(self, *, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        """Take one request from the budget, waiting for a token or for a closed gate to reopen."""
        while True:
            with self._lock:
                now = clock()
                if self._refilled_at is not None:
                    self._tokens = min(self._capacity, self._tokens + (now - self._refilled_at) * self._rate)
                self._refilled_at = now
                if now < self._closed_until:
                    wait = self._closed_until - now
                elif self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                else:
                    wait = (1.0 - self._tokens) / self._rate
            if now + wait > deadline:
                raise ValidatorBusy(
                    f"no request budget for this validator within the call budget (next in {wait:.1f} s)"
                )
            sleep(wait)

    def close_until(self, until: float) -> None:
        with self._lock:
            self._closed_until = max(self._closed_until, until)


_gates: dict[str, _Gate] = {}
_gates_lock = threading.Lock()


def _gate_for(*, base_url: str, max_in_flight: int, requests_per_minute: int) -> _Gate:
    """Return the process-wide gate of a validator; the first client to name it sets its limits."""
    with _gates_lock:
        gate = _gates.get(base_url)
        if gate is None:
            gate = _gates[base_url] = _Gate(max_in_flight=max_in_flight, requests_per_minute=requests_per_minute)
        return gate


def reset_gates() -> None:
    """Forget every validator's gate (tests)."""
    with _gates_lock:
        _gates.clear()


# ----------------------------------------------------------------------------------------------- client


class ValidatorClient:
    """Signed calls to one validator's HTTP API. Thread-safe; share one per validator."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        network: str = "finney",
        signing_key: Ed25519PrivateKey | str | None = None,
        signed_fields: Sequence[str] = SIGNED_FIELDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        call_budget: float = DEFAULT_CALL_BUDGET_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Set up a client; an Ed25519 network without `signing_key` uses `BITRECS_SIGNING_KEY`.

        network: "localnet" signs with the public subnet's HMAC key ("change-me") and is only for talking
        to a public validator started that way; every other name ("local", "test", "finney", …) signs
        with Ed25519. signed_fields: `SIGNED_FIELDS_WITH_MINER_SIGNATURE` for validators of 0.8.9 and later.
        clock: wall-clock seconds, used for `x-timestamp` and for the call budget.
        """
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if not api_key:
            raise ValueError("api_key must not be empty")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.network = network
        self.scheme = scheme_for_network(network)
        self._api_key = api_key
        self._private_key: Ed25519PrivateKey | None = None
        if self.scheme is Scheme.ED25519:
            if signing_key is None:
                self._private_key = get_signing_key()
            elif isinstance(signing_key, str):
                self._private_key = load_private_key(hex_key=signing_key)
            else:
                self._private_key = signing_key
        self._signed_fields = tuple(signed_fields)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.call_budget = call_budget
        self.max_attempts = max_attempts
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._gate = _gate_for(
            base_url=self.base_url, max_in_flight=max_in_flight, requests_per_minute=requests_per_minute
        )

    def __repr__(self) -> str:
        return f"ValidatorClient({self.base_url!r}, network={self.network!r})"

    # -------------------------------------------------------------------------------------- /rec

    def recommend(
        self,
        *,
        query: str,
        context: str,
        site_key: str,
        num_results: int,
        created_at: str,
        user: str = "",
    ) -> RecAnswer:
        """Send one signed `/rec` request and return the validator's answer; raise a `ValidatorError` subclass.

        Raises `ValueError` (before sending anything) for values a validator would refuse.
        """
        body = build_request_body(
            query=query,
            context=context,
            site_key=site_key,
            num_results=num_results,
            created_at=created_at,
            user=user,
        )
        return self.send(body=body)

    def send(self, *, body: RequestBody) -> RecAnswer:
        """Sign and POST a prepared `/rec` body, backing off on rate limits within the call budget."""
        # The bytes sent are the canonical JSON of the ten fields: the validator re-serializes what it
        # parses, and this is the form that round-trips to the same values (and the same signed bytes).
        payload = canonical_body(body=body).encode("ascii")
        deadline = self._clock() + self.call_budget
        attempt = 0
        while True:
            attempt += 1
            response, latency = self._post_rec(body=body, payload=payload, deadline=deadline)
            try:
                return _parse_rec_answer(response=response, latency=latency, attempts=attempt)
            except ValidatorRateLimited as exc:
                now = self._clock()
                self._gate.close_until(now + exc.retry_after)
                if attempt >= self.max_attempts or now + exc.retry_after + MIN_ATTEMPT_SECONDS > deadline:
                    raise
                logger.info(
                    "subnet.validator_rate_limited",
                    extra={"validator": self.base_url, "retry_after": exc.retry_after, "attempt": attempt},
                )

    def _post_rec(self, *, body: RequestBody, payload: bytes, deadline: float) -> tuple[requests.Response, float]:
        if not self._gate.acquire_slot(timeout=deadline - self._clock()):
            raise ValidatorBusy("no free request slot for this validator within the call budget")
        try:
            self._gate.take_token(deadline=deadline, clock=self._clock, sleep=self._sleep)
            remaining = deadline - self._clock()
            if remaining < MIN_ATTEMPT_SECONDS:
                raise ValidatorBusy("the call budget ran out before the request could be sent")
            timestamp = str(int(self._clock()))
            headers = {
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "x-signature": self._sign(timestamp=timestamp, body=body),
                "x-timestamp": timestamp,
            }
            started = time.monotonic()
            try:
                response = self._session.post(
                    f"{self.base_url}/rec",
                    data=payload,
                    headers=headers,
                    timeout=timeouts(read=min(self.timeout, remaining), connect=self.connect_timeout),
                    allow_redirects=False,
                )
            except requests.Timeout as exc:
                raise ValidatorTimeout(f"no answer from {self.base_url} in time") from exc
            except requests.RequestException as exc:
                raise ValidatorUnavailable(f"cannot reach {self.base_url}: {type(exc).__name__}") from exc
            return response, time.monotonic() - started
        finally:
            self._gate.release_slot()

    def _sign(self, *, timestamp: str, body: RequestBody) -> str:
        if self.scheme is Scheme.LOCALNET_HMAC:
            return sign_localnet_hmac(timestamp=timestamp, body=body)
        if self._private_key is None:  # set in __init__ for every Ed25519 network
            raise RuntimeError("no Ed25519 signing key")
        return sign_ed25519(private_key=self._private_key, timestamp=timestamp, body=body, fields=self._signed_fields)

    # ------------------------------------------------------------------------------ /ping, /version

    def ping(self) -> PingAnswer:
        """Return the validator's `/ping` answer (a health check; no retry, uses the rate budget)."""
        data, latency = self._get_json(path="/ping")
        server_time = data.get("st", data.get("ts"))
        if data.get("detail") != "pong" or not isinstance(server_time, int | float):
            raise InvalidAnswer("the /ping answer is not {detail: pong, st: <int>}", status=200)
        return PingAnswer(detail="pong", server_time=int(server_time), latency_seconds=latency)

    def version(self) -> VersionAnswer:
        """Return the validator's `/version` answer."""
        data, _ = self._get_json(path="/version")
        meta = data.get("meta_data")
        server_time = data.get("st", data.get("ts"))
        if data.get("detail") != "version" or not isinstance(meta, dict) or not isinstance(server_time, int | float):
            raise InvalidAnswer("the /version answer is not {detail: version, meta_data: {...}, st: <int>}", status=200)
        spec, uid = meta.get("spec"), meta.get("uid")
        return VersionAnswer(
            version=str(meta.get("version") or ""),
            spec=spec if isinstance(spec, int) else None,
            hotkey=str(meta.get("hotkey") or ""),
            uid=uid if isinstance(uid, int) else None,
            btversion=str(meta.get("btversion") or ""),
            head=str(meta.get("head") or ""),
            server_time=int(server_time),
        )

    def _get_json(self, *, path: str) -> tuple[dict[str, Any], float]:
        deadline = self._clock() + PING_TIMEOUT_SECONDS
        self._gate.take_token(deadline=deadline, clock=self._clock, sleep=self._sleep)
        started = time.monotonic()
        try:
            response = self._session.get(
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
                timeout=timeouts(read=PING_TIMEOUT_SECONDS, connect=self.connect_timeout),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise ValidatorTimeout(f"no answer from {self.base_url}{path} in time") from exc
        except requests.RequestException as exc:
            raise ValidatorUnavailable(f"cannot reach {self.base_url}: {type(exc).__name__}") from exc
        latency = time.monotonic() - started
        if response.status_code != 200:
            error = _error_for(response)
            if isinstance(error, ValidatorRateLimited):
                self._gate.close_until(self._clock() + error.retry_after)
            raise error
        data = _json_object(response)
        if data is None:
            raise InvalidAnswer(f"{path} answered 200 without a JSON object", status=200)
        return data, latency


# ---------------------------------------------------------------------------------------------- parsing


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = parse_json(response.content)  # the one intake normaliser: what we store from it PostgreSQL accepts
    except JsonIntakeError:
        return None
    return data if isinstance(data, dict) else None


def _rate_limit_wait(response: requests.Response, data: Mapping[str, Any] | None) -> float:
    """Return Retry-After in seconds (header as seconds or HTTP date, else the body's retry_after, else 60)."""
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    if seconds is not None:
        return seconds
    value = data.get("retry_after") if data else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return DEFAULT_RETRY_AFTER_SECONDS


def _error_for(response: requests.Response) -> ValidatorError:
    """Map a non-200 answer to the error of the §1.11 catalogue."""
    status = response.status_code
    data = _json_object(response)
    raw_detail = data.get("detail") if data else None
    detail = raw_detail if isinstance(raw_detail, str) else ""
    if status == 429 or (status == 500 and detail == "General"):
        return ValidatorRateLimited(
            f"rate-limited ({status})", status=status, detail=detail, retry_after=_rate_limit_wait(response, data)
        )
    if status == 422:
        return RequestInvalid(f"request refused as invalid (422): {_summarize_422(raw_detail)}", status=status)
    if status == 415:
        return ContentTypeRejected("content type refused (415)", status=status, detail=detail)
    if status == 403 or (status == 400 and data is None and "Invalid IP" in response.text):
        reason = error_text(response, fields=("detail",), limit=200)
        return IpNotAllowed(f"client IP refused ({status})", status=status, detail=reason)
    if status == 400 and detail == "Authorization is missing":
        return AuthorizationMissing("no Authorization header (400)", status=status, detail=detail)
    if status == 401 and detail == "Unauthorized":
        return ApiKeyRejected("API key refused (401)", status=status, detail=detail)
    if status == 401:
        return SignatureRejected("signature or timestamp refused (401)", status=status, detail=detail)
    if status == 400 and detail == "error - context too large":
        return ContextTooLarge("context too large (400)", status=status, detail=detail)
    if status == 400 and (detail.startswith("error - invalid catalog") or detail == "error - dupe threshold reached"):
        return CatalogRejected(f"catalog refused (400): {detail}", status=status, detail=detail)
    if status == 500 and detail == "error - forward":
        return ValidatorNoResults("the validator's winning answer had no results (500)", status=status, detail=detail)
    if status == 500 and detail == "error":
        return ValidatorFailed("the validator could not answer (500 error)", status=status, detail=detail)
    if 400 <= status < 500:
        return ValidatorRejected(f"request refused ({status}): {detail or 'no detail'}", status=status, detail=detail)
    return ValidatorInternalError(f"validator error ({status}): {detail or 'no detail'}", status=status, detail=detail)


def _summarize_422(detail: object) -> str:
    if not isinstance(detail, list):
        return "no detail"
    parts = []
    for item in detail[:5]:
        if isinstance(item, dict):
            loc = ".".join(str(part) for part in item.get("loc", []))
            parts.append(f"{loc}: {item.get('msg', '')}".strip())
    return "; ".join(parts) or "no detail"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidAnswer(f"expected a string, got {type(value).__name__}", status=200)
    return str(value)


def _parse_rec_answer(*, response: requests.Response, latency: float, attempts: int) -> RecAnswer:
    """Return the §1.10 answer of a 200, or raise the error for any other answer."""
    if response.status_code != 200:
        raise _error_for(response)
    data = _json_object(response)
    if data is None:
        raise InvalidAnswer("/rec answered 200 without a JSON object", status=200)
    status_code = _text(data.get("status_code"))
    if status_code != "200":
        raise InvalidAnswer(f"/rec answered 200 with status_code {status_code!r}", status=200)
    raw_results = data.get("results")
    if not isinstance(raw_results, list):
        raise InvalidAnswer("/rec answer has no results list", status=200)
    results = []
    for index, item in enumerate(raw_results):
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            raise InvalidAnswer(f"results[{index}] is not an object with a string sku", status=200)
        extra = {key: value for key, value in item.items() if key not in {"sku", "name", "price", "reason"}}
        results.append(
            RecommendedItem(
                sku=item["sku"],
                name=_text(item.get("name")),
                price=_text(item.get("price")),
                reason=_text(item.get("reason")),
                extra=extra,
            )
        )
    models_used = data.get("models_used") or []
    if not isinstance(models_used, list):
        raise InvalidAnswer("/rec answer has a models_used that is not a list", status=200)
    return RecAnswer(
        status_code=status_code,
        status_text=_text(data.get("status_text")),
        original_query=_text(data.get("original_query")),
        results=tuple(results),
        models_used=tuple(_text(model) for model in models_used),
        miner_uid=_text(data.get("miner_uid")),
        miner_hotkey=_text(data.get("miner_hotkey")),
        created_at=_text(data.get("created_at")),
        catalog_size=_text(data.get("catalog_size")),
        response_text=_text(data.get("response_text")),
        reasoning=_text(data.get("reasoning")),
        user=_text(data.get("user")),
        latency_seconds=latency,
        attempts=attempts,
    )

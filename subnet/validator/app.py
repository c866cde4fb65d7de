"""The reference validator's HTTP API: `/rec`, `/ping`, `/version`, wire-compatible with public validators (§1).

Layers, outermost first, as in the public `ApiServer`: the "General" 500 for anything escaping the
front door; per-client-IP rate limit (120/min) and, on mainnet, the IP whitelist; the API key
(`Authorization`, bearer or bare); content type and size; gzip; FastAPI's 422 validation; the route.

Differences from the public validator, all on the side of refusing less work or answering better:
* rate limiting answers the intended `429 {"detail":"Rate limit exceeded",...}` with `Retry-After`,
  not the "General" 500 the public limiter produces;
* a body over `max_body_bytes` (or a context over `max_context_chars`) gets `400 error - context too
  large` before any parsing, instead of a token count (no tokenizer download at run time); a POST
  without Content-Length gets 411;
* timestamps more than 60 s in the future are refused (401) and a malformed timestamp or signature
  hex gives the public 500 "error";
* Ed25519 signatures over either the 10 signed fields or the 11 of 0.8.9 (`miner_signature`) verify;
* requests are served concurrently (a thread pool), not one at a time;
* a request failing the public `validate_br_request` checks gets 500 "error" at once, with no stall;
* miners are scored on the quality of their answers to ground-truth probes and on conversions, validity
  and the 3 s latency budget gating it (`subnet.validator.scoring`); probes from the gateway are mixed into
  the traffic (`subnet.validator.probes`), and the answer returned is the best-scored miner's, not a random one.
"""

import hmac
import importlib.metadata
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Header
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.requests import Request
from starlette.responses import Response

from bitrecs_site.json_intake import JsonIntakeError, parse_json
from subnet.protocol import BitrecsRequest, request_for_miners
from subnet.signing import (
    SIGNED_FIELDS,
    SIGNED_FIELDS_WITH_MINER_SIGNATURE,
    SignatureError,
    SignatureMalformed,
    SignatureMismatch,
    verify_ed25519,
    verify_localnet_hmac,
)
from subnet.types import MAX_NUM_RESULTS, MAX_QUERY_LENGTH, MIN_NUM_RESULTS, MIN_QUERY_LENGTH
from subnet.validator.catalog import (
    CATALOG_DUPE_THRESHOLD,
    MAX_CATALOG_SIZE,
    MIN_CATALOG_SIZE,
    catalog_for_network,
    duplicate_count,
    load_items,
)
from subnet.validator.keeper import ScoreKeeper
from subnet.validator.miners import MinerPool
from subnet.validator.public_key import GatewayKeyUnavailable, PublicKeySource
from subnet.validator.scoring import pick_winner, score_answers

logger = logging.getLogger(__name__)

NETWORKS: Final = ("localnet", "testnet", "mainnet")
# The public release whose wire contract this validator implements (§0, §9).
WIRE_VERSION: Final = "0.8.3"
WIRE_SPEC_VERSION: Final = 83
# The public validator's MAX_CONTEXT_TEXT_LENGTH, checked on the rewritten context.
MAX_CONTEXT_TEXT_LENGTH: Final = 1_000_000
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
DEFAULT_MAX_CONTEXT_CHARS: Final = 2_000_000
RATE_LIMIT_WINDOW_SECONDS: Final = 60
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class ValidatorMetadata:
    """What `/version` reports under `meta_data` (the public `LocalMetadata.to_dict()`)."""

    uid: int
    hotkey: str
    coldkey: str = ""
    head: str = ""
    remote_head: str = ""
    btversion: str = field(default_factory=lambda: importlib.metadata.version("bittensor"))
    version: str = WIRE_VERSION
    spec: int = WIRE_SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            key: data[key]
            for key in ("head", "remote_head", "btversion", "uid", "coldkey", "hotkey", "version", "spec")
        }


@dataclass(frozen=True)
class ValidatorConfig:
    api_key: str
    network: str = "testnet"
    whitelist: tuple[str, ...] = ()
    rate_limit_per_minute: int = 120
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_context_chars: int = DEFAULT_MAX_CONTEXT_CHARS
    # Resolve the client IP from X-Real-IP / X-Forwarded-For (spoofable; only behind a trusted proxy).
    trust_proxy_headers: bool = False
    metadata: ValidatorMetadata | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("the validator needs an API key")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}")
        if self.network == "mainnet":
            if not self.whitelist:
                raise ValueError("a mainnet validator needs a whitelist of client IPs")
            for entry in self.whitelist:
                ipaddress.ip_address(entry)  # single IPs only, as the public validator; raises ValueError


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "status_code": status}, status_code=status)


class _FixedWindowLimiter:
    """Requests per client IP per minute, in memory, one fixed window for all clients (as slowapi's default)."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit(self, key: str) -> bool:
        window = int(self._clock() // RATE_LIMIT_WINDOW_SECONDS)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key] <= self.limit


def create_app(
    *,
    config: ValidatorConfig,
    miner_pool: MinerPool,
    public_key: PublicKeySource | None,
    keeper: ScoreKeeper | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Return the validator's ASGI app; Ed25519 networks (testnet, mainnet) need the gateway's key source.

    keeper: where answers' scores go (and weights, when it has a chain); by default scores are kept in
    memory only. clock: the rate limiter's clock (its one-minute windows).
    """
    keeper = keeper or ScoreKeeper()
    if config.network != "localnet" and public_key is None:
        raise ValueError(f"a {config.network} validator verifies Ed25519 signatures and needs the gateway key")
    app = FastAPI(title="Bitrecs validator", version=WIRE_VERSION)
    limiter = _FixedWindowLimiter(config.rate_limit_per_minute, clock)
    whitelist = frozenset(str(ipaddress.ip_address(entry)) for entry in config.whitelist)

    async def general_error(request: Request, exc: Exception) -> Response:
        logger.exception("subnet.validator_general_error", exc_info=exc)
        return JSONResponse(
            {"status_code": 500, "message": "Internal server error - General", "detail": "General", "data": None},
            status_code=500,
        )

    app.add_exception_handler(Exception, general_error)
    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=5)

    def client_ip(request: Request) -> str:
        if config.trust_proxy_headers:
            real_ip = request.headers.get("x-real-ip")
            if real_ip:
                return real_ip.strip()
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else ""

    @app.middleware("http")
    async def front_door(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        ip = client_ip(request)
        if not limiter.hit(ip):
            return JSONResponse(
                {"detail": "Rate limit exceeded", "status_code": 429, "retry_after": RATE_LIMIT_WINDOW_SECONDS},
                status_code=429,
                headers={"Retry-After": str(RATE_LIMIT_WINDOW_SECONDS)},
            )
        if config.network == "mainnet":
            try:
                normalized = str(ipaddress.ip_address(ip))
            except ValueError:
                return PlainTextResponse("Invalid IP address", status_code=400)
            if normalized not in whitelist:
                return PlainTextResponse("You do not have permission to access this resource", status_code=403)
        if request.url.path != "/favicon.ico":
            authorization = request.headers.get("authorization")
            if not authorization:
                return JSONResponse({"detail": "Authorization is missing"}, status_code=400)
            key = authorization.split(" ")[1] if authorization.startswith("Bearer ") else authorization
            if not hmac.compare_digest(key.encode(), config.api_key.encode()):
                return JSONResponse({"detail": "Unauthorized"}, status_code=401)
        if request.method in _BODY_METHODS:
            if request.headers.get("content-type", "").lower() != "application/json":
                return JSONResponse({"detail": "Only JSON requests are allowed"}, status_code=415)
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "Length Required"}, status_code=411)
            if not length.isdigit() or int(length) > config.max_body_bytes:
                return _error(400, "error - context too large")
            try:  # the one intake normaliser's refusals (NaN, too deep, not UTF-8) as FastAPI's own 422, not a 500
                parse_json(await request.body(), max_bytes=config.max_body_bytes)
            except JsonIntakeError as exc:
                if isinstance(exc.__cause__, json.JSONDecodeError):
                    return await call_next(request)  # a syntax error: FastAPI's own 422 names its position
                return JSONResponse(
                    {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": exc.message, "input": {}}]},
                    status_code=422,
                )
        try:
            return await call_next(request)
        except Exception:
            logger.exception("subnet.validator_route_failed", extra={"path": request.url.path})
            return JSONResponse({"detail": "Internal server error"}, status_code=500)

    @app.get("/ping")
    def ping() -> dict[str, Any]:
        return {"detail": "pong", "st": int(time.time())}

    @app.get("/version")
    def version() -> dict[str, Any]:
        meta = config.metadata.to_dict() if config.metadata else {}
        return {"detail": "version", "meta_data": meta, "st": int(time.time())}

    @app.post("/rec")
    def rec(request: BitrecsRequest, x_signature: str = Header(...), x_timestamp: str = Header(...)) -> Response:
        started = time.monotonic()
        body = request.to_request_body()
        try:
            _verify(config=config, public_key=public_key, signature=x_signature, timestamp=x_timestamp, body=body)
        except (SignatureMalformed, GatewayKeyUnavailable) as exc:
            logger.info("subnet.validator_signature_unusable", extra={"reason": str(exc)})
            return _error(500, "error")
        except SignatureError as exc:
            logger.info("subnet.validator_signature_refused", extra={"reason": str(exc)})
            return _error(401, "error")

        context = request.context
        if context is None:
            return _error(500, "error")
        if len(context) > config.max_context_chars:
            return _error(400, "error - context too large")
        catalog, forwarded_context = catalog_for_network(network=config.network, context=context)
        if config.network == "localnet":
            size = len(load_items(context))
            if not MIN_CATALOG_SIZE <= size <= MAX_CATALOG_SIZE:
                return _error(400, "error - invalid catalog")
            if duplicate_count(item.get("sku") for item in load_items(context) if isinstance(item, dict)) > (
                CATALOG_DUPE_THRESHOLD * size
            ):
                return _error(400, "error - dupe threshold reached")
        else:
            size = len(catalog)
            if not MIN_CATALOG_SIZE <= size <= MAX_CATALOG_SIZE:
                return _error(400, "error - invalid catalog - size")

        if not _passes_request_checks(request=request, context=forwarded_context):
            return _error(500, "error")
        forwarded = request_for_miners(request=request.model_copy(update={"context": forwarded_context}))
        answers = miner_pool.query(forwarded)
        if answers and all(answer.error for answer in answers):
            answers = miner_pool.query(forwarded)  # as the public validator: one more round when nobody answered
        rewards = score_answers(
            answers=answers,
            request=request,
            catalog=catalog,
            network=config.network,
            actions=keeper.action_totals(),
        )
        keeper.record(rewards)
        best = pick_winner(rewards, scores=keeper.scores())
        if best is None or best.answer is None:
            answered = [answer for answer in answers if not answer.error]
            if answered and all(not answer.results for answer in answered):
                return _error(500, "error - forward")
            for reward in rewards:
                logger.info("subnet.validator_answer_refused", extra={"miner_uid": reward.uid, "why": reward.problem})
            return _error(500, "error")
        keeper.served(best)
        winner, results = best.answer, list(best.results)
        took = time.monotonic() - started
        network_text = "" if config.network == "localnet" else f"Subnet {config.network} "
        return JSONResponse(
            {
                "user": "",
                "original_query": winner.query,
                "status_code": "200",
                "status_text": "OK",
                "response_text": f"Bitrecs {network_text}Took {took:.2f} seconds to process this request",
                "created_at": winner.created_at,
                "results": results,
                "models_used": list(winner.models_used),
                "catalog_size": str(size),
                "miner_uid": str(winner.uid),
                "miner_hotkey": winner.hotkey,
                "reasoning": f"Bitrecs AI - {config.network}",
            }
        )

    return app


def _verify(
    *,
    config: ValidatorConfig,
    public_key: PublicKeySource | None,
    signature: str,
    timestamp: str,
    body: Any,
) -> None:
    if config.network == "localnet":
        verify_localnet_hmac(signature=signature, timestamp=timestamp, body=body)
        return
    if public_key is None:
        raise GatewayKeyUnavailable("no gateway key source")
    key = public_key.get()
    try:
        _verify_ed25519_any(key=key, signature=signature, timestamp=timestamp, body=body)
    except SignatureMismatch:
        rotated = public_key.refresh()
        if rotated is None:
            raise
        _verify_ed25519_any(key=rotated, signature=signature, timestamp=timestamp, body=body)


def _verify_ed25519_any(*, key: Any, signature: str, timestamp: str, body: Any) -> None:
    """Accept a signature over the 10 fields of 0.8.2-0.8.4 or the 11 of 0.8.9 (null `miner_signature`)."""
    try:
        verify_ed25519(public_key=key, signature=signature, timestamp=timestamp, body=body, fields=SIGNED_FIELDS)
    except SignatureMismatch:
        verify_ed25519(
            public_key=key,
            signature=signature,
            timestamp=timestamp,
            body=body,
            fields=SIGNED_FIELDS_WITH_MINER_SIGNATURE,
        )


def _passes_request_checks(*, request: BitrecsRequest, context: str) -> bool:
    """The public validator's `validate_br_request` (§1.9 step 6)."""
    return (
        isinstance(request.query, str)
        and MIN_QUERY_LENGTH <= len(request.query) <= MAX_QUERY_LENGTH
        and request.results == []
        and request.models_used == []
        and bool(context)
        and len(context) <= MAX_CONTEXT_TEXT_LENGTH
        and bool(request.site_key)
        and MIN_NUM_RESULTS <= request.num_results <= MAX_NUM_RESULTS
    )


class ValidatorServer:
    """Runs an app under uvicorn, either in a background thread (tests, embedding) or in the foreground."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.host = host
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
        # every answer on a kept-alive connection waited 40 ms for a delayed ACK (Nagle).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off"))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (signal handlers only in the main thread)."""
        self._run()

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self, *, timeout: float = 10.0) -> None:
        """Serve in a daemon thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self._run, name=f"validator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the validator server did not start")
            time.sleep(0.01)

    def stop(self, *, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()

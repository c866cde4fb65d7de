"""Fixtures of the subnet tests: the reference validator on a free loopback port, and a scripted stub server."""

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from subnet.client import reset_gates
from subnet.signing import load_private_key

DATA = Path(__file__).parent / "data"
# RFC 8032 test key 1: the key of the spec's test vectors (BITRECS_PROTOCOL.md §1.8).
RFC_PRIVATE_KEY_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
API_KEY = "validator-key"


@pytest.fixture(autouse=True)
def _fresh_gates() -> Iterator[None]:
    """Fresh per-validator rate gates, and no validator health or metagraph remembered from another test."""
    reset_gates()
    cache.clear()
    yield
    reset_gates()


@pytest.fixture(autouse=True)
def _public_body_hash() -> Iterator[None]:
    """Undo `sign_request_bodies(True)` (run_validator/run_miner --local-chain set it on the shared class)."""
    yield
    protocol = sys.modules.get("subnet.protocol")
    if protocol is not None:
        protocol.sign_request_bodies(False)


@pytest.fixture
def private_key():
    return load_private_key(hex_key=RFC_PRIVATE_KEY_HEX)


@pytest.fixture
def luma_body() -> dict:
    return json.loads((DATA / "rec_request_luma.json").read_text(encoding="utf-8"))


@pytest.fixture
def start_validator(private_key) -> Iterator[Callable[..., Any]]:
    """Start the reference validator app under uvicorn in a thread; returns the server (`.url`)."""
    # Imported here: subnet.validator imports bittensor (through subnet.protocol).
    from subnet.validator.app import ValidatorConfig, ValidatorServer, create_app
    from subnet.validator.miners import offline_pool
    from subnet.validator.public_key import StaticPublicKey

    servers = []

    def start(*, miner_pool=None, public_key=None, clock=time.time, keeper=None, **config: Any):
        config.setdefault("api_key", API_KEY)
        app = create_app(
            config=ValidatorConfig(**config),
            miner_pool=miner_pool or offline_pool(count=2),
            public_key=public_key or StaticPublicKey(private_key.public_key()),
            keeper=keeper,
            clock=clock,
        )
        server = ValidatorServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@dataclass
class StubReply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class StubServer:
    """Answers each request with the next scripted reply (the last one repeats); records what it received."""

    def __init__(self) -> None:
        self.replies: list[StubReply] = []
        self.received: list[ReceivedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.received.append(
                        ReceivedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    index = min(len(stub.received), len(stub.replies)) - 1
                    reply = stub.replies[index] if stub.replies else StubReply()
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    time.sleep(reply.delay)
                    payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


def rec_success(skus: list[str], *, query: str = "WT02-M-Green") -> dict[str, Any]:
    """A §1.10 success body recommending these SKUs."""
    return {
        "user": "",
        "original_query": query,
        "status_code": "200",
        "status_text": "OK",
        "response_text": "Bitrecs Subnet testnet Took 0.10 seconds to process this request",
        "created_at": "2025-06-28T20:00:02",
        "results": [{"sku": sku, "name": f"Name {sku}", "price": "10", "reason": "Goes well"} for sku in skus],
        "models_used": ["google/gemini-2.0-flash-lite-001"],
        "catalog_size": "8",
        "miner_uid": "42",
        "miner_hotkey": "5F-hotkey",
        "reasoning": "Bitrecs AI - testnet",
    }


class FakeClock:
    """Wall-clock seconds that only move when `sleep` is called; records the sleeps."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def miner_synapse(luma_body: dict, num_results: int = 3) -> Any:
    """A gateway's request (null miner fields) made safe for a dendrite, as the validator forwards it."""
    from subnet.protocol import BitrecsRequest, request_for_miners  # bittensor, only where a test needs it

    request = BitrecsRequest(
        created_at="2025-06-28T20:00:00",
        user="",
        num_results=num_results,
        query=luma_body["query"],
        context=luma_body["context"],
        site_key="shop.example.com",
        results=[],
        models_used=[],
        miner_uid=None,
        miner_hotkey=None,
    )
    return request_for_miners(request=request)

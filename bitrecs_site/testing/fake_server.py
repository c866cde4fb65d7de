"""The one HTTP server every platform fake runs on: a real socket on a free port of 127.0.0.1, served in threads.

A fake is a function (usually a bound method) from a `FakeRequest` to a `FakeResponse`; `FakeServer` runs it:

    server = FakeServer(fake.handle, name="fake-shop").start()   # or: with FakeServer(...) as server:
    requests.get(server.base_url + "/…")
    server.stop()                                                 # later calls: connection refused

What every fake gets from it, the same way:
- HTTP/1.1 with keep-alive (a client's session reuses its connection; `connections` counts those accepted), and
  TCP_NODELAY on every connection: headers and body go out in separate writes, and without it a kept-alive client
  waits 40 ms for a delayed ACK on every answer.
- Content-Length on every answer, or HTTP chunks when the body is an iterable of byte strings (streamed as given).
- A client that gave up (a timeout test) is not an error; nothing is logged.
- `stop()` also closes the connections clients keep alive, so a stopped fake is a store that is down.
- Optional TLS: pass an `ssl.SSLContext` holding the server's certificate.
"""

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit


@dataclass(frozen=True)
class FakeRequest:
    """One HTTP request as the fake sees it."""

    method: str
    target: str  # the request target as sent: path, then ?query
    headers: Message  # .get() is case-insensitive
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query


@dataclass(frozen=True)
class FakeResponse:
    """One HTTP answer; an iterable body is sent in HTTP chunks, one per item."""

    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[FakeRequest], FakeResponse]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow answer must not hold up teardown

    def __init__(self, handler: Handler, server_header: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.handler = handler
        self.server_header = server_header
        self.accepted = 0
        self.open_connections: set[Any] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.accepted += 1
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see the module docstring: the 40 ms delayed-ACK wait
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def version_string(self) -> str:
        return self.server.server_header or super().version_string()

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        response = self.server.handler(
            FakeRequest(method=self.command, target=self.path, headers=self.headers, body=body)
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first (timeouts)
            self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _send(self, response: FakeResponse) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if isinstance(response.body, bytes | bytearray):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.body:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class FakeServer:
    """Serves `handler` on a free port of 127.0.0.1 in a background thread until `stop()`."""

    def __init__(
        self,
        handler: Handler,
        *,
        name: str = "fake-server",
        server_header: str | None = None,
        tls: ssl.SSLContext | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self.httpd = _HTTPServer(handler, server_header)  # the socketserver itself, for code that counts on it
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self.base_url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )
        self._stopped = False

    @property
    def connections(self) -> int:
        """How many TCP connections the server accepted (connection reuse shows as few)."""
        return self.httpd.accepted

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection: later calls are refused, like a store that is down."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.close_open_connections()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The fake store on a FakeServer: its lifecycle (optionally over https) and how a request reaches its parts."""

import ipaddress
import json
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bitrecs_site.testing.fake_server import FakeRequest, FakeResponse, FakeServer
from bitrecs_site.testing.fake_woocommerce.rest import RawBody, StoreRest

HTML = "text/html; charset=UTF-8"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeWooCommerce(StoreRest):
    """A fake WooCommerce store on a free port of 127.0.0.1."""

    def __init__(self, *, require_https_callback: bool = True, tls: bool = False) -> None:
        super().__init__(require_https_callback=require_https_callback, tls=tls)
        self.ca_bundle: Path | None = None
        self.plain_permalinks = False
        self.redirect_to: str | None = None
        self.requests: list[RecordedRequest] = []
        self.record_requests = True
        self._http: FakeServer | None = None

    @property
    def _server(self) -> Any:
        """The running socketserver (bench/sync_bench.py counts its connections), None when stopped."""
        return self._http.httpd if self._http is not None else None

    @property
    def connections(self) -> int:
        """How many TCP connections the store accepted since it started (connection reuse shows as few)."""
        return self._http.connections if self._http is not None else 0

    # Lifecycle.

    def start(self) -> "FakeWooCommerce":
        """Serve on a free port of 127.0.0.1 (https with a fresh self-signed certificate when tls)."""
        context = None
        if self.tls:
            self.ca_bundle = _write_self_signed_certificate()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca_bundle, self.ca_bundle.with_suffix(".key"))
        self._http = FakeServer(
            self.handle, name="fake-woocommerce", server_header="Apache", tls=context, poll_interval=0.02
        ).start()
        self.base_url = self._http.base_url
        return self

    def stop(self) -> None:
        """Shut the server down: later calls get a refused connection, like a store that is down."""
        if self._http is not None:
            self._http.stop()
            self._http = None
        if self.ca_bundle is not None:
            shutil.rmtree(self.ca_bundle.parent, ignore_errors=True)
            self.ca_bundle = None

    # Request handling (called from the server's threads).

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Serve one request: the authorize screen, the wc/v3 REST API, or WordPress's answers around them."""
        parts = urlsplit(request.target)
        # PHP's $_GET: a repeated name keeps its last value.
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._record(request, parts.path, query)
        path = parts.path.rstrip("/")
        if path == "/wc-auth/v1/authorize" and request.method == "GET":
            status, page = self._authorize_page(query)
            return FakeResponse(status, page.encode(), HTML)
        if path.startswith("/wp-json/") and self.redirect_to:
            return FakeResponse(301, b"", HTML, {"Location": self.redirect_to + request.target})
        if path.startswith("/wp-json/") and self.plain_permalinks:
            return FakeResponse(200, b"<!doctype html><title>My Shop</title><h1>Welcome</h1>", HTML)
        if path.startswith("/wp-json/wc/v3/"):
            status, body, headers = self._rest(request, path.removeprefix("/wp-json/wc/v3/"), query)
            payload = body.content if isinstance(body, RawBody) else json.dumps(body).encode()
            return FakeResponse(status, payload, "application/json; charset=UTF-8", headers)
        return FakeResponse(404, b"<h1>Page not found</h1>", HTML)

    def _record(self, request: FakeRequest, path: str, query: dict[str, str]) -> None:
        if not self.record_requests:
            return
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    query=query,
                    headers={name.lower(): value for name, value in request.headers.items()},
                )
            )


def _write_self_signed_certificate() -> Path:
    """A throwaway certificate + key for 127.0.0.1 (PEM files in a temp dir); returns the certificate's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-woocommerce")])
    now = datetime.now(tz=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="fake-woocommerce-"))
    cert_path = directory / "cert.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    cert_path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path

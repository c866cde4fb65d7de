"""The fake-server base every platform fake runs on: keep-alive with TCP_NODELAY, bodies, and a stop that sticks."""

import socket

import pytest
import requests

from bitrecs_site.testing.fake_server import FakeRequest, FakeResponse, FakeServer


def echo(request: FakeRequest) -> FakeResponse:
    if request.path == "/chunks":
        return FakeResponse(200, iter([b"first,", b"", b"second"]), "text/plain")
    body = f"{request.method} {request.target} {request.headers.get('x-probe')} {request.body.decode()}"
    return FakeResponse(201, body.encode(), "text/plain", {"X-Fake": "yes"})


def test_a_session_keeps_one_connection_alive_with_tcp_nodelay() -> None:
    with FakeServer(echo) as server, requests.Session() as session:
        answers = [session.post(f"{server.base_url}/a?b=1", data=b"hi", headers={"X-Probe": str(n)}) for n in range(3)]
        (connection,) = server.httpd.open_connections
        nodelay = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    assert [(a.status_code, a.text, a.headers["X-Fake"]) for a in answers] == [
        (201, f"POST /a?b=1 {n} hi", "yes") for n in range(3)
    ]
    assert answers[0].headers["Content-Length"] == str(len("POST /a?b=1 0 hi"))
    assert server.connections == 1
    assert nodelay != 0


def test_an_iterable_body_is_sent_in_chunks() -> None:
    with FakeServer(echo) as server:
        answer = requests.get(f"{server.base_url}/chunks", timeout=5)

    assert (answer.status_code, answer.headers["Transfer-Encoding"], answer.text) == (200, "chunked", "first,second")


def test_stop_closes_kept_alive_connections_so_the_store_is_down() -> None:
    server = FakeServer(echo, server_header="Apache").start()
    with requests.Session() as session:
        first = session.get(f"{server.base_url}/x", timeout=5)
        server.stop()

        with pytest.raises(requests.ConnectionError):
            session.get(f"{server.base_url}/x", timeout=5)
    server.stop()  # stopping twice is harmless

    assert (first.status_code, first.headers["Server"]) == (201, "Apache")

"""The connection cap (503 beyond it, service back once below) and failed accepts, logged
once per episode: the gate's handler on a loop, then ``optimist serve`` over raw sockets."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from optimist.service.gate import Gate, refusal_response
from tests.support.servers import Server, optimist_serving, read_until_closed, wait_until

CAP = 20


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of the test's own, never run."""
    fresh = asyncio.new_event_loop()
    try:
        yield fresh
    finally:
        fresh.close()


def emfile(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio reports when accept() finds no file descriptor left."""
    loop.call_exception_handler(
        {
            "message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many open files"),
        }
    )


def test_failed_accepts_are_logged_once_as_they_begin(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """A thousand EMFILE accepts in a row make one WARNING line."""
    Gate.of(loop)
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        for _ in range(1000):
            emfile(loop)
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "Too many open files" in caplog.records[0].getMessage()


def test_the_end_of_failed_accepts_is_logged_with_their_count(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """The first accept that works again ends the episode with one INFO line and the count."""
    gate = Gate.of(loop)
    for _ in range(3):
        emfile(loop)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        gate.accepted()
        gate.accepted()
    assert [record.getMessage() for record in caplog.records] == [
        "Accepting connections again, after 3 failed attempts"
    ]


def test_other_loop_errors_reach_the_previous_handler(loop: asyncio.AbstractEventLoop) -> None:
    """The gate passes on every context that is not an exhausted accept."""
    seen: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    Gate.of(loop)
    loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})
    assert [context["message"] for context in seen] == ["something else"]


def test_one_gate_per_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Asking twice gives the gate installed the first time."""
    assert Gate.of(loop) is Gate.of(loop)


def test_the_refusal_is_a_complete_503_problem_with_retry_after() -> None:
    """The refusal's bytes are a whole response: status, Retry-After, close, problem body."""
    head, _, body = refusal_response(7).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert fields["retry-after"] == "1"
    assert fields["connection"] == "close"
    assert fields["content-type"] == "application/problem+json"
    assert int(fields["content-length"]) == len(body)
    assert b'"status":503' in body


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` with a cap of 20 connections and patient timeouts."""
    with optimist_serving(
        tmp_path_factory.mktemp("capped"),
        *("--max-connections", str(CAP), "--idle-timeout", "600", "--head-timeout", "600"),
    ) as server:
        yield server


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def status_line(connection: socket.socket) -> bytes:
    """The status line of the response the server sends on ``connection``."""
    received = b""
    while b"\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received.partition(b"\r\n")[0]


def held(server: Server, stack: ExitStack) -> socket.socket:
    """A connection the server has accepted and answered once, then kept open and idle."""
    while True:
        connection = stack.enter_context(connect(server))
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        status = status_line(connection)
        if status == b"HTTP/1.1 200 OK":
            return connection
        # The server had not yet seen a closed connection go, and still counted it.
        assert status == b"HTTP/1.1 503 Service Unavailable", status


@pytest.mark.slow
def test_a_connection_beyond_the_cap_gets_503_with_retry_after(capped: Server) -> None:
    """With the cap's connections open, one more is answered 503 and closed."""
    with ExitStack() as stack:
        for _ in range(CAP):
            held(capped, stack)
        with connect(capped) as extra:
            answer = read_until_closed(extra)
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 1" in answer.lower()


@pytest.mark.slow
def test_the_service_answers_again_once_connections_close(capped: Server) -> None:
    """After the held connections go, new requests are served again."""
    with ExitStack() as stack:
        for _ in range(CAP):
            held(capped, stack)
        assert httpx.get(f"{capped.url}/healthz", timeout=60).status_code == 503
    wait_until(lambda: httpx.get(f"{capped.url}/healthz", timeout=60).status_code == 200)


@pytest.mark.slow
def test_a_full_spell_is_logged_once_however_many_are_refused(capped: Server) -> None:
    """Ten refusals in one spell at the cap make one WARNING and one INFO line."""
    begun, ended = "Connection limit of", "Below the connection limit again"
    with ExitStack() as stack:
        for _ in range(CAP):
            held(capped, stack)
        # All 20 were accepted, so any earlier spell is over and logged as such.
        before = capped.output().count(begun), capped.output().count(ended)
        for _ in range(10):
            with connect(capped) as extra:
                assert read_until_closed(extra).startswith(b"HTTP/1.1 503 ")
    wait_until(lambda: capped.output().count(ended) > before[1])
    assert (capped.output().count(begun), capped.output().count(ended)) == (
        before[0] + 1,
        before[1] + 1,
    )

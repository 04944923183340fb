"""``optimist serve`` against slow and vanishing clients, over raw sockets to a real process.

The timeouts are set to one second so that the tests end soon; every wait is for a
condition (the server closed the connection, a line reached the log), bounded far
above any timeout, so a busy machine makes them slower, never red.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import Server, optimist_serving, read_until_closed, wait_until

pytestmark = pytest.mark.slow

_TIMEOUTS = ("--head-timeout", "1", "--body-timeout", "1", "--idle-timeout", "1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` with every timeout at one second."""
    with optimist_serving(tmp_path_factory.mktemp("timeouts"), *_TIMEOUTS) as running:
        yield running


def connect(server: Server) -> socket.socket:
    """A raw TCP connection to ``server``."""
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def test_a_head_trickled_byte_by_byte_is_cut_after_the_head_timeout(server: Server) -> None:
    """Slowloris: a head that never completes gets 408 and the server closes the connection."""
    # Over 200 seconds' worth of bytes at the pace below, 200 times the head timeout.
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 2000
    received = b""
    with connect(server) as connection:
        connection.settimeout(0.1)
        for byte in head:
            try:
                connection.send(bytes([byte]))
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the server has closed (and reset) the connection
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail("the server kept reading a head that never ended")
    assert received == b"" or received.startswith(b"HTTP/1.1 408 ")


def test_a_body_shorter_than_its_content_length_gets_408_and_a_closed_connection(
    server: Server,
) -> None:
    """A body that stops short is answered 408, and the server closes the connection."""
    with connect(server) as connection:
        connection.sendall(
            b"POST /projects HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"name":'
        )
        answer = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


def test_a_fresh_connection_that_sends_nothing_is_closed(server: Server) -> None:
    """A connection without a first request is closed after the idle timeout."""
    with connect(server) as connection:
        assert read_until_closed(connection) == b""


def test_a_kept_alive_connection_is_closed_when_idle(server: Server) -> None:
    """After a response, a connection without a next request is closed."""
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_client_that_leaves_mid_body_leaves_no_error_in_the_log(server: Server) -> None:
    """A disconnect mid-body is an INFO line, not an ERROR with a traceback."""
    with connect(server) as connection:
        connection.sendall(
            b"POST /projects HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"name":'
        )
    wait_until(lambda: "before its request body was complete" in server.output())
    log = server.output()
    assert "ERROR" not in log
    assert "Traceback" not in log


def test_a_well_behaved_client_is_served_beside_the_slow_ones(server: Server) -> None:
    """Requests that arrive in time are answered as usual."""
    created = httpx.post(f"{server.url}/projects", json={"name": "in time"}, timeout=60)
    fetched = httpx.get(f"{server.url}{created.headers['location']}", timeout=60)
    assert (created.status_code, fetched.status_code) == (201, 200)

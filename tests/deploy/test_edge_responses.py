"""The responses ``optimist serve`` writes past the application, as a client reads them.

A request the server refuses before the application sees it (a head it cannot parse, a
head or body that does not arrive in time, a connection beyond the cap) gets a response
written by the server's own code. The application's caching policy never sees it, so it
carries its own Date (RFC 9110 §6.6.1; the server runs without uvicorn's) and
``no-store`` (RFC 9111 §5.2.2.5), and passes httplint like every other response.

The timeouts are one second so that the tests end soon; every wait is for the server to
close the connection, bounded far above any timeout.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from optimist.httpdate import parse_http_date
from optimist.service.gate import closing_response, refusal_response
from tests.support.conformance import complaints, parsed
from tests.support.servers import Server, optimist_serving, read_until_closed

pytestmark = pytest.mark.slow

_TIMEOUTS = ("--head-timeout", "1", "--body-timeout", "1")
_REQUEST = httpx.Request("POST", "http://test/projects")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` with one-second head and body timeouts."""
    with optimist_serving(tmp_path_factory.mktemp("edge"), *_TIMEOUTS) as running:
        yield running


def answer_to(server: Server, data: bytes) -> bytes:
    """Everything ``server`` sends back to ``data`` on a connection of its own."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(data)
        return read_until_closed(connection)


def assert_dated_no_store(response: httpx.Response) -> None:
    """One Date, an HTTP-date, and Cache-Control no-store."""
    dates = response.headers.get_list("date")
    assert len(dates) == 1, response.headers
    assert parse_http_date(dates[0]) is not None, dates
    assert response.headers.get_list("cache-control") == ["no-store"]


#: Requests the server answers itself, by the status it answers them with.
REFUSED = {
    # uvicorn cannot parse the request line.
    400: b"GET /projects HTTP/1.1 extra\r\nHost: test\r\n\r\n",
    # The head stops short of its end (RequestTimeout of optimist.service.connections).
    408: b"GET /projects HTTP/1.1\r\nHost: test\r\n",
}


@pytest.mark.parametrize("status", list(REFUSED), ids=["unparsable-head", "slow-head"])
def test_server_refusal_is_dated_and_no_store(server: Server, status: int) -> None:
    """What the server answers before the application is dated and no-store."""
    response = parsed(answer_to(server, REFUSED[status]), _REQUEST)
    assert response.status_code == status
    assert_dated_no_store(response)


def test_slow_body_refusal_is_dated_and_no_store(server: Server) -> None:
    """The 408 for a body that stops short of its Content-Length is dated and no-store."""
    data = (
        b"POST /projects HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"name":'
    )
    response = parsed(answer_to(server, data), _REQUEST)
    assert response.status_code == 408
    assert_dated_no_store(response)


@pytest.mark.parametrize(
    "data",
    [
        REFUSED[408],
        b'POST /projects HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{"name":',
    ],
    ids=["slow-head", "slow-body"],
)
def test_timeout_refusal_passes_httplint(server: Server, data: bytes) -> None:
    """A 408 problem the server writes passes httplint."""
    assert complaints(parsed(answer_to(server, data), _REQUEST)) == []


@pytest.mark.parametrize(
    "answer",
    [refusal_response(7), closing_response()],
    ids=["beyond the cap", "during shutdown"],
)
def test_a_refused_connection_gets_a_dated_no_store_503_passing_httplint(answer: bytes) -> None:
    """The 503 for a connection the gate refuses is dated, no-store, and passes httplint."""
    response = parsed(answer, _REQUEST)
    assert response.status_code == 503
    assert_dated_no_store(response)
    assert complaints(response) == []

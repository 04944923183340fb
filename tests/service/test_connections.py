"""The bounded protocol's part in a graceful shutdown: once uvicorn has asked the open
connections to close, a connection made late is answered 503 rather than served until
it is cut off. A real listening socket and uvicorn's protocol, on the test's loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from starlette.responses import PlainTextResponse
from uvicorn import Config
from uvicorn.server import ServerState

from optimist.service.connections import BoundedHttpProtocol
from optimist.service.gate import Gate

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


@dataclass
class Listening:
    """A server of :class:`BoundedHttpProtocol` on a loopback port, and its shared state."""

    port: int
    state: ServerState


@pytest.fixture
async def listening() -> AsyncIterator[Listening]:
    """The protocol serving a plain-text app on a free loopback port."""
    config = Config(PlainTextResponse("served"), lifespan="off", log_config=None)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BoundedHttpProtocol(config, state, {}), host="127.0.0.1", port=0
    )
    sock: socket.socket = server.sockets[0]
    try:
        yield Listening(sock.getsockname()[1], state)
    finally:
        server.close()
        for connection in list(state.connections):
            connection.transport.close()
        await server.wait_closed()
        Gate.of(loop).closing = False


async def exchange(port: int) -> bytes:
    """Send one request on a new connection; what the server writes until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=60)
    finally:
        writer.close()


async def opened(listening: Listening) -> tuple[BoundedHttpProtocol, asyncio.StreamWriter]:
    """A connection the server has made (open, no request yet): its protocol, and the
    client's end."""
    _, writer = await asyncio.open_connection("127.0.0.1", listening.port)
    for _ in range(6000):  # until the server has made it; a minute at most
        if listening.state.connections:
            break
        await asyncio.sleep(0.01)
    (protocol,) = listening.state.connections
    assert isinstance(protocol, BoundedHttpProtocol)
    return protocol, writer


@pytest.mark.anyio
async def test_a_connection_is_served_before_shutdown(listening: Listening) -> None:
    """Before shutdown, a request on a new connection gets the app's 200."""
    answer = await exchange(listening.port)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"served")


@pytest.mark.anyio
async def test_a_connection_made_after_shutdown_began_gets_503(listening: Listening) -> None:
    """Once uvicorn asked an open connection to close, a new one is a 503 with Retry-After."""
    protocol, client = await opened(listening)
    protocol.shutdown()
    answer = await exchange(listening.port)
    client.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"retry-after: 1" in head
    assert b"connection: close" in head
    assert b"shutting down" in body

"""The HTTP/1.1 connections of ``optimist serve``: uvicorn's, bounded in time and number.

uvicorn's httptools protocol closes a connection idle after a response
(``timeout_keep_alive``) but waits for ever for a first request, for a request head
trickled a byte at a time (slowloris), and accepts connections until the process runs
out of file descriptors. :class:`BoundedHttpProtocol` adds what a deployment needs:

* **idle**: a connection with no request in progress (a fresh one, or one kept alive
  after a response) is closed after ``idle_timeout`` seconds without a byte;
* **head**: from the first byte of a request, its head (request line and header
  fields) must be complete within ``head_timeout`` seconds, else the client gets
  RFC 9110 §15.5.9's 408 with ``Connection: close`` and the connection is closed;
* **cap**: a connection beyond ``max_connections`` open in this worker is refused with
  a 503 at once (:mod:`optimist.service.gate`);
* **shutdown**: a connection made after the graceful shutdown began gets a 503 too,
  rather than being served until it is cut off.

The request body's deadline is the ASGI middleware's (:mod:`optimist.service.request_body`),
which answers 408 through the application's own response path.

The limits are the deployment's settings (``OPTIMIST_HEAD_TIMEOUT``,
``OPTIMIST_IDLE_TIMEOUT``, ``OPTIMIST_MAX_CONNECTIONS``), read once per process: uvicorn
builds a protocol per connection from a class, and a worker process is started from
uvicorn's configuration, so the environment the command line wrote is how they reach it.

This subclasses uvicorn's ``HttpToolsProtocol`` and overrides its connection and parser
callbacks (``connection_made``, ``data_received``, ``on_headers_complete``,
``on_response_complete``, ``connection_lost``) and ``shutdown``; the ``service`` extra
pins the uvicorn releases it is tested with.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from optimist.httpdate import http_date
from optimist.problem import MEDIA_TYPE, Problem
from optimist.service.gate import Gate
from optimist.service.settings import Settings

__all__ = ["BoundedHttpProtocol", "ConnectionLimits", "process_limits"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may idle or take over a request head, and how many may be open."""

    head_timeout: float
    idle_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        """The limits ``settings`` configure."""
        return cls(settings.head_timeout, settings.idle_timeout, settings.max_connections)


@functools.cache
def process_limits() -> ConnectionLimits:
    """This process's limits, from its ``OPTIMIST_*`` variables, read once."""
    return ConnectionLimits.of(Settings.from_environment())


def _request_timeout_response() -> bytes:
    """The whole response to a request whose head did not arrive in time (RFC 9110 §15.5.9).

    Written past the application, so it carries its own Date (RFC 9110 §6.6.1) and
    ``no-store``, as the application's problems do.
    """
    problem = Problem(408, detail="The request's head did not arrive in time.")
    body = json.dumps(problem.to_dict(), separators=(",", ":")).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        f"content-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        f"date: {http_date(datetime.now(UTC))}\r\n"
        "cache-control: no-store\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with the idle, head and cap limits of the module."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = process_limits()
        self.gate = Gate.of(self.loop)
        self.head_timer: asyncio.TimerHandle | None = None
        # True while no request head is being read or served: the next byte begins one.
        self.awaiting_head = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.gate.accepted()
        if self.gate.closing:
            self.gate.turn_away(transport)
            return
        if len(self.connections) >= self.limits.max_connections:
            self.gate.refuse(transport, self.limits.max_connections)
            return
        super().connection_made(transport)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self.awaiting_head and self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.head_timeout, self._head_too_slow)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)
        if len(self.connections) < self.limits.max_connections:
            self.gate.below_limit()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown asks each open connection to close after its
        response in progress; from then on, the gate turns away the connections made
        late (see :mod:`optimist.service.gate`)."""
        self.gate.closing = True
        super().shutdown()

    # httptools parser callbacks and uvicorn's own

    def on_headers_complete(self) -> None:
        self._disarm_head()
        self.awaiting_head = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if not self.pipeline and (self.cycle is None or self.cycle.response_complete):
            self.awaiting_head = True
        if self.timeout_keep_alive_task is not None:
            self._arm_idle()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's 400 for a request it cannot parse, with the Date uvicorn no longer adds
        (the server runs with ``date_header=False``; RFC 9110 §6.6.1) and ``no-store``."""
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        body = msg.encode("ascii", "replace")
        content.extend(
            [
                f"date: {http_date(datetime.now(UTC))}\r\n".encode("ascii"),
                b"cache-control: no-store\r\n",
                b"content-type: text/plain; charset=utf-8\r\n",
                f"content-length: {len(body)}\r\n".encode("ascii"),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    # Timers

    def _arm_idle(self) -> None:
        """Close the connection after ``idle_timeout`` seconds without a byte from the client.

        uvicorn's ``data_received`` cancels the timer at the next byte.
        """
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.idle_timeout, self.timeout_keep_alive_handler
        )

    def _disarm_head(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        """The head did not complete in time: 408 and close (RFC 9110 §15.5.9)."""
        self.head_timer = None
        if self.transport.is_closing():
            return
        # A response in progress (a pipelined head came slowly) must not be interleaved.
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_request_timeout_response())
        self.transport.close()

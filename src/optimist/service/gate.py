"""The door of one server: connections refused beyond the cap or once it is closing, and
accepts that fail.

One :class:`Gate` per event loop (one uvicorn server per worker process) is installed
as the loop's exception handler, so it hears of every ``accept()`` that fails for want
of file descriptors; asyncio would otherwise log each with a traceback, thousands a
second (Python 3.11 retries the whole backlog on every tick). Both conditions are
:class:`~optimist.service.episodes.Episode`\\ s: a line when they begin, one when they end.

A connection beyond the cap is handed to a :class:`Refusal`: RFC 9110 §15.6.4's 503
with ``Retry-After`` and ``Connection: close``, written at once (the client need not
have sent anything, so the refusal costs no parsing and no wait), then a half-close;
the request the client sends meanwhile is read and dropped until the client closes
or :data:`LINGER` seconds pass, so that closing never resets the connection under the
answer. At most :data:`~optimist.service.limits.REFUSING` refusals linger at once;
beyond that they are closed as soon as the answer is written.

Once uvicorn's graceful shutdown has begun (:attr:`Gate.closing`), a connection the
kernel had accepted before the listening socket closed, but which asyncio makes only
now, gets the same kind of 503 (:func:`closing_response`): uvicorn has already asked
the open connections to close, and one it never asked would be served until the
graceful limit, then cut off in mid-request.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from datetime import UTC, datetime
from typing import Any, Final, cast

from optimist.httpdate import http_date
from optimist.problem import MEDIA_TYPE, Problem
from optimist.service.episodes import Episode
from optimist.service.limits import REFUSING

__all__ = [
    "LINGER",
    "RETRY_AFTER",
    "Gate",
    "Refusal",
    "closing_response",
    "refusal_response",
]

#: Seconds a refused connection stays open for the client to read its 503.
LINGER: Final = 2.0
#: Seconds a refused client is asked to wait (Retry-After).
RETRY_AFTER: Final = 1

_LOGGER = logging.getLogger("uvicorn.error")
#: What ``accept()`` fails with when the process or the system is out of resources.
_EXHAUSTED: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def refusal_response(limit: int) -> bytes:
    """The whole HTTP/1.1 response a connection beyond the cap of ``limit`` receives."""
    return _unavailable(f"The server holds its limit of {limit} connections; retry shortly.")


def closing_response() -> bytes:
    """The whole HTTP/1.1 response a connection made after shutdown began receives."""
    return _unavailable("The server is shutting down; retry shortly.")


def _unavailable(detail: str) -> bytes:
    """A 503 problem with ``detail``, Retry-After and Connection: close (RFC 9110 §15.6.4).

    Written past the application, so it carries its own Date (RFC 9110 §6.6.1) and
    ``no-store``, as the application's problems do.
    """
    fields, body = _unavailable_parts(detail)
    head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    return b"HTTP/1.1 503 Service Unavailable\r\n" + head + b"\r\n" + body


def _unavailable_parts(detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    problem = Problem(503, detail=detail)
    body = json.dumps(problem.to_dict(), separators=(",", ":")).encode()
    fields = [
        (b"content-type", MEDIA_TYPE.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"date", http_date(datetime.now(UTC)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"retry-after", str(RETRY_AFTER).encode("ascii")),
        (b"connection", b"close"),
    ]
    return fields, body


class Gate:
    """One server's door: the loop's exception handler, the cap's episode, the refusals."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._previous = loop.get_exception_handler()
        self.lingering = 0
        #: Whether the server's graceful shutdown has begun (see the module's docstring).
        self.closing = False
        self.full = Episode(
            _LOGGER,
            begins="Connection limit of %d reached: new connections are answered 503",
            ends="Below the connection limit again; %d connections were refused",
        )
        self.exhausted = Episode(
            _LOGGER,
            begins="Cannot accept connections: %s",
            ends="Accepting connections again, after %d failed attempts",
        )

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> Gate:
        """The gate installed on ``loop``, installed now if there is none yet."""
        handler = loop.get_exception_handler()
        if isinstance(handler, Gate):
            return handler
        gate = cls(loop)
        loop.set_exception_handler(gate)
        return gate

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's exception handler: a failed accept is an episode, the rest as before."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in _EXHAUSTED:
            self.exhausted.occurred(error.strerror or error)
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def accepted(self) -> None:
        """A connection was accepted: accepting works again, if it did not."""
        if self.exhausted.ongoing:
            self.exhausted.over()

    def refuse(self, transport: asyncio.BaseTransport, limit: int) -> None:
        """Answer ``transport``'s connection 503 and close it; it counts no further."""
        self.full.occurred(limit)
        self._answer(transport, refusal_response(limit))

    def turn_away(self, transport: asyncio.BaseTransport) -> None:
        """Answer ``transport``'s connection, made after shutdown began, 503 and close it."""
        self._answer(transport, closing_response())

    def _answer(self, transport: asyncio.BaseTransport, response: bytes) -> None:
        refusal = Refusal(self, response, linger=self.lingering < REFUSING)
        transport.set_protocol(refusal)
        refusal.connection_made(transport)

    def below_limit(self) -> None:
        """The open connections fell below the cap: the refusals' episode is over."""
        if self.full.ongoing:
            self.full.over()


class Refusal(asyncio.Protocol):
    """A connection that gets a 503 and nothing else (see the module's docstring)."""

    def __init__(self, gate: Gate, response: bytes, *, linger: bool) -> None:
        self._gate = gate
        self._response = response
        self._linger = linger
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is no subclass of asyncio.Transport, so no isinstance).
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.write(self._response)
        if not self._linger or not transport.can_write_eof():
            transport.close()
            return
        self._gate.lingering += 1
        transport.write_eof()
        self._timer = self._gate.loop.call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        """The request the client sent anyway: dropped unread."""

    def eof_received(self) -> bool:
        """The client is done: close now rather than when the linger ends."""
        if self._transport is not None:
            self._transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._gate.lingering -= 1

"""The request body as ``optimist serve`` reads it: within a deadline, and quietly cut short.

Two faults of a client meet the application while it reads a body:

* the body is shorter than its ``Content-Length`` (or trickles in): uvicorn would wait
  for the rest for ever. :class:`RequestBodyGuard` gives the whole body ``timeout``
  seconds from the start of the request; when they pass, it answers RFC 9110 §15.5.9's
  408 with ``Connection: close`` (so the server closes the connection after it) and
  tells the application the client is gone;
* the client disconnects mid-body: Starlette raises ``ClientDisconnect`` out of the
  application, which uvicorn logs as an ERROR with a traceback. There is nobody left to
  answer and nothing wrong with the server, so the guard logs one INFO line instead.

The answer goes through ASGI ``send``, so the access log shows the 408 like any other
response; whatever the application tries to send after it is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Final

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.httpdate import http_date
from optimist.problem import MEDIA_TYPE, Problem

__all__ = ["RequestBodyGuard"]

_LOGGER: Final = logging.getLogger("uvicorn.error")
_DISCONNECT: Final[Message] = {"type": "http.disconnect"}


class RequestBodyGuard:
    """ASGI middleware: a deadline for the request body, and quiet client disconnects."""

    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reading = _Reading(receive, send, self.timeout)
        try:
            await self.app(scope, reading.receive, reading.send)
        except ClientDisconnect:
            if not reading.gone:
                raise
            if reading.answered:
                return  # the access log has the 408
            _LOGGER.info(
                "%s - %s %s: the client left before its request body was complete",
                _client(scope),
                scope["method"],
                scope["path"],
            )


class _Reading:
    """One request's ``receive`` under a deadline, and its ``send`` after a 408."""

    def __init__(self, receive: Receive, send: Send, timeout: float) -> None:
        self._receive = receive
        self._send = send
        self._timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout
        self._complete = False
        self._started = False
        #: The client disconnected, or was answered 408: nothing more goes to it.
        self.gone = False
        #: The 408 was sent.
        self.answered = False

    async def receive(self) -> Message:
        if self._complete or self.gone:
            return await self._receive()
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            await self._request_timeout()
            return _DISCONNECT
        if message["type"] == "http.disconnect":
            self.gone = True
        elif not message.get("more_body", False):
            self._complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

    async def _request_timeout(self) -> None:
        """RFC 9110 §15.5.9: 408, and the connection is closed after it."""
        self.gone = True
        if self._started:
            return  # a response is under way; the application ends it
        problem = Problem(
            408, detail=f"The request body did not arrive within {self._timeout:g} seconds."
        )
        body = json.dumps(problem.to_dict(), separators=(",", ":")).encode()
        await self._send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # Past the application and its caching policy: its own Date and
                    # no-store (RFC 9110 §6.6.1; RFC 9111 §5.2.2.5).
                    (b"date", http_date(datetime.now(UTC)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"connection", b"close"),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body})
        self.answered = True


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"

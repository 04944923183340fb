"""What a request the service could not finish is answered: never a bare 500 from outside.

Two things end a request without an answer of the application's own, and Starlette and
uvicorn would each answer it from their outermost layer, outside every middleware the
application adds: a plain-text 500 with no CORS fields (a browser shows the script a
network error instead), no Date and no ``no-store``.

* An exception no handler answered: a 500 problem whose detail says nothing of the cause
  (:data:`~optimist.starlette.INTERNAL_DETAIL`).
* A request uvicorn cancelled, when a graceful shutdown reached its limit
  (:data:`~optimist.service.server.GRACEFUL_SHUTDOWN`): the server gave up on it, which
  is no fault of the request, so a 503 problem with ``Retry-After`` and ``Connection:
  close`` (RFC 9110 §15.6.4), as for a connection made too late
  (:mod:`optimist.service.gate`). A write under a precondition may be resent; if it had
  committed, the resend's precondition fails or its Idempotency-Key replays it.

:class:`Unfinished` answers both from inside CORS and the caching policy, so that the
answer carries what every answer does, and lets the exception go on, to be logged.
"""

from __future__ import annotations

import asyncio
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.problem import Problem
from optimist.service.gate import RETRY_AFTER
from optimist.starlette import INTERNAL_DETAIL, problem_response

__all__ = ["SHUTTING_DOWN", "Unfinished"]

#: The detail of the 503 for a request cancelled by the shutdown.
SHUTTING_DOWN: Final = "The server is shutting down; retry shortly."


class Unfinished:
    """ASGI middleware: a request that raised or was cancelled before its response began
    gets a problem (500, or 503 for a cancellation); the exception goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            if not started:
                headers = {"Retry-After": str(RETRY_AFTER), "Connection": "close"}
                answer = problem_response(Problem(503, detail=SHUTTING_DOWN), headers)
                await answer(scope, receive, send)
            raise
        except Exception:
            if not started:
                await problem_response(Problem(500, INTERNAL_DETAIL))(scope, receive, send)
            raise

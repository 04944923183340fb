"""Seed 000's vector clocks at the HTTP boundary: a pure ASGI middleware, and the one
typed state through which it and the application talk.

:class:`VectorClockMiddleware` parses the If-Match of a write as a vector clock before
the application runs. What it found, and what the application wrote, is one
:class:`ClockState` per request (:func:`clock_state`): the clock sent, whether If-Match
was no clock at all (a 412 the application answers when it asks, so that 401/403/404
come first), and the clock the write produced, which the middleware sends as the ETag
of a 2xx response. :func:`client_clock` is what a route asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.errors import InvalidEntityTag, InvalidVectorClock, PreconditionFailed
from optimist.etag import ANY, EntityTag, parse_list
from optimist.problem import MEDIA_TYPE, from_error
from optimist.starlette._fields import joined, precondition_lines
from optimist.vclock import VectorClock

__all__ = [
    "INVALID_CLOCK_DETAIL",
    "ClockState",
    "VectorClockMiddleware",
    "client_clock",
    "clock_state",
]

#: The detail of the 412 for an If-Match that is not a vector clock (seed 000).
INVALID_CLOCK_DETAIL: Final = "Invalid vector clock in If-Match header"

_STATE: Final = "optimist.vector_clock"  # scope key of the request's ClockState


@dataclass(slots=True)
class ClockState:
    """One request's vector clock, shared by :class:`VectorClockMiddleware` and the app.

    ``sent`` is the clock If-Match carried (None without one, or for ``*``);
    ``invalid`` says that If-Match was not a clock, a 412 deferred until the route asks
    (:func:`client_clock`); ``updated`` is the clock the route's write produced, which
    the middleware sends as the ETag of a 2xx response.
    """

    sent: VectorClock | None = None
    invalid: bool = False
    updated: VectorClock | None = None


def clock_state(request: HTTPConnection) -> ClockState:
    """The request's :class:`ClockState`; an empty one where the middleware did not run."""
    state = request.scope.get(_STATE)
    if not isinstance(state, ClockState):
        state = request.scope[_STATE] = ClockState()
    return state


def client_clock(
    request: HTTPConnection, current_etag: EntityTag | None = None
) -> VectorClock | None:
    """The vector clock the request's If-Match carried, or None if it carried none.

    With :class:`VectorClockMiddleware` ``defer=True``, an unparsable clock raises its 412
    here, when the route asks: after 401/403/404/422, and with the current ETag.
    """
    state = clock_state(request)
    if state.invalid:
        raise PreconditionFailed(current_etag, INVALID_CLOCK_DETAIL)
    return state.sent


def _wildcard(value: str) -> bool:
    try:
        return parse_list(value) is ANY
    except InvalidEntityTag:
        return False


class VectorClockMiddleware:
    """Seed 000's concurrency middleware as pure ASGI.

    On PUT/PATCH/DELETE with If-Match, the field is parsed as a vector clock (the quoted
    entity-tag, or the clock's JSON) into the request's :class:`ClockState` (``sent``),
    and If-Match is rewritten to the clock's canonical entity-tag, so every later
    precondition check sees one form. ``If-Match: *`` is a precondition, not a clock, and
    passes untouched (RFC 9110 §13.1.1). An unparsable clock is a 412 with
    :data:`INVALID_CLOCK_DETAIL`: at once, or with ``defer=True`` when the route calls
    :func:`client_clock` (or its preconditions fail), which keeps RFC 9110 §13.2.1's
    precedence. A 2xx response of a route that set ``clock_state(request).updated``
    carries that clock's entity-tag as ETag.
    ``paths`` limits the middleware to requests whose path starts with one of them, for
    an application whose other resources are versioned by plain entity tags.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        methods: tuple[str, ...] = ("PUT", "PATCH", "DELETE"),
        defer: bool = False,
        paths: tuple[str, ...] = ("/",),
    ) -> None:
        self.app = app
        self.methods = frozenset(method.upper() for method in methods)
        self.defer = defer
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in self.methods
            or not scope["path"].startswith(self.paths)
        ):
            await self.app(scope, receive, send)
            return
        clock = scope[_STATE] = ClockState()
        sent = joined(precondition_lines(Headers(scope=scope)), b"if-match")
        if sent is not None and not _wildcard(sent):
            try:
                clock.sent = VectorClock.from_header(sent)
            except InvalidVectorClock:
                if not self.defer:
                    await _invalid_clock()(scope, receive, send)
                    return
                clock.invalid = True
            else:
                others = [(k, v) for k, v in scope["headers"] if k.lower() != b"if-match"]
                tag = str(clock.sent.to_etag()).encode("latin-1")
                scope["headers"] = [*others, (b"if-match", tag)]

        async def stamp(message: Message) -> None:
            started = message["type"] == "http.response.start"
            if started and 200 <= message["status"] < 300 and clock.updated is not None:
                MutableHeaders(scope=message)["ETag"] = str(clock.updated.to_etag())
            await send(message)

        await self.app(scope, receive, stamp)


def _invalid_clock() -> JSONResponse:
    """The 412 of an unparsable clock answered at once, before the app looked anything up.

    Built here rather than by :func:`~optimist.starlette.error_response`, which reads
    this module's state; it is the same problem+json that function gives.
    """
    problem = from_error(PreconditionFailed(None, INVALID_CLOCK_DETAIL))
    return JSONResponse(problem.to_dict(), status_code=412, media_type=MEDIA_TYPE)

"""Starlette integration: read preconditions once, answer every error as problem details,
and seed 000's vector-clock middleware as pure ASGI.

A request's precondition fields are parsed once into a :class:`ConditionalRequest`
(:meth:`ConditionalProfile.bind`). Parsing never fails; the route decides *when* the
preconditions count, so that RFC 9110 §13.2.1's precedence falls out of the order of
its code: identity (401/403), existence (404) and body validation (422) first, then
:meth:`ConditionalRequest.write_condition` or :meth:`ConditionalRequest.evaluate`
(400/428, then 412/304), then the business rules that depend on the current state.

:func:`install_problem_handlers` turns every :class:`~optimist.errors.OptimistError`,
every ``HTTPException`` (404 unknown route, 405 with ``Allow``) and every unexpected
exception (a generic 500 that leaks nothing) into ``application/problem+json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from typing import Any, Final

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Host, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.conditions import Condition, ResourceState
from optimist.errors import (
    InvalidEntityTag,
    InvalidVectorClock,
    NotModified,
    OptimistError,
    PreconditionFailed,
    VersionConflict,
)
from optimist.etag import ANY, Comparison, EntityTag, parse_list
from optimist.httpdate import http_date
from optimist.policy import PreconditionPolicy
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.problem import MEDIA_TYPE, Problem, from_error
from optimist.vclock import VectorClock

__all__ = [
    "INVALID_CLOCK_DETAIL",
    "NOT_MODIFIED_FIELDS",
    "ConditionalProfile",
    "ConditionalRequest",
    "FailedDetail",
    "ProblemResponse",
    "VectorClockMiddleware",
    "client_clock",
    "error_response",
    "install_problem_handlers",
    "not_modified",
    "problem_response",
    "read_preconditions",
    "set_etag",
]

#: The detail of the 412 for an If-Match that is not a vector clock (seed 000).
INVALID_CLOCK_DETAIL: Final = "Invalid vector clock in If-Match header"

#: The fields a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5); ETag is
#: set from the resource, and other representation metadata is left out.
NOT_MODIFIED_FIELDS: Final = ("Cache-Control", "Content-Location", "Date", "Expires", "Vary")

_BOUND: Final = "optimist.conditional"  # scope key of the request's ConditionalRequest
_CLOCK_FAILURE: Final = "vector_clock_error"  # request.state member of a deferred 412
_INTERNAL_DETAIL: Final = "The server could not complete the request."

#: ``failed_detail(current_etag, if_match_as_sent)`` → the detail of a 412.
FailedDetail = Callable[[EntityTag | None, str | None], str]


_FIELDS: Final = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since"}
)
_UNCONDITIONAL: Final = Preconditions()


def _lines(headers: Headers) -> dict[bytes, list[str]]:
    """The precondition field lines of a request by (lower-case) name, in one pass."""
    lines: dict[bytes, list[str]] = {}
    for name, value in headers.raw:
        if name in _FIELDS:
            lines.setdefault(name, []).append(value.decode("latin-1"))
    return lines


def _joined(lines: Mapping[bytes, list[str]], name: bytes) -> str | None:
    # RFC 9110 §5.3: several field lines of a list-based field are one comma-joined list.
    values = lines.get(name)
    return ", ".join(values) if values else None


def _single(lines: Mapping[bytes, list[str]], name: bytes) -> str | None:
    # A date sent twice is not an HTTP-date; RFC 9110 §13.1.3/§13.1.4: ignore it.
    values = lines.get(name)
    return values[0] if values is not None and len(values) == 1 else None


def _parse(lines: Mapping[bytes, list[str]], allow_bare: bool) -> Preconditions:
    if not lines:  # most requests carry no precondition: nothing to parse
        return _UNCONDITIONAL
    return Preconditions.parse(
        if_match=_joined(lines, b"if-match"),
        if_none_match=_joined(lines, b"if-none-match"),
        if_modified_since=_single(lines, b"if-modified-since"),
        if_unmodified_since=_single(lines, b"if-unmodified-since"),
        allow_bare=allow_bare,
    )


def read_preconditions(headers: Headers, *, allow_bare: bool = False) -> Preconditions:
    """The four precondition fields of a request, parsed once; never raises."""
    return _parse(_lines(headers), allow_bare)


@dataclass(frozen=True, slots=True)
class ConditionalProfile:
    """How one API treats preconditions: which are required, how If-Match compares, and
    how its 412 reads.

    ``comparison`` is If-Match's comparison (strong per RFC 9110 §13.1.1; weak for a
    profile that documents the deviation). ``allow_bare`` accepts an unquoted tag.
    ``failed_detail`` (a string, or a function of the current tag and the If-Match as
    sent) and ``failed_extensions`` shape every plain 412 of a request bound to this
    profile, including one a store raises. The 400/428 detail is the policy's.
    """

    policy: PreconditionPolicy = field(default_factory=PreconditionPolicy)
    comparison: Comparison = Comparison.STRONG
    allow_bare: bool = False
    failed_detail: str | FailedDetail | None = None
    failed_extensions: Mapping[str, Any] = field(default_factory=dict)

    def bind(self, request: HTTPConnection) -> ConditionalRequest:
        """Parse the request's preconditions and remember them for its error responses."""
        lines = _lines(request.headers)
        bound = ConditionalRequest(
            profile=self,
            method=request.scope.get("method", "GET"),
            received=_parse(lines, self.allow_bare),
            if_match=_joined(lines, b"if-match"),
        )
        request.scope[_BOUND] = bound
        return bound


@dataclass(frozen=True, slots=True)
class ConditionalRequest:
    """One request's preconditions under a profile; the policy applies when first used.

    ``received`` holds the fields as parsed, before the policy; ``if_match`` the
    If-Match as sent (lines joined), for messages.
    """

    profile: ConditionalProfile
    method: str
    received: Preconditions
    if_match: str | None

    def enforce(self) -> Preconditions:
        """The preconditions to honour; raises PreconditionRequired (400/428) if missing."""
        return self.profile.policy.apply(self.method, self.received)

    def write_condition(self) -> Condition:
        """The condition a store must check inside its write (after :meth:`enforce`)."""
        return self.enforce().write_condition(self.profile.comparison)

    def evaluate(self, state: ResourceState, response: Response | None = None) -> None:
        """Decide the preconditions against ``state`` just read (RFC 9110 §13.2.2).

        Raises NotModified (304, GET/HEAD) or PreconditionFailed (412). Otherwise, and
        given a ``response``, sets its ETag and Last-Modified from ``state``. A 304
        repeats the :data:`NOT_MODIFIED_FIELDS` the route set on ``response`` before.
        """
        outcome = evaluate(self.enforce(), self.method, state, comparison=self.profile.comparison)
        if outcome is Outcome.NOT_MODIFIED:
            carried = {}
            if response is not None:
                carried = {
                    name: value
                    for name in NOT_MODIFIED_FIELDS
                    if (value := response.headers.get(name)) is not None
                }
            raise NotModified(state.etag, carried)
        if outcome is Outcome.PRECONDITION_FAILED:
            raise PreconditionFailed(state.etag, self._failed_detail(state.etag))
        if response is not None and state.etag is not None:
            set_etag(response, state.etag, last_modified=state.last_modified)

    def problem(self, error: OptimistError) -> Problem:
        """The problem details of ``error`` raised while this request was handled."""
        problem = from_error(error)
        # A vector-clock conflict says stale or concurrent: its own detail is the point.
        if isinstance(error, PreconditionFailed) and not isinstance(error, VersionConflict):
            detail = self._failed_detail(error.current_etag)
            if detail is not None:
                problem = replace(problem, detail=detail)
            if self.profile.failed_extensions:
                problem = problem.with_extensions(**self.profile.failed_extensions)
        return problem

    def _failed_detail(self, current_etag: EntityTag | None) -> str | None:
        described = self.profile.failed_detail
        if described is None or isinstance(described, str):
            return described
        return described(current_etag, self.if_match)


# -- responses -------------------------------------------------------------------------


class ProblemResponse(Response):
    """An ``application/problem+json`` response (RFC 9457 §3)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII-only JSON: a lone surrogate from hostile input cannot break the encoding.
        return json.dumps(content, allow_nan=False, separators=(",", ":"), default=str).encode()


def set_etag(response: Response, tag: EntityTag, *, last_modified: datetime | None = None) -> None:
    """Set the ETag (and Last-Modified, as an IMF-fixdate) of ``response``."""
    response.headers["ETag"] = str(tag)
    if last_modified is not None:
        response.headers["Last-Modified"] = http_date(last_modified)


def not_modified(
    tag: EntityTag | None,
    *,
    last_modified: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """304 with the validators, ``headers`` and no body (RFC 9110 §15.4.5)."""
    response = Response(status_code=304, headers=headers)
    if tag is not None:
        set_etag(response, tag, last_modified=last_modified)
    return response


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    """The problem+json response for ``problem``, with ``headers``."""
    return ProblemResponse(problem.to_dict(), status_code=problem.status, headers=headers)


def error_response(error: OptimistError, request: HTTPConnection | None = None) -> Response:
    """The problem+json response for a library error (the ETag header on 412 and 304).

    The problem comes from the request's :class:`ConditionalRequest` when one is bound,
    so a store's 412 reads like the route's own; a 5xx never shows its detail.
    """
    if isinstance(error, NotModified):
        return not_modified(error.current_etag, headers=error.headers)
    scope = request.scope if request is not None else {}
    bound = scope.get(_BOUND)
    problem = bound.problem(error) if isinstance(bound, ConditionalRequest) else from_error(error)
    if isinstance(error, PreconditionFailed) and _CLOCK_FAILURE in scope.get("state", {}):
        problem = replace(problem, detail=INVALID_CLOCK_DETAIL)
    if problem.status >= 500:
        return problem_response(Problem(problem.status, _INTERNAL_DETAIL))
    headers = {}
    # RFC 9110 §15.5.13 leaves the 412's fields open; SPEC §2 sends the current ETag.
    if isinstance(error, PreconditionFailed) and error.current_etag is not None:
        headers["ETag"] = str(error.current_etag)
    return problem_response(problem, headers)


# -- exception handlers ----------------------------------------------------------------


async def _optimist_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OptimistError)
    return error_response(exc, request)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _methods(allow: str) -> set[str]:
    return {method.strip().upper() for method in allow.split(",") if method.strip()}


def _allow(request: Request, sent: str) -> str:
    """Every method some route serves at the request's path (RFC 9110 §15.5.6: MUST).

    The router names the methods of the first route whose path matched only; FastAPI
    makes each method a route of its own, so every route is asked.
    """
    allowed = _methods(sent)
    routes = getattr(getattr(request.scope.get("app"), "router", None), "routes", [])
    # A mount matches its prefix whatever the method: it cannot tell.
    routes = [route for route in routes if not isinstance(route, Mount | Host)]
    path = request.scope["path"]
    probe = {"type": "http", "path": path, "root_path": request.scope.get("root_path", "")}
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        if any(r.matches({**probe, "method": method})[0] is Match.FULL for r in routes):
            allowed.add(method)
    return ", ".join(sorted(allowed))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status, headers = exc.status_code, dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allow(request, headers.pop("Allow", headers.pop("allow", "")))
    if status < 200 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    if status >= 500:
        return problem_response(Problem(status, _INTERNAL_DETAIL), headers)
    detail: Any = exc.detail
    extensions: dict[str, Any] = {}
    if not isinstance(detail, str):  # FastAPI allows any JSON-able detail
        detail, extensions = _phrase(status), {"details": detail}
    if status == 404 and detail == _phrase(404):
        detail = "No resource matches the request's path."
    elif status == 405 and detail == _phrase(405):
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}."
    return problem_response(Problem(status, detail, extensions=extensions), headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return problem_response(Problem(500, _INTERNAL_DETAIL))


def install_problem_handlers(app: Starlette) -> None:
    """Answer library errors, HTTP exceptions and anything unexpected as problem+json."""
    app.add_exception_handler(OptimistError, _optimist_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _internal_error)


# -- middleware ------------------------------------------------------------------------


def _wildcard(value: str) -> bool:
    try:
        return parse_list(value) is ANY
    except InvalidEntityTag:
        return False


def client_clock(
    request: HTTPConnection, current_etag: EntityTag | None = None
) -> VectorClock | None:
    """The vector clock the request's If-Match carried, or None if it carried none.

    With :class:`VectorClockMiddleware` ``defer=True``, an unparsable clock raises its 412
    here, when the route asks: after 401/403/404/422, and with the current ETag.
    """
    state = request.scope.get("state", {})
    if _CLOCK_FAILURE in state:
        raise PreconditionFailed(current_etag, INVALID_CLOCK_DETAIL)
    clock = state.get("vector_clock")
    return clock if isinstance(clock, VectorClock) else None


class VectorClockMiddleware:
    """Seed 000's concurrency middleware as pure ASGI.

    On PUT/PATCH/DELETE with If-Match, the field is parsed as a vector clock (the quoted
    entity-tag, or the clock's JSON) into ``request.state.vector_clock``, and If-Match is
    rewritten to the clock's canonical entity-tag, so every later precondition check sees
    one form. ``If-Match: *`` is a precondition, not a clock, and passes untouched
    (RFC 9110 §13.1.1). An unparsable clock is a 412 with :data:`INVALID_CLOCK_DETAIL`:
    at once, or with ``defer=True`` when the route calls :func:`client_clock` (or its
    preconditions fail), which keeps RFC 9110 §13.2.1's precedence. A 2xx response of a
    route that set ``request.state.updated_clock`` carries that clock's entity-tag as ETag.
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
        state: dict[str, Any] = scope.setdefault("state", {})
        sent = _joined(_lines(Headers(scope=scope)), b"if-match")
        if sent is not None and not _wildcard(sent):
            try:
                clock = VectorClock.from_header(sent)
            except InvalidVectorClock:
                failure = PreconditionFailed(None, INVALID_CLOCK_DETAIL)
                if not self.defer:
                    await error_response(failure)(scope, receive, send)
                    return
                state[_CLOCK_FAILURE] = failure
            else:
                state["vector_clock"] = clock
                others = [(k, v) for k, v in scope["headers"] if k.lower() != b"if-match"]
                tag = str(clock.to_etag()).encode("latin-1")
                scope["headers"] = [*others, (b"if-match", tag)]

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                updated = state.get("updated_clock")
                if isinstance(updated, VectorClock):
                    MutableHeaders(scope=message)["ETag"] = str(updated.to_etag())
            await send(message)

        await self.app(scope, receive, stamp)

"""The responses the integration sends: problem details, 304s and validators.

Every error is answered as ``application/problem+json`` (RFC 9457). A library error's
problem is worded by the request's bound profile when there is one
(:func:`~optimist.starlette.bound_request`), so that a store's 412 reads like the
route's own, and by the request's clock state when If-Match was no vector clock; a
412 carries the current ETag, a 304 its validators and no body. A 5xx shows nothing
of its cause, but for :class:`~optimist.errors.ServiceUnavailable`: a 503 that says the
database is unavailable and, in ``Retry-After``, when to try again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from starlette.requests import HTTPConnection
from starlette.responses import Response

from optimist.errors import NotModified, OptimistError, PreconditionFailed, ServiceUnavailable
from optimist.etag import EntityTag
from optimist.problem import MEDIA_TYPE, Problem, from_error
from optimist.starlette._fields import NOT_MODIFIED_FIELDS, set_etag
from optimist.starlette.binding import bound_request
from optimist.starlette.caching import NO_STORE
from optimist.starlette.clocks import INVALID_CLOCK_DETAIL, clock_state

__all__ = [
    "INTERNAL_DETAIL",
    "NOT_MODIFIED_FIELDS",
    "ProblemResponse",
    "error_response",
    "not_modified",
    "problem_response",
    "set_etag",
]

#: The detail of every 5xx problem: nothing of what went wrong reaches the client.
INTERNAL_DETAIL: Final = "The server could not complete the request."


class ProblemResponse(Response):
    """An ``application/problem+json`` response (RFC 9457 §3)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII-only JSON: a lone surrogate from hostile input cannot break the encoding.
        return json.dumps(content, allow_nan=False, separators=(",", ":"), default=str).encode()


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
    """The problem+json response for ``problem``, with ``headers``; ``no-store`` unless
    ``headers`` say otherwise, whether or not a caching policy is installed."""
    response = ProblemResponse(problem.to_dict(), status_code=problem.status, headers=headers)
    # RFC 9111 §5.2.2.5: a problem answers one request; no cache keeps it.
    response.headers.setdefault("Cache-Control", NO_STORE)
    return response


def error_response(error: OptimistError, request: HTTPConnection | None = None) -> Response:
    """The problem+json response for a library error (the ETag header on 412 and 304).

    The problem comes from the request's :class:`~optimist.starlette.ConditionalRequest`
    when one is bound, so a store's 412 reads like the route's own; any 412 of a request
    whose If-Match was no vector clock says so (:data:`~optimist.starlette.INVALID_CLOCK_DETAIL`);
    a 5xx never shows its detail, and a 503 for an unavailable database says only that.
    """
    if isinstance(error, NotModified):
        return not_modified(error.current_etag, headers=error.headers)
    if isinstance(error, ServiceUnavailable):
        # RFC 9110 §15.6.4: a temporary condition; §10.2.3: Retry-After says when it may
        # be over. The problem names the dependency and the wait, never the cause.
        return problem_response(from_error(error), {"Retry-After": str(error.retry_after)})
    bound = bound_request(request) if request is not None else None
    problem = bound.problem(error) if bound is not None else from_error(error)
    if (
        isinstance(error, PreconditionFailed)
        and request is not None
        and clock_state(request).invalid
    ):
        problem = replace(problem, detail=INVALID_CLOCK_DETAIL)
    if problem.status >= 500:
        return problem_response(Problem(problem.status, INTERNAL_DETAIL))
    headers = {}
    # RFC 9110 §15.5.13 leaves the 412's fields open; SPEC §2 sends the current ETag.
    if isinstance(error, PreconditionFailed) and error.current_etag is not None:
        headers["ETag"] = str(error.current_etag)
    # RFC 9110 §11.6.1: a 401 carries at least one challenge.
    if problem.status == 401 and error.challenge is not None:
        headers["WWW-Authenticate"] = error.challenge
    return problem_response(problem, headers)

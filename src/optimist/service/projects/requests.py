"""The HTTP boundary of the projects API: precondition profile, path keys, and bodies.

* :data:`Conditional`: seed 003's precondition profile. If-Match is optional on PUT and
  required on DELETE (428 Precondition Required, RFC 6585 §3, with a detail that says
  how to resubmit), compared strongly, and accepted bare as the seed's client sends
  it; every 412 reads "ETag mismatch: expected <current>, got <sent>".
* :data:`ProjectKey`: a path id the service cannot have issued is a 404 without a query.
* :class:`ProjectRoute`: bodies are JSON of at most :data:`MAX_BODY` bytes, and a body
  refused on an unknown project is a 404 first (RFC 9110 §13.2.1, SPEC §1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from optimist.errors import InvalidEntityTag, ResourceNotFound
from optimist.etag import ANY, EntityTag, parse_list
from optimist.fastapi import PrecedenceRoute, conditional
from optimist.policy import PreconditionPolicy, Requirement
from optimist.service import schema
from optimist.service.runtime import Runtime
from optimist.sqlalchemy import find
from optimist.starlette import ConditionalRequest

__all__ = [
    "MAX_BODY",
    "Conditional",
    "ProjectKey",
    "ProjectRoute",
    "mismatch_detail",
    "project_key",
]

#: The largest request body read (the largest valid one is about 60 KB).
MAX_BODY: Final = 128 * 1024

_ID_PATTERN: Final = re.compile(r"proj_[A-Za-z0-9_-]{1,59}")
_SHOWN: Final = 80  # characters of hostile input an error message repeats
_MISSING_DETAIL: Final = (
    "{method} requires an {header} header: GET the project, then resend the {method} "
    "with {header} set to its ETag"
)


def _cut(text: str) -> str:
    """Hostile input cut short before an error message repeats it."""
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _shown(sent: str) -> str:
    """The If-Match as sent, as seed 003 prints it: bare opaque-tags, hostile input cut short."""
    try:
        match = parse_list(sent, allow_bare=True)
    except InvalidEntityTag:
        return _cut(sent)
    if match is ANY:
        return "*"
    return _cut(", ".join(tag.opaque if not tag.weak else str(tag) for tag in match))


def mismatch_detail(current: EntityTag | None, sent: str | None) -> str:
    """The detail of a projects 412: seed 003's "ETag mismatch: expected <current>, got <sent>".

    A 412 that If-Match did not cause (If-Unmodified-Since, If-None-Match) says so instead.
    """
    expected = current.opaque if current is not None else "no current ETag"
    if sent is not None:
        try:
            match = parse_list(sent, allow_bare=True)
        except InvalidEntityTag:
            match = ()
        if current is None or match is ANY or not any(t.strong_match(current) for t in match):
            return f"ETag mismatch: expected {expected}, got {_shown(sent)}"
    return f"Precondition failed: the project has changed; its current ETag is {expected}"


Conditional = Annotated[
    ConditionalRequest,
    Depends(
        conditional(
            # RFC 6585 §3: 428 is the status for a missing precondition; seed 003 has no
            # body of its own for it (unlike seed 002's 400).
            PreconditionPolicy(
                {"DELETE": Requirement.REQUIRED}, missing_status=428, missing_detail=_MISSING_DETAIL
            ),
            allow_bare=True,
            failed_detail=mismatch_detail,
        )
    ),
]


def project_key(project_id: str) -> str:
    """The path's project id; one the service cannot have issued is a 404 without a query."""
    if _ID_PATTERN.fullmatch(project_id) is None:
        raise ResourceNotFound("project", _cut(project_id))
    return project_id


ProjectKey = Annotated[str, Depends(project_key)]


def _too_large() -> HTTPException:
    return HTTPException(413, f"The request body is larger than {MAX_BODY} bytes.")


def _as_json(scope: Scope) -> Scope:
    """``scope``, its body declared JSON, or a 415 for a body of another media type.

    Seed 003's curl steps send JSON with ``-d`` and no ``-H``, which curl labels
    ``application/x-www-form-urlencoded``; a body without Content-Type is read as JSON
    too. A JSON type (``application/json``, any ``+json``, RFC 6839 §3.1) is left as is.
    """
    headers = Headers(scope=scope)
    sent = headers.get("content-type")
    media_type = (sent or "").partition(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return scope
    if media_type not in ("", "application/x-www-form-urlencoded"):
        raise HTTPException(415, "The body must be JSON (application/json).")
    raw = [(name, value) for name, value in scope["headers"] if name.lower() != b"content-type"]
    # In place: the request's error handlers read this scope (the 412's detail is bound
    # to it), so it must stay the one the route sees.
    scope["headers"] = [*raw, (b"content-type", b"application/json")]
    return scope


def _bounded(receive: Receive) -> Receive:
    """``receive``, refusing a body (chunked or not) longer than :data:`MAX_BODY` with 413."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise _too_large()
        return message

    return bounded


class ProjectRoute(PrecedenceRoute):
    """A route whose refused body on an unknown project answers 404 (SPEC §1: 404 first).

    FastAPI validates the body before the endpoint runs, and the endpoint's one write is
    what finds out whether the project exists. So only when the body is refused (413,
    or 422 for one FastAPI cannot decode or validate) does this route look the project
    up, once, to answer 404 instead. Bodies are JSON (see :func:`_as_json`) of at most
    :data:`MAX_BODY` bytes.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        has_body = self.body_field is not None

        async def ordered(request: Request) -> Response:
            try:
                if not has_body:
                    return await handler(request)
                length = request.headers.get("content-length", "")
                if length.isdigit() and int(length) > MAX_BODY:
                    raise _too_large()
                scope = _as_json(request.scope)
                return await handler(Request(scope, _bounded(request.receive)))
            except (RequestValidationError, HTTPException) as error:
                key = request.path_params.get("project_id")
                refused = isinstance(error, RequestValidationError) or error.status_code in (
                    400,
                    413,
                    415,
                    422,
                )
                if not refused or not isinstance(key, str):
                    raise
                # project_key's check, repeated: this runs when its dependency did not.
                if _ID_PATTERN.fullmatch(key) is None:
                    raise ResourceNotFound("project", _cut(key)) from None
                runtime: Runtime = request.app.state.runtime
                if await find(runtime.engine, schema.projects, key) is None:
                    raise ResourceNotFound("project", key) from None
                raise

        return ordered

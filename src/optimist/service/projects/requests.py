"""The HTTP boundary of the projects API: precondition profile, path keys, and bodies.

* :data:`Conditional`: seed 003's precondition profile. If-Match is optional on PUT and
  required on DELETE (428 Precondition Required, RFC 6585 §3, with a detail that says
  how to resubmit), compared strongly, and accepted bare as the seed's client sends
  it; every 412 reads "ETag mismatch: expected <current>, got <sent>".
* :data:`ProjectKey`: a path id the service cannot have issued is a 404 without a query.
* :class:`ProjectRoute`: bodies are JSON of at most :data:`MAX_BODY` bytes, sent as seed
  003's curl steps send them too, and a body refused on an unknown project is a 404
  first (RFC 9110 §13.2.1, SPEC §1).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, Request
from starlette.types import Message, Receive

from optimist.errors import InvalidEntityTag, ResourceNotFound
from optimist.etag import ANY, EntityTag, parse_list
from optimist.fastapi import PrecedenceRoute, conditional, lookup
from optimist.policy import PreconditionPolicy, Requirement
from optimist.service import schema
from optimist.service.bodies import read_json
from optimist.service.runtime import RuntimeDep
from optimist.sqlalchemy import Record, get
from optimist.starlette import ConditionalRequest

__all__ = [
    "MAX_BODY",
    "Conditional",
    "CurrentProject",
    "ProjectKey",
    "ProjectRoute",
    "find_project",
    "mismatch_detail",
    "project_key",
]

#: The largest request body read (the largest valid one is about 60 KB).
MAX_BODY: Final = 128 * 1024
#: The media types a 415 names.
_NAMED: Final = ("application/json",)

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


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` as the whole request body once, then defers to ``receive``."""
    first = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def replay() -> Message:
        return next(first, None) or await receive()

    return replay


async def find_project(project_id: ProjectKey, runtime: RuntimeDep) -> Record:
    """The project in the path (the lookup of a refused request)."""
    return await get(runtime.engine, schema.projects, project_id)


#: The lookup of a route that writes one project (``dependencies=[CurrentProject]``).
CurrentProject = Depends(lookup(find_project))


class ProjectRoute(PrecedenceRoute):
    """A route whose body is read by :func:`~optimist.service.bodies.read_json` (JSON of
    at most :data:`MAX_BODY` bytes, curl's label accepted) and decoded and validated by
    FastAPI; a refused body on an unknown project answers 404 (SPEC §1: 404 first),
    through the route's lookup (:class:`~optimist.fastapi.PrecedenceRoute`).
    """

    async def prepare(self, request: Request) -> Request:
        if self.body_field is None:
            return request
        body = await read_json(request, limit=MAX_BODY, named=_NAMED, curl=True)
        # FastAPI decodes only a body labelled JSON. In place: the request's error
        # handlers read this scope (the 412's detail is bound to it).
        scope = request.scope
        raw = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        scope["headers"] = [*raw, (b"content-type", b"application/json")]
        return Request(scope, _replay(body, request.receive))

"""The projects API of seed 003 (SPEC §4.2): projects with strong ETags and a status machine.

Every write is one conditional statement (:func:`optimist.sqlalchemy.update` and
friends): the request's preconditions, and for a status change the transition rule,
are the statement's WHERE clause, so no update is lost and no transition is applied
from a status other than the one it was checked against. A read happens before a
write only on a path that already refuses the request, to put the errors in RFC 9110
§13.2.1's order (401/403 → 404 → body 422 → 428 → 412/304 → invalid transition 422).

The ETag is 16 hex digits of SHA-256 (the recipe of :data:`optimist.service.schema.projects`):
the ``ETag`` header carries it quoted, the body's ``etag`` bare, and If-Match accepts
either, as seed 003's client copies the body's ``etag`` into If-Match.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope

from optimist.cursor import Cursor
from optimist.errors import (
    GuardFailed,
    InvalidEntityTag,
    MalformedToken,
    PreconditionRequired,
    ResourceNotFound,
)
from optimist.etag import ANY, EntityTag, parse_list
from optimist.fastapi import PrecedenceRoute, conditional, problem_responses
from optimist.policy import PreconditionPolicy, Requirement
from optimist.problem import Problem
from optimist.service import schema
from optimist.service.runtime import Runtime, RuntimeDep
from optimist.sqlalchemy import Record, create, delete, find, get, page, update
from optimist.starlette import ConditionalRequest, problem_response, set_etag

__all__ = [
    "MAX_BODY",
    "TRANSITIONS",
    "Project",
    "ProjectChanges",
    "ProjectEnvelope",
    "ProjectIn",
    "ProjectPage",
    "ProjectPageEnvelope",
    "ProjectRoute",
    "ProjectStatus",
    "mismatch_detail",
    "new_project_id",
    "project_key",
    "representation",
    "router",
    "sources",
]

ProjectStatus = Literal["draft", "estimating", "submitted", "accepted", "rejected"]
assert get_args(ProjectStatus) == schema.PROJECT_STATUSES

#: Seed 003's status machine: (from, to) pairs. Setting the current status again is
#: not a transition, and is always allowed.
TRANSITIONS: Final = frozenset(
    {
        ("draft", "estimating"),
        ("estimating", "submitted"),
        ("submitted", "accepted"),
        ("submitted", "rejected"),
        ("estimating", "draft"),
        ("submitted", "estimating"),
        ("rejected", "draft"),
    }
)

_ID_PATTERN: Final = re.compile(r"proj_[A-Za-z0-9_-]{1,59}")
_LIST_QUERY: Final = "GET /projects"
#: The largest request body read (the largest valid one is about 60 KB).
MAX_BODY: Final = 128 * 1024
_SHOWN: Final = 80  # characters of a hostile If-Match echoed back in a detail
_MISSING_DETAIL: Final = (
    "{method} requires an {header} header: GET the project, then resend the {method} "
    "with {header} set to its ETag"
)


def sources(target: str) -> tuple[str, ...]:
    """The statuses from which a project may be set to ``target``: its own, and each
    status with a transition to it (the write's guard)."""
    return (target, *sorted(origin for origin, to in TRANSITIONS if to == target))


def new_project_id() -> str:
    """A fresh project id: ``proj_`` and 16 random hex digits."""
    return f"proj_{secrets.token_hex(8)}"


# -- bodies ----------------------------------------------------------------------------


def _unicode_text(*, multiline: bool) -> Callable[[str], str]:
    """A validator refusing what no column can store: lone surrogates, NUL, controls."""
    allowed = "\t\n\r" if multiline else ""

    def check(value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate, which is not Unicode text") from None
        for ch in value:
            if unicodedata.category(ch) == "Cc" and ch not in allowed:
                raise ValueError(f"contains the control character U+{ord(ch):04X}")
        return value

    return check


Name = Annotated[
    str, Field(min_length=1, max_length=200), AfterValidator(_unicode_text(multiline=False))
]
Customer = Annotated[str, Field(max_length=200), AfterValidator(_unicode_text(multiline=False))]
Description = Annotated[
    str, Field(max_length=10_000), AfterValidator(_unicode_text(multiline=True))
]


class ProjectIn(BaseModel):
    """A new project: its name, and optionally its customer and description."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    customer: Customer | None = None
    description: Description | None = None


class ProjectChanges(BaseModel):
    """The fields a PUT changes; the fields it leaves out keep their values.

    ``customer`` and ``description`` may be set to null (cleared); ``name`` and
    ``status`` may not.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    customer: Customer | None = None
    description: Description | None = None
    status: ProjectStatus | None = None

    @field_validator("name", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only on fields that were sent: leaving one out keeps its value.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class Project(BaseModel):
    """A project as the API shows it; ``etag`` is the bare 16-hex entity tag."""

    project_id: str
    name: str
    customer: str | None
    description: str | None
    status: ProjectStatus
    created_at: datetime
    updated_at: datetime
    etag: str


class ProjectEnvelope(BaseModel):
    """Seed 003's envelope around one project."""

    result: Project


class ProjectPage(BaseModel):
    """One page of projects, and the cursor of the next (null after the last)."""

    items: list[Project]
    next_cursor: str | None


class ProjectPageEnvelope(BaseModel):
    """Seed 003's envelope around a page of projects."""

    result: ProjectPage


def representation(record: Record) -> dict[str, Any]:
    """The JSON object of a stored project (what :class:`Project` describes)."""
    values = record.values
    return {
        "project_id": values["project_id"],
        "name": values["name"],
        "customer": values["customer"],
        "description": values["description"],
        "status": values["status"],
        "created_at": values["created_at"].isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "etag": record.etag.opaque,
    }


def _respond(
    record: Record, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = JSONResponse({"result": representation(record)}, status, dict(headers or {}))
    set_etag(response, record.etag, last_modified=record.updated_at)
    return response


# -- preconditions ---------------------------------------------------------------------


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


# -- routes ----------------------------------------------------------------------------


def _too_large() -> HTTPException:
    return HTTPException(413, f"The request body is larger than {MAX_BODY} bytes.")


def _as_json(scope: Scope) -> Scope:
    """``scope`` with its body declared JSON, or a 415 for a body of another media type.

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
    return {**scope, "headers": [*raw, (b"content-type", b"application/json")]}


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


router = APIRouter(tags=["projects"], route_class=ProjectRoute)


@router.post(
    "/projects",
    status_code=201,
    response_model=ProjectEnvelope,
    responses=problem_responses(422),
    summary="Create a project (status draft)",
)
async def create_project(project: ProjectIn, runtime: RuntimeDep) -> Response:
    """Create a project; 201 with its Location and ETag."""
    record = await create(
        runtime.engine,
        schema.projects,
        {
            "project_id": new_project_id(),
            **project.model_dump(),
            "status": "draft",
            "created_at": datetime.now(UTC),
        },
    )
    location = f"/projects/{record['project_id']}"
    return _respond(record, 201, {"Location": location})


@router.get(
    "/projects",
    response_model=ProjectPageEnvelope,
    responses=problem_responses(400, 410, 422),
    summary="List projects, oldest first, a snapshot per traversal",
)
async def list_projects(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:
    """One page of projects; ``next_cursor`` continues the same snapshot."""
    after: int | None = None
    watermark: int | None = None
    snapshot_at = datetime.now(UTC)
    if cursor is not None:
        decoded = runtime.cursors.decode(cursor, query=_LIST_QUERY)
        position = decoded.position
        if len(position) != 1 or isinstance(position[0], bool) or not isinstance(position[0], int):
            raise MalformedToken("cursor", cursor, "not a position in this listing")
        after, watermark, snapshot_at = position[0], decoded.watermark, decoded.snapshot_at
    found = await page(
        runtime.engine, schema.projects, limit=limit, after=after, watermark=watermark
    )
    next_cursor = None
    if found.next_position is not None:
        following = Cursor((found.next_position,), found.watermark, snapshot_at)
        next_cursor = runtime.cursors.encode(following, query=_LIST_QUERY)
    items = [representation(record) for record in found.records]
    return JSONResponse({"result": {"items": items, "next_cursor": next_cursor}})


@router.get(
    "/projects/{project_id}",
    response_model=ProjectEnvelope,
    responses=problem_responses(304, 404, 412),
    summary="Read a project (304 on a matching If-None-Match)",
)
async def read_project(
    project_id: ProjectKey, preconditions: Conditional, runtime: RuntimeDep
) -> Response:
    """The project, with its ETag; one query."""
    record = await get(runtime.engine, schema.projects, project_id)
    preconditions.evaluate(record.state)
    return _respond(record)


@router.put(
    "/projects/{project_id}",
    response_model=ProjectEnvelope,
    responses=problem_responses(404, 412, 422),
    summary="Update the fields given (If-Match optional, compared strongly)",
)
async def update_project(
    project_id: ProjectKey,
    changes: ProjectChanges,
    preconditions: Conditional,
    runtime: RuntimeDep,
) -> Response:
    """Write the given fields if the preconditions hold and the transition is allowed."""
    values = changes.model_dump(exclude_unset=True)
    target: str | None = values.get("status")
    # The transition rule is part of the write: it applies only while the status is
    # one the rule allows, so a concurrent transition cannot slip in between.
    guard = None if target is None else {"status": sources(target)}
    condition = preconditions.write_condition()
    try:
        record = await update(
            runtime.engine,
            schema.projects,
            project_id,
            values,
            condition=condition,
            guard=guard,
        )
    except GuardFailed as refused:
        current = refused.current["status"]
        allowed = sorted(to for origin, to in TRANSITIONS if origin == current)
        problem = Problem(
            422,
            f"Invalid transition: {current} → {target}",
            extensions={"current_status": current, "allowed_statuses": allowed},
        )
        return problem_response(problem)
    return _respond(record)


@router.delete(
    "/projects/{project_id}",
    status_code=204,
    responses=problem_responses(404, 412, 428),
    summary="Delete a project (If-Match required)",
)
async def delete_project(
    project_id: ProjectKey, preconditions: Conditional, runtime: RuntimeDep
) -> Response:
    """Delete the project if If-Match names its current ETag."""
    try:
        condition = preconditions.write_condition()
    except PreconditionRequired:
        # RFC 9110 §13.2.1: a missing resource is a 404 before any precondition, so
        # this refusal looks the project up (the only read before a DELETE).
        if await find(runtime.engine, schema.projects, project_id) is None:
            raise ResourceNotFound("project", project_id) from None
        raise
    await delete(runtime.engine, schema.projects, project_id, condition=condition)
    return Response(status_code=204)

"""The test-sessions API of seed 000 (SPEC §4.3): sessions versioned by vector clocks.

A session's version is its :class:`~optimist.vclock.VectorClock`; its ETag is the
clock's entity-tag (``"test-node=3"``). Seed 000's middleware
(:class:`~optimist.starlette.VectorClockMiddleware`, installed by the app with
``defer=True``) parses If-Match on PUT, PATCH and DELETE (that tag, or the clock as raw
JSON) into ``request.state.vector_clock``; the write sends it to the store as the
compare-and-set key (:func:`optimist.sqlalchemy.update_clocked`), so the check and the
write are one statement and a client whose clock is not the stored one gets a 412 that
says ``stale`` or ``concurrent``, with the current clock. A successful write advances
this node's counter (``--node-id``) and answers the new clock in the ETag.

**If-Match is optional** on PUT, PATCH and DELETE, as seed 000's middleware has it
(SPEC §4.3 is silent). A write without a clock, or with ``If-Match: *``, is
unconditional and still loses nothing: the store holds the row while it reads the
clock it increments. If-Unmodified-Since and If-None-Match on a write are evaluated
on the row while one transaction holds it, and the write is made in that transaction
(the ``condition`` of :func:`optimist.sqlalchemy.update_clocked`).

The order of checks (SPEC §1): an id that is not a UUID is a 404 without a query; a
body that fails (413, 415, 422) or an unparsable clock (412) looks the session up once,
so a missing session is a 404 first; then the write's own 412. No status machine:
SPEC §4.3 names the four statuses and no rule between them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar, get_args

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator
from starlette.responses import JSONResponse, Response

from optimist.conditions import ALWAYS, Condition
from optimist.cursor import Cursor
from optimist.errors import MalformedToken, PreconditionFailed, ResourceNotFound, VersionConflict
from optimist.fastapi import conditional, problem_responses
from optimist.preconditions import Preconditions
from optimist.service import schema
from optimist.service.bodies import (
    MERGE_PATCH,
    Strict,
    no_controls,
    openapi_body,
    read_body,
    timestamp,
)
from optimist.service.runtime import Runtime, RuntimeDep
from optimist.sqlalchemy import (
    Record,
    clock_of,
    create_clocked,
    delete_clocked,
    get,
    page,
    update_clocked,
)
from optimist.starlette import ConditionalRequest, client_clock, set_etag
from optimist.vclock import VectorClock

__all__ = [
    "MAX_NOTES",
    "PATH",
    "NewSession",
    "Session",
    "SessionPage",
    "SessionPatch",
    "SessionReplacement",
    "SessionStatus",
    "representation",
    "router",
    "session_key",
]

SessionStatus = Literal["scheduled", "in_progress", "completed", "cancelled"]
assert get_args(SessionStatus) == schema.SESSION_STATUSES

#: The collection's path; a session is at ``PATH/<id>``.
PATH: Final = "/v1/tests/sessions"
#: The longest ``notes``, in characters.
MAX_NOTES: Final = 10_000

_TABLE: Final = schema.test_sessions
_LIST_QUERY: Final = f"GET {PATH}"
# RFC 9562 §4: the 8-4-4-4-12 hex form; ids are issued (and stored) lower-case.
_UUID_TEXT: Final = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_SESSION_ID: Final = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_SHOWN: Final = 80  # characters of a hostile id repeated in a 404

R = TypeVar("R")


# -- bodies ----------------------------------------------------------------------------


def _uuid_text(value: object) -> object:
    """Only the hyphenated hex form is a UUID here (pydantic also takes braces, URNs…)."""
    if isinstance(value, str) and _UUID_TEXT.fullmatch(value) is None:
        raise ValueError("must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    return value


BuildingId = Annotated[uuid.UUID, BeforeValidator(_uuid_text)]
Notes = Annotated[str, Field(max_length=MAX_NOTES), AfterValidator(no_controls)]


class NewSession(Strict):
    """A new session: the building it tests, and optionally notes; it starts ``scheduled``."""

    building_id: BuildingId
    notes: Notes | None = None


class SessionReplacement(Strict):
    """A PUT body: every editable field; ``notes`` left out is cleared."""

    building_id: BuildingId
    status: SessionStatus
    notes: Notes | None = None


class SessionPatch(Strict):
    """A PATCH body (a JSON merge patch, RFC 7396): the fields to change.

    ``notes: null`` clears the notes; ``building_id`` and ``status`` cannot be null.
    """

    building_id: BuildingId | None = None
    status: SessionStatus | None = None
    notes: Notes | None = None

    @field_validator("building_id", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only on members that were sent: leaving one out keeps its value.
        if value is None:
            raise ValueError("cannot be null; leave the member out to keep its value")
        return value


def _columns(body: BaseModel) -> dict[str, Any]:
    """The members ``body`` sets, as column values (a UUID as its canonical text)."""
    values = body.model_dump(exclude_unset=True)
    if "building_id" in values:
        values["building_id"] = str(values["building_id"])
    return values


class Session(BaseModel):
    """A test session as the API shows it."""

    id: uuid.UUID
    building_id: uuid.UUID
    status: SessionStatus
    notes: str | None
    created_at: datetime
    updated_at: datetime
    vector_clock: dict[str, int]


class SessionPage(BaseModel):
    """One page of sessions, oldest first, and the cursor of the next (null after the last)."""

    data: list[Session]
    next_cursor: str | None


def representation(record: Record) -> dict[str, Any]:
    """The JSON object of a stored session (what :class:`Session` describes)."""
    values = record.values
    return {
        "id": values["id"],
        "building_id": values["building_id"],
        "status": values["status"],
        "notes": values["notes"],
        "created_at": timestamp(values["created_at"]),
        "updated_at": timestamp(record.updated_at),
        "vector_clock": dict(clock_of(_TABLE, record)),
    }


def _respond(record: Record, status: int = 200) -> Response:
    response = JSONResponse(representation(record), status_code=status)
    set_etag(response, record.etag, last_modified=record.updated_at)
    if status == 201:
        response.headers["Location"] = f"{PATH}/{record['id']}"
    return response


# -- the order of checks ---------------------------------------------------------------


def session_key(session_id: str) -> str:
    """The path's session id; one the service cannot have issued is a 404 without a query."""
    if _SESSION_ID.fullmatch(session_id) is None:
        shown = session_id if len(session_id) <= _SHOWN else session_id[:_SHOWN] + "…"
        raise ResourceNotFound(_TABLE.resource, shown)
    return session_id


SessionKey = Annotated[str, Depends(session_key)]
Conditions = Annotated[ConditionalRequest, Depends(conditional())]


async def _exists(runtime: Runtime, session_id: str) -> Record:
    """The session, or its 404: asked only on a path that already refuses the request."""
    return await get(runtime.engine, _TABLE, session_id)


async def _sent_clock(request: Request, runtime: Runtime, session_id: str) -> VectorClock | None:
    """The clock If-Match carried (None without one, or for ``*``).

    An unparsable one is seed 000's 412, after the 404 of a missing session and with
    the current ETag (SPEC §2: every 412 carries it).
    """
    try:
        return client_clock(request)
    except PreconditionFailed:
        current = await _exists(runtime, session_id)
        return client_clock(request, current.etag)


def _beyond_the_clock(received: Preconditions) -> bool:
    """Whether a write has preconditions the clock's compare-and-set does not decide.

    RFC 9110 §13.2.2: If-Unmodified-Since counts only without If-Match, and
    If-None-Match always does.
    """
    return received.if_none_match is not None or (
        received.if_match is None and received.if_unmodified_since is not None
    )


#: A write of a session: ``(sent, condition)`` → the store's result, ``sent`` being the
#: compare-and-set clock (None: the store holds the row and increments what it finds)
#: and ``condition`` the preconditions the store evaluates on the held row.
Write = Callable[[VectorClock | None, Condition], Awaitable[R]]

_HELD_FAILED: Final = "If-None-Match or If-Unmodified-Since does not hold of the current session"


async def _write(
    request: Request,
    runtime: Runtime,
    session_id: str,
    conditions: ConditionalRequest,
    write: Write[R],
) -> R:
    """Apply ``write`` under the request's preconditions: the clock If-Match carried as
    the compare-and-set key (one statement), and the preconditions beyond it evaluated
    by the store on the held session, in the write's transaction."""
    sent = await _sent_clock(request, runtime, session_id)
    if not _beyond_the_clock(conditions.enforce()):
        # Without a clock (none, or "*"), the store holds the row: nothing is lost.
        return await write(sent, ALWAYS)
    try:
        return await write(sent, conditions.write_condition())
    except VersionConflict:
        raise
    except PreconditionFailed as failed:
        # The store's 412 names no field; this one names the two it evaluated.
        raise PreconditionFailed(
            failed.current_etag, _HELD_FAILED, current=failed.current
        ) from None


# -- routes ----------------------------------------------------------------------------

router = APIRouter(prefix=PATH, tags=["test sessions"])


@router.post(
    "",
    status_code=201,
    response_model=Session,
    summary="Create a test session (status scheduled)",
    responses=problem_responses(413, 415, 422),
    openapi_extra=openapi_body(NewSession, "application/json"),
)
async def create_session(request: Request, runtime: RuntimeDep) -> Response:
    """Create a session with a server-chosen id; 201 with Location and its clock as ETag."""
    new = await read_body(request, NewSession)
    record = await create_clocked(
        runtime.engine,
        _TABLE,
        {
            "id": str(uuid.uuid4()),
            **_columns(new),
            "status": "scheduled",
            "created_at": datetime.now(UTC),
        },
        node=runtime.node_id,
    )
    return _respond(record, 201)


@router.get(
    "",
    response_model=SessionPage,
    summary="List test sessions, oldest first, a snapshot per traversal",
    responses=problem_responses(400, 410, 422),
)
async def list_sessions(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page, 1 to 100")] = 20,
    cursor: Annotated[
        str | None, Query(description="The next_cursor of the previous page (opaque, signed)")
    ] = None,
) -> Response:
    """One page of sessions; ``next_cursor`` continues the first page's snapshot."""
    after: int | None = None
    watermark: int | None = None
    snapshot_at = runtime.signer.now()
    if cursor is not None:
        decoded = runtime.cursors.decode(cursor, query=_LIST_QUERY)
        first = decoded.position[0] if len(decoded.position) == 1 else None
        if isinstance(first, bool) or not isinstance(first, int):
            raise MalformedToken("cursor", cursor, "not a position in this listing")
        after, watermark, snapshot_at = first, decoded.watermark, decoded.snapshot_at
    found = await page(runtime.engine, _TABLE, limit=limit, after=after, watermark=watermark)
    next_cursor = None
    if found.next_position is not None:
        following = Cursor((found.next_position,), found.watermark, snapshot_at)
        next_cursor = runtime.cursors.encode(following, query=_LIST_QUERY)
    data = [representation(record) for record in found.records]
    return JSONResponse({"data": data, "next_cursor": next_cursor})


@router.get(
    "/{session_id}",
    response_model=Session,
    summary="Read a test session (304 on a matching If-None-Match)",
    responses=problem_responses(304, 404, 412),
)
async def read_session(
    session_id: SessionKey, conditions: Conditions, runtime: RuntimeDep
) -> Response:
    """The session with its clock as ETag; one query."""
    record = await get(runtime.engine, _TABLE, session_id)
    # RFC 9110 §13.2.2 on what was just read: 304 for a matching If-None-Match.
    conditions.evaluate(record.state)
    return _respond(record)


async def _update(
    request: Request,
    runtime: Runtime,
    session_id: str,
    values: Mapping[str, Any],
    conditions: ConditionalRequest,
) -> Response:
    async def write(sent: VectorClock | None, condition: Condition) -> Record:
        return await update_clocked(
            runtime.engine,
            _TABLE,
            session_id,
            values,
            node=runtime.node_id,
            sent=sent,
            condition=condition,
        )

    record = await _write(request, runtime, session_id, conditions, write)
    # Seed 000's middleware stamps the new clock as the ETag (the tag _respond sets).
    request.state.updated_clock = clock_of(_TABLE, record)
    return _respond(record)


@router.put(
    "/{session_id}",
    response_model=Session,
    summary="Replace a test session's editable fields (If-Match optional: its clock)",
    responses=problem_responses(404, 412, 413, 415, 422),
    openapi_extra=openapi_body(SessionReplacement, "application/json"),
)
async def replace_session(
    session_id: SessionKey, request: Request, conditions: Conditions, runtime: RuntimeDep
) -> Response:
    """Write building_id, status and notes if the clock sent is the stored one."""
    body = await read_body(request, SessionReplacement, lambda: _exists(runtime, session_id))
    values = {"notes": None, **_columns(body)}
    return await _update(request, runtime, session_id, values, conditions)


@router.patch(
    "/{session_id}",
    response_model=Session,
    summary="Change some of a test session's fields (If-Match optional: its clock)",
    responses=problem_responses(404, 412, 413, 415, 422),
    openapi_extra=openapi_body(SessionPatch, MERGE_PATCH, "application/json"),
)
async def patch_session(
    session_id: SessionKey, request: Request, conditions: Conditions, runtime: RuntimeDep
) -> Response:
    """Write the members given if the clock sent is the stored one."""
    body = await read_body(request, SessionPatch, lambda: _exists(runtime, session_id))
    return await _update(request, runtime, session_id, _columns(body), conditions)


@router.delete(
    "/{session_id}",
    status_code=204,
    summary="Delete a test session (If-Match optional: its clock)",
    responses=problem_responses(404, 412),
)
async def delete_session(
    session_id: SessionKey, request: Request, conditions: Conditions, runtime: RuntimeDep
) -> Response:
    """Delete the session if the clock sent is the stored one; 204."""

    async def write(sent: VectorClock | None, condition: Condition) -> Record:
        return await delete_clocked(
            runtime.engine, _TABLE, session_id, sent=sent, condition=condition
        )

    await _write(request, runtime, session_id, conditions, write)
    return Response(status_code=204)

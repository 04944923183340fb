"""The routes of the test-sessions API: create, list, read, replace, patch, delete.

Every write is one compare-and-set on the session's vector clock
(:func:`~optimist.service.sessions.requests.write_under_clock`); a read is one query.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, Response

from optimist.conditions import Condition
from optimist.fastapi import PrecedenceRoute, problem_responses, representation_responses
from optimist.service import schema
from optimist.service.admin.identity import authenticated
from optimist.service.bodies import MERGE_PATCH, openapi_body, read_body
from optimist.service.reads import read, read_page
from optimist.service.runtime import RuntimeDep
from optimist.service.sessions.bodies import (
    NewSession,
    Session,
    SessionPage,
    SessionPatch,
    SessionReplacement,
    columns,
    representation,
)
from optimist.service.sessions.requests import (
    PATH,
    Conditions,
    Current,
    SessionKey,
    write_under_clock,
)
from optimist.service.writes import Write
from optimist.sqlalchemy import (
    Bind,
    Record,
    create_clocked,
    delete_clocked,
    update_clocked,
)
from optimist.starlette import ConditionalRequest, IdempotentWrite, set_etag
from optimist.vclock import VectorClock

__all__ = ["router"]

_TABLE: Final = schema.test_sessions
_LIST_QUERY: Final = f"GET {PATH}"
#: A session's path, as the document lists it and as Location names it.
_ITEM: Final = PATH + "/{session_id}"


def _respond(record: Record, status: int = 200) -> Response:
    response = JSONResponse(representation(record), status_code=status)
    set_etag(response, record.etag, last_modified=record.updated_at)
    if status == 201:
        response.headers["Location"] = _ITEM.format(session_id=record["id"])
    return response


# With --require-identity, every route needs the identity the admin API needs.
router = APIRouter(
    prefix=PATH,
    tags=["test sessions"],
    route_class=PrecedenceRoute,
    dependencies=[Depends(authenticated)],
)


@router.post(
    "",
    status_code=201,
    response_model=Session,
    summary="Create a test session (status scheduled)",
    responses={
        **representation_responses(201, location=_ITEM, ids={"session_id": "/id"}),
        **problem_responses(413, 415, 422),
    },
    openapi_extra=openapi_body(NewSession, "application/json"),
)
async def create_session(request: Request, runtime: RuntimeDep, write: Write) -> Response:
    """Create a session with a server-chosen id; 201 with Location and its clock as ETag."""
    new = await read_body(request, NewSession)
    record = await create_clocked(
        write.connection,
        _TABLE,
        {
            "id": str(uuid.uuid4()),
            **columns(new),
            "status": "scheduled",
            "created_at": datetime.now(UTC),
        },
        node=runtime.node_id,
    )
    return await write.keep(_respond(record, 201))


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
    found = await read_page(runtime, _TABLE, query=_LIST_QUERY, limit=limit, cursor=cursor)
    data = [representation(record) for record in found.records]
    return JSONResponse({"data": data, "next_cursor": found.next_cursor})


@router.get(
    "/{session_id}",
    response_model=Session,
    summary="Read a test session (304 on a matching If-None-Match)",
    responses={**representation_responses(), **problem_responses(304, 404, 412)},
)
async def read_session(
    session_id: SessionKey, conditions: Conditions, runtime: RuntimeDep
) -> Response:
    """The session with its clock as ETag; one query."""
    # RFC 9110 §13.2.2 on what was read: 304 for a matching If-None-Match.
    return _respond(await read(runtime, _TABLE, session_id, conditions))


async def _update(
    request: Request,
    write: IdempotentWrite[Bind],
    session_id: str,
    values: Mapping[str, Any],
    conditions: ConditionalRequest,
    *,
    node: str,
) -> Response:
    async def clocked(sent: VectorClock | None, condition: Condition) -> Record:
        return await update_clocked(
            write.connection,
            _TABLE,
            session_id,
            values,
            node=node,
            sent=sent,
            condition=condition,
        )

    # The new clock's entity-tag is the record's ETag, which _respond sets.
    return await write.keep(_respond(await write_under_clock(request, conditions, clocked)))


@router.put(
    "/{session_id}",
    dependencies=[Current],
    response_model=Session,
    summary="Replace a test session's editable fields (If-Match optional: its clock)",
    responses={**representation_responses(), **problem_responses(404, 412, 413, 415, 422)},
    openapi_extra=openapi_body(SessionReplacement, "application/json"),
)
async def replace_session(
    session_id: SessionKey,
    request: Request,
    conditions: Conditions,
    runtime: RuntimeDep,
    write: Write,
) -> Response:
    """Write building_id, status and notes if the clock sent is the stored one."""
    body = await read_body(request, SessionReplacement)
    values = {"notes": None, **columns(body)}
    return await _update(request, write, session_id, values, conditions, node=runtime.node_id)


@router.patch(
    "/{session_id}",
    dependencies=[Current],
    response_model=Session,
    summary="Change some of a test session's fields (If-Match optional: its clock)",
    responses={**representation_responses(), **problem_responses(404, 412, 413, 415, 422)},
    openapi_extra=openapi_body(SessionPatch, MERGE_PATCH, "application/json"),
)
async def patch_session(
    session_id: SessionKey,
    request: Request,
    conditions: Conditions,
    runtime: RuntimeDep,
    write: Write,
) -> Response:
    """Write the members given if the clock sent is the stored one."""
    body = await read_body(request, SessionPatch)
    changes = columns(body)
    return await _update(request, write, session_id, changes, conditions, node=runtime.node_id)


@router.delete(
    "/{session_id}",
    dependencies=[Current],
    status_code=204,
    summary="Delete a test session (If-Match optional: its clock)",
    responses=problem_responses(404, 412),
)
async def delete_session(
    session_id: SessionKey, request: Request, conditions: Conditions, write: Write
) -> Response:
    """Delete the session if the clock sent is the stored one; 204."""

    async def clocked(sent: VectorClock | None, condition: Condition) -> Record:
        return await delete_clocked(
            write.connection, _TABLE, session_id, sent=sent, condition=condition
        )

    await write_under_clock(request, conditions, clocked)
    return await write.keep(Response(status_code=204))

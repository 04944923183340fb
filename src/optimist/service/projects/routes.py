"""The routes of the projects API: create, list, read, update, delete.

Every write is one statement (:mod:`optimist.sqlalchemy`) whose WHERE clause holds the
request's preconditions and, for a status change, the transition rule as a guard; the
store's refusal read, made only when nothing was written, tells 404, 412 and an invalid
transition (422) apart, in that order.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from starlette.responses import JSONResponse, Response

from optimist.errors import GuardFailed
from optimist.fastapi import problem_responses, representation_responses
from optimist.problem import Problem
from optimist.service import schema
from optimist.service.admin.identity import authenticated
from optimist.service.projects.bodies import (
    TRANSITIONS,
    ProjectChanges,
    ProjectEnvelope,
    ProjectIn,
    ProjectPageEnvelope,
    representation,
    sources,
)
from optimist.service.projects.requests import (
    Conditional,
    CurrentProject,
    ProjectKey,
    ProjectRoute,
)
from optimist.service.reads import read, read_page
from optimist.service.runtime import RuntimeDep
from optimist.service.writes import Write
from optimist.sqlalchemy import Record, create, delete, update
from optimist.starlette import problem_response, set_etag

__all__ = ["new_project_id", "router"]

_LIST_QUERY: Final = "GET /projects"
#: A project's path, as the document lists it and as Location names it.
_ITEM: Final = "/projects/{project_id}"


def new_project_id() -> str:
    """A fresh project id: ``proj_`` and 16 random hex digits."""
    return f"proj_{secrets.token_hex(8)}"


def _respond(
    record: Record, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = JSONResponse({"result": representation(record)}, status, dict(headers or {}))
    set_etag(response, record.etag, last_modified=record.updated_at)
    return response


# With --require-identity, every route needs the identity the admin API needs.
router = APIRouter(
    tags=["projects"], route_class=ProjectRoute, dependencies=[Depends(authenticated)]
)


@router.post(
    "/projects",
    status_code=201,
    response_model=ProjectEnvelope,
    responses={
        **representation_responses(201, location=_ITEM, ids={"project_id": "/result/project_id"}),
        **problem_responses(413, 415, 422),
    },
    summary="Create a project (status draft)",
)
async def create_project(project: ProjectIn, write: Write) -> Response:
    """Create a project; 201 with its Location and ETag."""
    record = await create(
        write.connection,
        schema.projects,
        {
            "project_id": new_project_id(),
            **project.model_dump(),
            "status": "draft",
            "created_at": datetime.now(UTC),
        },
    )
    location = _ITEM.format(project_id=record["project_id"])
    return await write.keep(_respond(record, 201, {"Location": location}))


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
    found = await read_page(runtime, schema.projects, query=_LIST_QUERY, limit=limit, cursor=cursor)
    items = [representation(record) for record in found.records]
    return JSONResponse({"result": {"items": items, "next_cursor": found.next_cursor}})


@router.get(
    _ITEM,
    response_model=ProjectEnvelope,
    responses={**representation_responses(), **problem_responses(304, 404, 412)},
    summary="Read a project (304 on a matching If-None-Match)",
)
async def read_project(
    project_id: ProjectKey, preconditions: Conditional, runtime: RuntimeDep
) -> Response:
    """The project, with its ETag; one query."""
    return _respond(await read(runtime, schema.projects, project_id, preconditions))


@router.put(
    _ITEM,
    dependencies=[CurrentProject],
    response_model=ProjectEnvelope,
    responses={**representation_responses(), **problem_responses(404, 412, 413, 415, 422)},
    summary="Update the fields given (If-Match optional, compared strongly)",
)
async def update_project(
    project_id: ProjectKey,
    changes: ProjectChanges,
    preconditions: Conditional,
    write: Write,
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
            write.connection,
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
        return await write.keep(problem_response(problem))
    return await write.keep(_respond(record))


@router.delete(
    _ITEM,
    dependencies=[CurrentProject],
    status_code=204,
    responses=problem_responses(404, 412, 428),
    summary="Delete a project (If-Match required)",
)
async def delete_project(
    project_id: ProjectKey, preconditions: Conditional, write: Write
) -> Response:
    """Delete the project if If-Match names its current ETag."""
    # RFC 9110 §13.2.1: a missing If-Match on a missing project is its 404 (the route's lookup).
    condition = preconditions.write_condition()
    await delete(write.connection, schema.projects, project_id, condition=condition)
    return await write.keep(Response(status_code=204))

"""A counter API with Idempotency-Key, as a Starlette app and as a FastAPI app.

``PATCH /counters/{id}`` adds ``by`` to a counter under a required If-Match (the key is
optional); ``POST /notes`` creates a note whose id the database chooses, answered 201
with Location (the key is required); ``DELETE /counters/{id}`` under If-Match;
``POST /counters/{id}/broken`` increments and then fails with 503. Identity is
``X-Tenant`` and ``X-Role`` (401 without a tenant); the key's scope is the pair.
Every write counts its effects in ``applied``, so a test sees what ran.
"""

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.errors import InvalidInput, ServiceUnavailable
from optimist.fastapi import (
    PrecedenceRoute,
    conditional,
    idempotency,
    install_idempotency,
    lookup,
    problem_responses,
    required_header,
)
from optimist.fastapi import install_problem_handlers as install_fastapi_handlers
from optimist.policy import PreconditionPolicy, Requirement
from optimist.sqlalchemy import Bind, Record, create, delete, get, update, versioned_table
from optimist.sqlalchemy.idempotency import DEFAULT_WAIT, idempotency_records, idempotent
from optimist.starlette import (
    ConditionalProfile,
    ConditionalRequest,
    Idempotency,
    IdempotentWrite,
    KeyScope,
    install_problem_handlers,
    set_etag,
)

__all__ = ["DOCS", "Effects", "counters", "fastapi_app", "metadata", "notes", "starlette_app"]

DOCS: Final = "https://example.test/docs/idempotency"

metadata = MetaData()
counters = versioned_table(
    "counters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("counter", Integer, nullable=False),
)
notes = versioned_table(
    "notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(200))
)
idempotency_records(metadata)

POLICY: Final = PreconditionPolicy(
    {"PATCH": Requirement.REQUIRED, "DELETE": Requirement.REQUIRED}, missing_status=428
)
PROFILE: Final = ConditionalProfile(POLICY)


@dataclass
class Effects:
    """The writes each app ran, in order: what a replay must not add to."""

    applied: list[str] = field(default_factory=list)


def identity(request: HTTPConnection) -> KeyScope:
    """The key's scope: (tenant, role); 401 without a tenant."""
    tenant = request.headers.get("x-tenant")
    if tenant is None:
        raise HTTPException(401, "X-Tenant is missing", {"WWW-Authenticate": 'Tenant realm="x"'})
    return (tenant, request.headers.get("x-role", "reader"))


def counter_response(record: Record, status: int = 200) -> Response:
    """A counter as JSON, with its validators."""
    response = JSONResponse({"id": record["id"], "counter": record["counter"]}, status_code=status)
    set_etag(response, record.etag, last_modified=record.updated_at)
    return response


def note_response(record: Record) -> Response:
    """A created note: 201, Location, ETag."""
    response = JSONResponse(
        {"id": record["id"], "text": record["text"]},
        status_code=201,
        headers={"Location": f"/notes/{record['id']}"},
    )
    set_etag(response, record.etag, last_modified=record.updated_at)
    return response


async def _increment(
    bind: Bind, key: str, by: int, pre: ConditionalRequest, effects: Effects
) -> Response:
    values = {"counter": counters.table.c.counter + by}
    record = await update(bind, counters, key, values, condition=pre.write_condition())
    effects.applied.append(f"increment {key} by {by}")
    return counter_response(record)


async def _broken(bind: Bind, key: str, effects: Effects) -> Response:
    await update(bind, counters, key, {"counter": counters.table.c.counter + 1})
    effects.applied.append(f"broken {key}")
    raise ServiceUnavailable("the next step is down", retry_after=2)


def keys_for(engine: AsyncEngine, wait: float = DEFAULT_WAIT) -> Idempotency[Bind]:
    """The apps' rules: keys scoped by identity, optional unless a route requires one;
    a duplicate waits ``wait`` seconds for the first (PostgreSQL), then is a 409."""
    store = functools.partial(idempotent, wait=wait)
    return Idempotency[Bind](engine, store, scope=identity, documentation=DOCS)


def starlette_app(engine: AsyncEngine, effects: Effects, wait: float = DEFAULT_WAIT) -> Starlette:
    """The counter API on plain Starlette endpoints."""
    keys = keys_for(engine, wait)

    async def read(request: Request) -> Response:
        return counter_response(await get(engine, counters, request.path_params["id"]))

    async def increment(request: Request) -> Response:
        key = request.path_params["id"]
        pre = PROFILE.bind(request)

        async def write(attempt: IdempotentWrite[Bind]) -> Response:
            body = await request.json()
            by = body.get("by") if isinstance(body, dict) else None
            if type(by) is not int:
                raise InvalidInput("body", str(by), "by must be an integer")
            return await _increment(attempt.connection, key, by, pre, effects)

        return await keys.respond(request, write, lookup=lambda: get(engine, counters, key))

    async def create_note(request: Request, attempt: IdempotentWrite[Bind]) -> Response:
        body = await request.json()
        record = await create(attempt.connection, notes, {"text": str(body["text"])})
        effects.applied.append(f"note {record['id']}")
        return note_response(record)

    async def remove(request: Request, attempt: IdempotentWrite[Bind]) -> Response:
        key = request.path_params["id"]
        pre = PROFILE.bind(request)
        await delete(attempt.connection, counters, key, condition=pre.write_condition())
        effects.applied.append(f"delete {key}")
        return Response(status_code=204)

    async def broken(request: Request, attempt: IdempotentWrite[Bind]) -> Response:
        return await _broken(attempt.connection, request.path_params["id"], effects)

    app = Starlette(
        routes=[
            Route("/counters/{id}", read, methods=["GET"]),
            Route("/counters/{id}", increment, methods=["PATCH"]),
            Route("/counters/{id}", keys.endpoint(remove), methods=["DELETE"]),
            Route("/counters/{id}/broken", keys.endpoint(broken), methods=["POST"]),
            Route("/notes", keys.endpoint(create_note, required=True), methods=["POST"]),
        ]
    )
    install_problem_handlers(app)
    return app


class Increment(BaseModel):
    """An increment's body."""

    by: int


class NewNote(BaseModel):
    """A note's body."""

    text: str


def fastapi_app(engine: AsyncEngine, effects: Effects, wait: float = DEFAULT_WAIT) -> FastAPI:
    """The counter API on FastAPI, with identity, lookup and precedence."""
    keys = keys_for(engine, wait)
    optional, required = idempotency(keys), idempotency(keys, required=True)
    preconditions = Depends(conditional(POLICY))

    async def who(
        request: Request,
        x_tenant: Annotated[str | None, required_header("X-Tenant")] = None,
    ) -> None:
        identity(request)

    async def find(id: str) -> Record:
        return await get(engine, counters, id)

    resource = Depends(lookup(find))
    router = APIRouter(route_class=PrecedenceRoute, dependencies=[Depends(who)])

    @router.get("/counters/{id}")
    async def read(found: Annotated[Any, resource]) -> Response:
        return counter_response(await found())

    @router.patch("/counters/{id}", responses=problem_responses(404, 412, 428))
    async def increment(
        id: str,
        body: Increment,
        found: Annotated[Any, resource],
        pre: Annotated[ConditionalRequest, preconditions],
        write: Annotated[IdempotentWrite[Bind], optional],
    ) -> Response:
        return await write.keep(await _increment(write.connection, id, body.by, pre, effects))

    @router.post("/notes", status_code=201)
    async def create_note(
        body: NewNote, write: Annotated[IdempotentWrite[Bind], required]
    ) -> Response:
        record = await create(write.connection, notes, {"text": body.text})
        effects.applied.append(f"note {record['id']}")
        return await write.keep(note_response(record))

    @router.delete("/counters/{id}", status_code=204, responses=problem_responses(404, 412))
    async def remove(
        id: str,
        found: Annotated[Any, resource],
        pre: Annotated[ConditionalRequest, preconditions],
        write: Annotated[IdempotentWrite[Bind], optional],
    ) -> Response:
        await delete(write.connection, counters, id, condition=pre.write_condition())
        effects.applied.append(f"delete {id}")
        return await write.keep(Response(status_code=204))

    @router.post("/counters/{id}/broken")
    async def broken(id: str, write: Annotated[IdempotentWrite[Bind], optional]) -> Response:
        return await write.keep(await _broken(write.connection, id, effects))

    app = FastAPI()
    app.include_router(router)
    install_fastapi_handlers(app)
    install_idempotency(app)
    return app

"""The optimist app on plain Starlette: the same three endpoints, without FastAPI.

* ``GET /items/{id}``: the item with its ETag; a matching If-None-Match is a 304
  (:meth:`ConditionalProfile.bind` parses, :meth:`ConditionalRequest.revalidate`
  decides), read from the row's validators alone (:func:`optimist.sqlalchemy.validators`);
* ``PATCH /items/{id}``: the body ``{counter?, text?}`` is validated by pydantic (a 422
  problem when it is not); If-Match is optional, and when sent it is the WHERE clause
  of the UPDATE (:func:`optimist.sqlalchemy.update` with ``pre.write_condition()``);
  Idempotency-Key is optional too: with one, :meth:`Idempotency.respond
  <optimist.starlette.Idempotency.respond>` claims it, runs the UPDATE and keeps the
  answer in one transaction, and a resend gets that answer;
* ``GET /items?limit=&cursor=``: keyset pages over a snapshot
  (:func:`optimist.sqlalchemy.list_page`), the position in a signed
  :class:`optimist.cursor.Cursor`.

Written as a user who picks Starlette over FastAPI writes it: each route binds the
request's preconditions, validates its own body and query, and builds its JSON
response; :func:`optimist.starlette.install_problem_handlers` answers every error as a
problem. Beside :mod:`bench.apps.optimist_app` it shows what the library's own layers
cost without FastAPI's dependency injection and response models. The table, the body's
model, the list's bounds, its query and the keys' rules are that app's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.problem import InvalidParam, Problem
from optimist.sqlalchemy import Bind, Record, get, list_page, update, validators
from optimist.starlette import (
    ConditionalProfile,
    IdempotentWrite,
    install_problem_handlers,
    problem_response,
    set_etag,
)

from bench.apps.optimist_app import (
    DEFAULT_LIMIT,
    LIST_QUERY,
    MAX_LIMIT,
    ItemPatch,
    from_environment,
    items,
    keys,
)

__all__ = ["create_app"]

#: Every route's preconditions: If-Match optional, compared strongly (RFC 9110 §13.1.1).
PROFILE = ConditionalProfile()


class ListQuery(BaseModel):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


def _document(record: Record) -> dict[str, Any]:
    return {"id": record["id"], "counter": record["counter"], "text": record["text"]}


def _invalid(where: str, error: ValidationError) -> Response:
    """The 422 problem of a body or query pydantic refused, each error an invalid param."""
    params = tuple(
        InvalidParam(".".join((where, *(str(part) for part in found["loc"]))), found["msg"])
        for found in error.errors(include_url=False)
    )
    shown = "; ".join(f"{param.name}: {param.reason}" for param in params)
    return problem_response(Problem(422, f"The request is invalid: {shown}", invalid_params=params))


def create_app() -> Starlette:
    """The app on ``BENCH_DATABASE_URL``, its cursors signed with ``BENCH_SECRET``."""
    engine, cursors = from_environment()
    keyed = keys(engine)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    async def read(request: Request) -> Response:
        pre = PROFILE.bind(request)
        key = request.path_params["item_id"]
        if pre.revalidating:
            # A client with a copy: its validators alone decide a 304.
            answer = pre.revalidate(await validators(engine, items, key))
            if answer is not None:
                return answer
        record = await get(engine, items, key)
        response = JSONResponse(_document(record))
        return pre.revalidate(record.state, response) or response

    async def patch(request: Request) -> Response:
        pre = PROFILE.bind(request)
        try:
            body = ItemPatch.model_validate_json(await request.body())
        except ValidationError as error:
            return _invalid("body", error)
        values = body.model_dump(exclude_unset=True)
        key = request.path_params["item_id"]

        async def write(attempt: IdempotentWrite[Bind]) -> Response:
            condition = pre.write_condition()
            record = await update(attempt.connection, items, key, values, condition=condition)
            response = JSONResponse(_document(record))
            set_etag(response, record.etag, last_modified=record.updated_at)
            return response

        return await keyed.respond(request, write)

    async def listing(request: Request) -> Response:
        try:
            query = ListQuery.model_validate(dict(request.query_params))
        except ValidationError as error:
            return _invalid("query", error)
        found = await list_page(
            engine, items, cursors, query=LIST_QUERY, limit=query.limit, cursor=query.cursor
        )
        data = [_document(record) for record in found.records]
        return JSONResponse({"data": data, "next_cursor": found.next_cursor})

    app = Starlette(
        routes=[
            Route("/items/{item_id:int}", read, methods=["GET"]),
            Route("/items/{item_id:int}", patch, methods=["PATCH"]),
            Route("/items", listing, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    return app

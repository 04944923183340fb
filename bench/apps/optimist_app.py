"""The optimist app: items with a counter and a text, written as a user of the library would.

* ``GET /items/{id}``: the item with its ETag; a matching If-None-Match is a 304
  (:func:`optimist.fastapi.conditional` parses, :meth:`ConditionalRequest.revalidate`
  decides on the row's validators alone, :func:`optimist.sqlalchemy.validators`);
* ``PATCH /items/{id}``: If-Match is optional; when sent it is the WHERE clause of the
  UPDATE (:func:`optimist.sqlalchemy.update` with ``pre.write_condition()``), when not
  the update is unconditional. Idempotency-Key is optional too
  (:func:`optimist.fastapi.idempotency`): with one, the key is claimed, the UPDATE runs
  and the answer is kept in one transaction
  (:func:`optimist.sqlalchemy.idempotency.idempotent`, records in :data:`records`), and
  a resend gets that answer with ``Idempotent-Replayed: true``; without one, the UPDATE
  runs on the engine as before;
* ``GET /items?limit=&cursor=``: keyset pages over a snapshot
  (:func:`optimist.sqlalchemy.list_page`), the position in a signed
  :class:`optimist.cursor.Cursor`.

The harness imports :data:`metadata` and :data:`items` to create and fill the schema;
:mod:`bench.apps.optimist_starlette_app`, the same endpoints on plain Starlette, imports
the table, the body's model, the list's bounds, its query and the keys' rules from here.
The HTTP race tests (``tests/support/counter_app.py``) serve this app too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, Text
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.cursor import CursorCodec
from optimist.fastapi import (
    conditional,
    idempotency,
    install_idempotency,
    install_problem_handlers,
)
from optimist.sqlalchemy import (
    Bind,
    Record,
    create_engine,
    get,
    list_page,
    update,
    validators,
    versioned_table,
)
from optimist.sqlalchemy.idempotency import idempotency_records, idempotent
from optimist.starlette import ConditionalRequest, Idempotency, IdempotentWrite, set_etag
from optimist.tokens import TokenSigner

__all__ = [
    "DEFAULT_LIMIT",
    "LIST_QUERY",
    "MAX_LIMIT",
    "ItemPatch",
    "create_app",
    "from_environment",
    "items",
    "keys",
    "metadata",
    "records",
]

metadata = MetaData()
items = versioned_table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("counter", Integer, nullable=False),
    Column("text", Text, nullable=False),
)
#: The Idempotency-Key records, beside the items: a key's claim and answer commit with
#: the write they answer for.
records = idempotency_records(metadata)

#: What the list's cursors are bound to (CursorCodec's ``query``).
LIST_QUERY = "GET /items"
#: A list page's size when the request names none, and the largest it may name.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

Conditional = Annotated[ConditionalRequest, Depends(conditional())]


class Item(BaseModel):
    id: int
    counter: int
    text: str


class ItemPatch(BaseModel):
    counter: int | None = None
    text: str | None = None


class ItemPage(BaseModel):
    data: list[Item]
    next_cursor: str | None


def _item(record: Record) -> Item:
    return Item(id=record["id"], counter=record["counter"], text=record["text"])


def from_environment() -> tuple[AsyncEngine, CursorCodec]:
    """The engine on ``BENCH_DATABASE_URL``, and the codec of cursors signed with ``BENCH_SECRET``.

    The app on Starlette (:mod:`bench.apps.optimist_starlette_app`) opens the same two.
    """
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])
    return engine, CursorCodec(TokenSigner([os.environ["BENCH_SECRET"]]))


def keys(engine: AsyncEngine) -> Idempotency[Bind]:
    """The apps' Idempotency-Key rules: optional keys, one scope for every client, records
    in :data:`records` for the library's default 24 hours."""
    return Idempotency[Bind](engine, idempotent)


def create_app(*, write: Callable[..., Awaitable[Record]] = update) -> FastAPI:
    """The app on ``BENCH_DATABASE_URL``, its cursors signed with ``BENCH_SECRET``.

    ``write`` is how PATCH writes, :func:`optimist.sqlalchemy.update` unless another
    function of the same arguments is given (the race tests give a read-compare-write).
    """
    engine, cursors = from_environment()
    keyed = idempotency(keys(engine))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    install_idempotency(app)

    @app.get("/items/{item_id}", response_model=Item)
    async def read(item_id: int, response: Response, pre: Conditional) -> Item | Response:
        if pre.revalidating:
            # A client with a copy: its validators alone decide a 304.
            answer = pre.revalidate(await validators(engine, items, item_id))
            if answer is not None:
                return answer
        record = await get(engine, items, item_id)
        pre.evaluate(record.state, response)
        return _item(record)

    # The answer is built here rather than from the return value: a key keeps its bytes
    # before the transaction commits. Item stays the documented response model.
    @app.patch("/items/{item_id}", response_model=Item)
    async def patch(
        item_id: int,
        body: ItemPatch,
        pre: Conditional,
        attempt: IdempotentWrite[Bind] = keyed,
    ) -> Response:
        values = body.model_dump(exclude_unset=True)
        condition = pre.write_condition()
        record = await write(attempt.connection, items, item_id, values, condition=condition)
        response = JSONResponse(_item(record).model_dump())
        set_etag(response, record.etag, last_modified=record.updated_at)
        return await attempt.keep(response)

    @app.get("/items")
    async def listing(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT, cursor: str | None = None
    ) -> ItemPage:
        found = await list_page(
            engine, items, cursors, query=LIST_QUERY, limit=limit, cursor=cursor
        )
        return ItemPage(
            data=[_item(record) for record in found.records], next_cursor=found.next_cursor
        )

    return app

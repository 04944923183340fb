"""The raw-driver baseline on FastAPI: the raw driver's SQL, FastAPI's way of serving it.

The same three endpoints as :mod:`bench.apps.raw_app` on the same stores
(:mod:`bench.apps.raw_stores`), written as a FastAPI user writes them, with what
:mod:`bench.apps.optimist_app` asks of FastAPI: the item's id as a typed path
parameter, the PATCH body validated by the same pydantic model, the item and the page
returned as response models, the list's bounds as query parameters. Beside the raw
driver on Starlette it shows what FastAPI itself costs; beside optimist under FastAPI,
what the library costs there, the framework's share taken out.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from pydantic import BaseModel

from bench.apps.optimist_app import DEFAULT_LIMIT, MAX_LIMIT, Item, ItemPatch
from bench.apps.raw_app import problem, write_item
from bench.apps.raw_stores import Row, Store, open_store

__all__ = ["create_app"]


class RawPage(BaseModel):
    data: list[Item]
    next_after: int | None


def _item(row: Row) -> Item:
    return Item(id=row["id"], counter=row["counter"], text=row["text"])


def create_app() -> FastAPI:
    """The baseline on ``BENCH_DATABASE_URL``."""
    state: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["store"] = await open_store(os.environ["BENCH_DATABASE_URL"])
        yield
        await state["store"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}", response_model=Item)
    async def read(item_id: int, request: Request, response: Response) -> Item | Response:
        row = await state["store"].read(item_id)
        if row is None:
            return problem(404, "no such item")
        etag = f'"{row["etag"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        response.headers["ETag"] = etag
        return _item(row)

    @app.patch("/items/{item_id}", response_model=Item)
    async def patch(item_id: int, body: ItemPatch, request: Request) -> Response:
        sent = await request.body()
        return await write_item(
            state["store"], request, item_id, counter=body.counter, text=body.text, sent=sent
        )

    @app.get("/items")
    async def listing(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> RawPage:
        rows = await state["store"].after(after, limit + 1)
        following = rows[-2]["created_seq"] if len(rows) > limit else None
        return RawPage(data=[_item(row) for row in rows[:limit]], next_after=following)

    return app

"""A minimal application on the library, served by uvicorn in the HTTP race tests.

``GET /counters/{key}`` answers the value and its ETag; ``PUT /counters/{key}``
requires If-Match (428 without) and writes with the precondition inside the UPDATE.
The database URL comes from ``COUNTER_DATABASE_URL``; the tests create the schema.
``COUNTER_NAIVE=1`` swaps in the seeds' read-compare-write, to show what the race
tests catch.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String

from optimist.conditions import ALWAYS, Condition
from optimist.errors import PreconditionFailed
from optimist.fastapi import conditional, install_problem_handlers
from optimist.policy import PreconditionPolicy, Requirement
from optimist.sqlalchemy import Record, create_engine, get, update, versioned_table
from optimist.starlette import ConditionalRequest, set_etag

__all__ = ["counters", "create_app", "metadata"]

metadata = MetaData()
counters = versioned_table(
    "counters",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

Conditional = Annotated[
    ConditionalRequest,
    Depends(conditional(PreconditionPolicy({"PUT": Requirement.REQUIRED}))),
]


class Counter(BaseModel):
    value: int


def create_app() -> FastAPI:
    """The counter app on ``COUNTER_DATABASE_URL``."""
    engine = create_engine(os.environ["COUNTER_DATABASE_URL"])
    naive = os.environ.get("COUNTER_NAIVE") == "1"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)

    @app.get("/counters/{key}")
    async def read(key: str, response: Response, pre: Conditional) -> Counter:
        record = await get(engine, counters, key)
        pre.evaluate(record.state, response)
        return Counter(value=record["value"])

    @app.put("/counters/{key}")
    async def write(key: str, body: Counter, response: Response, pre: Conditional) -> Counter:
        condition = pre.write_condition()
        record = await (_naive(key, body, condition) if naive else _atomic(key, body, condition))
        set_etag(response, record.etag)
        return Counter(value=record["value"])

    async def _atomic(key: str, body: Counter, condition: Condition) -> Record:
        return await update(engine, counters, key, {"value": body.value}, condition=condition)

    async def _naive(key: str, body: Counter, condition: Condition) -> Record:
        # The seeds' pattern: read, compare in Python, then write unconditionally.
        current = await get(engine, counters, key)
        if not condition.holds(current.state):
            raise PreconditionFailed(current.etag)
        return await update(engine, counters, key, {"value": body.value}, condition=ALWAYS)

    return app

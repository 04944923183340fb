"""Seed 003's pattern, written from its description: FastAPI and the SQLAlchemy ORM.

The PUT of seed 003 fetches the project, compares ``project.etag != if_match`` in
Python, sets the fields, a new ``updated_at`` and ``compute_etag(project)``, and
commits. This app does exactly that for items (as a PATCH, so that every server takes
the same request), with the seed's bare ETag header and its
``{"result": ...}`` envelope. An If-Match or If-None-Match in quotes is compared without
them, so that HTTP clients that quote tags (the optimist client does) can talk to it.
GET answers 304 when If-None-Match equals the stored tag
(the seed shows no revalidation; this is the obvious one), and the list is the
usual ORM idiom, OFFSET and LIMIT. The check and the write are two statements, so
concurrent writers can both pass the check: the lost-update race counts what that costs.

SQLite gets the same file settings as the other servers (WAL, ``synchronous=NORMAL``,
a busy timeout) so that what is compared is the pattern, not the pragmas.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, Integer, String, Text, event, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_app"]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(String(255), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_seq: Mapped[int] = mapped_column(BigInteger, unique=True)


class ItemPatch(BaseModel):
    counter: int | None = None
    text: str | None = None


def compute_etag(item: Item) -> str:
    """Seed 003's recipe: SHA-256 of the id, a field and the update time, 16 hex digits."""
    content = f"{item.id}:{item.counter}:{item.updated_at.isoformat()}"
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def make_envelope(item: Item) -> dict[str, Any]:
    return {"result": {"id": item.id, "counter": item.counter, "text": item.text}}


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_app() -> FastAPI:
    """The seed's pattern on ``BENCH_DATABASE_URL``."""
    engine = create_async_engine(os.environ["BENCH_DATABASE_URL"])
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read(
        item_id: int,
        response: Response,
        if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    ) -> Any:
        async with sessions() as session:
            item = await session.get(Item, item_id)
        if item is None:
            raise HTTPException(status_code=404, detail="Item not found")
        if if_none_match is not None and if_none_match.strip('"') == item.etag:
            return Response(status_code=304, headers={"ETag": item.etag})
        response.headers["ETag"] = item.etag
        return make_envelope(item)

    @app.patch("/items/{item_id}")
    async def update_item(
        item_id: int,
        req: ItemPatch,
        response: Response,
        if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    ) -> Any:
        async with sessions() as session:
            # Fetch project
            item = await session.get(Item, item_id)
            if item is None:
                raise HTTPException(status_code=404, detail="Item not found")
            # Validate ETag
            if if_match and item.etag != if_match.strip('"'):
                raise HTTPException(
                    status_code=412,
                    detail=f"ETag mismatch: expected {item.etag}, got {if_match}",
                    headers={"ETag": item.etag},
                )
            # Update project
            if req.counter is not None:
                item.counter = req.counter
            if req.text is not None:
                item.text = req.text
            item.updated_at = datetime.now(UTC)
            item.etag = compute_etag(item)
            # Save
            await session.commit()
        response.headers["ETag"] = item.etag
        return make_envelope(item)

    @app.get("/items")
    async def listing(
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        async with sessions() as session:
            statement = select(Item).order_by(Item.created_seq).offset(offset).limit(limit)
            found = (await session.scalars(statement)).all()
        return {"result": {"items": [make_envelope(item)["result"] for item in found]}}

    return app

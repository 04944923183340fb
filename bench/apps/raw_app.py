"""The raw-driver baseline: the same compare-and-set written by hand, without SQLAlchemy.

A Starlette app on asyncpg (PostgreSQL) or aiosqlite (SQLite, a small pool of
autocommit connections). A conditional PATCH is one statement::

    UPDATE items SET counter = COALESCE($2, counter), text = COALESCE($3, text),
                     etag = $4, updated_at = $5
     WHERE id = $1 AND etag = $6 RETURNING id, counter, text, etag

and, only when no row comes back, one SELECT to tell 404 from 412. It understands just
what the benchmark sends (one strong entity-tag, or none) and validates the body by
hand: the least Python a correct endpoint can run, the limit for this stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["create_app"]

_COLUMNS = "id, counter, text, etag"
_POOL_SIZE = 10
_SQLITE_CONNECTIONS = 5
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite

_PG_UPDATE = (
    "UPDATE items SET counter = COALESCE($2, counter), text = COALESCE($3, text), "
    "etag = $4, updated_at = $5 WHERE id = $1{check} RETURNING " + _COLUMNS
)
_SQLITE_UPDATE = (
    "UPDATE items SET counter = COALESCE(?, counter), text = COALESCE(?, text), "
    "etag = ?, updated_at = ? WHERE id = ?{check} RETURNING " + _COLUMNS
)

Row = Mapping[str, Any]


class Store(Protocol):
    async def read(self, item_id: int) -> Row | None: ...

    async def write(
        self, item_id: int, counter: int | None, text: str | None, expected: str | None
    ) -> Row | None: ...

    async def after(self, position: int, limit: int) -> Sequence[Row]: ...

    async def close(self) -> None: ...


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def read(self, item_id: int) -> Row | None:
        row: Row | None = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM items WHERE id = $1", item_id
        )
        return row

    async def write(
        self, item_id: int, counter: int | None, text: str | None, expected: str | None
    ) -> Row | None:
        now = datetime.now(UTC)
        etag = secrets.token_hex(8)
        if expected is None:
            row: Row | None = await self.pool.fetchrow(
                _PG_UPDATE.format(check=""), item_id, counter, text, etag, now
            )
        else:
            row = await self.pool.fetchrow(
                _PG_UPDATE.format(check=" AND etag = $6"),
                item_id, counter, text, etag, now, expected,
            )  # fmt: skip
        return row

    async def after(self, position: int, limit: int) -> Sequence[Row]:
        rows: Sequence[Row] = await self.pool.fetch(
            f"SELECT {_COLUMNS}, created_seq FROM items WHERE created_seq > $1 "
            "ORDER BY created_seq LIMIT $2",
            position,
            limit,
        )
        return rows

    async def close(self) -> None:
        await self.pool.close()


class SqliteStore:
    """A few autocommit connections: each statement is its own atomic transaction."""

    def __init__(self, connections: list[aiosqlite.Connection]) -> None:
        self.idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for connection in connections:
            self.idle.put_nowait(connection)
        self.connections = connections

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        connections = []
        for _ in range(_SQLITE_CONNECTIONS):
            connection = await aiosqlite.connect(path, isolation_level=None, timeout=30)
            connection.row_factory = aiosqlite.Row
            for pragma in ("busy_timeout = 30000", "journal_mode = WAL", "synchronous = NORMAL"):
                await connection.execute(f"PRAGMA {pragma}")
            connections.append(connection)
        return cls(connections)

    async def _fetch(self, statement: str, parameters: Sequence[object]) -> list[Row]:
        connection = await self.idle.get()
        try:
            rows = await connection.execute_fetchall(statement, parameters)
        finally:
            self.idle.put_nowait(connection)
        return [dict(row) for row in rows]

    async def read(self, item_id: int) -> Row | None:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return rows[0] if rows else None

    async def write(
        self, item_id: int, counter: int | None, text: str | None, expected: str | None
    ) -> Row | None:
        now = datetime.now(UTC).strftime(_SQLITE_TIME)
        parameters: tuple[object, ...] = (counter, text, secrets.token_hex(8), now, item_id)
        check = ""
        if expected is not None:
            check = " AND etag = ?"
            parameters += (expected,)
        rows = await self._fetch(_SQLITE_UPDATE.format(check=check), parameters)
        return rows[0] if rows else None

    async def after(self, position: int, limit: int) -> Sequence[Row]:
        return await self._fetch(
            f"SELECT {_COLUMNS}, created_seq FROM items WHERE created_seq > ? "
            "ORDER BY created_seq LIMIT ?",
            (position, limit),
        )

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


async def _open(url: str) -> Store:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return await SqliteStore.open(str(parsed.database))
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresStore(await asyncpg.create_pool(dsn, min_size=2, max_size=_POOL_SIZE))


def _document(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "counter": row["counter"], "text": row["text"]}


def _problem(status: int, detail: str, etag: str | None = None) -> Response:
    headers = {"ETag": f'"{etag}"'} if etag is not None else None
    body = json.dumps({"status": status, "detail": detail})
    return Response(body, status, headers, media_type="application/problem+json")


def _expected(if_match: str) -> str | None:
    """The opaque-tag of a single strong entity-tag, or None for anything else."""
    if len(if_match) >= 2 and if_match[0] == '"' and if_match[-1] == '"':
        return if_match[1:-1]
    return None


def create_app() -> Starlette:
    """The baseline on ``BENCH_DATABASE_URL``."""
    state: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["store"] = await _open(os.environ["BENCH_DATABASE_URL"])
        yield
        await state["store"].close()

    def item_id(request: Request) -> int | None:
        raw = request.path_params["item_id"]
        return int(raw) if raw.isdigit() else None

    async def read(request: Request) -> Response:
        key = item_id(request)
        row = None if key is None else await state["store"].read(key)
        if row is None:
            return _problem(404, "no such item")
        etag = f'"{row["etag"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(_document(row), headers={"ETag": etag})

    async def patch(request: Request) -> Response:
        key = item_id(request)
        if key is None:
            return _problem(404, "no such item")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _problem(422, "the body is not JSON")
        if not isinstance(body, dict):
            return _problem(422, "the body is a JSON object")
        counter, text = body.get("counter"), body.get("text")
        if isinstance(counter, bool) or not isinstance(counter, int | None):
            return _problem(422, "counter must be an integer")
        if not isinstance(text, str | None):
            return _problem(422, "text must be a string")
        if_match = request.headers.get("if-match")
        expected = None if if_match is None else _expected(if_match)
        if if_match is not None and expected is None:
            current = await state["store"].read(key)
            if current is None:
                return _problem(404, "no such item")
            return _problem(412, "If-Match is not one strong entity-tag", current["etag"])
        row = await state["store"].write(key, counter, text, expected)
        if row is None:
            current = await state["store"].read(key)
            if current is None:
                return _problem(404, "no such item")
            return _problem(412, "the item has changed", current["etag"])
        return JSONResponse(_document(row), headers={"ETag": f'"{row["etag"]}"'})

    async def listing(request: Request) -> Response:
        after = request.query_params.get("after", "0")
        limit = request.query_params.get("limit", "20")
        if not (after.isdigit() and limit.isdigit() and 1 <= int(limit) <= 100):
            return _problem(422, "after and limit are positive integers, limit at most 100")
        rows = await state["store"].after(int(after), int(limit) + 1)
        following = rows[-2]["created_seq"] if len(rows) > int(limit) else None
        data = [_document(row) for row in rows[: int(limit)]]
        return JSONResponse({"data": data, "next_after": following})

    return Starlette(
        routes=[
            Route("/items/{item_id}", read, methods=["GET"]),
            Route("/items/{item_id}", patch, methods=["PATCH"]),
            Route("/items", listing, methods=["GET"]),
        ],
        lifespan=lifespan,
    )

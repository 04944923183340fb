"""The raw-driver baseline: the same compare-and-set written by hand, without SQLAlchemy.

A Starlette app on asyncpg (PostgreSQL) or aiosqlite (SQLite, a small pool of
autocommit connections). A conditional PATCH is one statement::

    UPDATE items SET counter = COALESCE($2, counter), text = COALESCE($3, text),
                     etag = $4, updated_at = $5
     WHERE id = $1 AND etag = $6 RETURNING id, counter, text, etag

and, only when no row comes back, one SELECT to tell 404 from 412. It understands just
what the benchmark sends (one strong entity-tag, or none) and validates the body by
hand: the least Python a correct endpoint can run, the limit for this stack.

With an ``Idempotency-Key``, the PATCH is the least a correct keyed write can do: one
transaction that claims the key (an insert into ``optimist_idempotency`` that does
nothing when the key has a record), runs the same UPDATE and keeps the answer on the
claim, so that write and record commit together::

    BEGIN (IMMEDIATE on SQLite)
    INSERT INTO optimist_idempotency … ON CONFLICT (scope, key) DO NOTHING RETURNING key
    UPDATE items … RETURNING …
    UPDATE optimist_idempotency SET response = … WHERE scope = … AND key = …
    COMMIT

A key that has a record is answered from it: its answer replayed, a 409 while it is in
flight, a 422 for another request. The fingerprint is a hash of the method, the path,
If-Match and the body; keys never expire here (the benchmark's are all new). It gives
the keyed target its raw driver's own ratio: what the extra statements cost with no
library at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
_PROBLEM = "application/problem+json"
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

_SCOPE = '["raw"]'  # every client's keys in one scope, apart from the optimist apps'
_KEY_TTL = timedelta(days=1)
_PG_CLAIM = (
    "INSERT INTO optimist_idempotency (scope, key, fingerprint, response, created_at, "
    "expires_at) VALUES ($1, $2, $3, NULL, $4, $5) ON CONFLICT (scope, key) DO NOTHING "
    "RETURNING key"
)
_PG_RECORD = "SELECT fingerprint, response FROM optimist_idempotency WHERE scope = $1 AND key = $2"
_PG_KEEP = "UPDATE optimist_idempotency SET response = $3 WHERE scope = $1 AND key = $2"
_SQLITE_CLAIM = _PG_CLAIM.replace("$1", "?").replace("$2", "?").replace("$3", "?")
_SQLITE_CLAIM = _SQLITE_CLAIM.replace("$4", "?").replace("$5", "?")
_SQLITE_RECORD = (
    "SELECT fingerprint, response FROM optimist_idempotency WHERE scope = ? AND key = ?"
)
_SQLITE_KEEP = "UPDATE optimist_idempotency SET response = ? WHERE scope = ? AND key = ?"

Row = Mapping[str, Any]
#: An answer: status, ETag (or None), body, and whether it is a replay.
Answer = tuple[int, str | None, bytes, bool]


class Store(Protocol):
    async def read(self, item_id: int) -> Row | None: ...

    async def write(
        self, item_id: int, counter: int | None, text: str | None, expected: str | None
    ) -> Row | None: ...

    async def write_keyed(self, write: KeyedWrite) -> Answer: ...

    async def after(self, position: int, limit: int) -> Sequence[Row]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyedWrite:
    """A PATCH with an Idempotency-Key: what to write, and how to answer it."""

    item_id: int
    counter: int | None
    text: str | None
    expected: str | None
    key: str
    fingerprint: str

    def answer(self, row: Row | None, current: Row | None) -> Answer:
        """The answer to the write: 200 with ``row``, else 412 or 404 after ``current``."""
        if row is not None:
            body = json.dumps(_document(row)).encode()
            return 200, f'"{row["etag"]}"', body, False
        if current is None:
            return 404, None, _problem_body(404, "no such item"), False
        return 412, f'"{current["etag"]}"', _problem_body(412, "the item has changed"), False

    def recorded(self, fingerprint: str, response: bytes | None) -> Answer:
        """The answer when the key has a record already."""
        if fingerprint != self.fingerprint:
            return 422, None, _problem_body(422, "the key was sent with another request"), False
        if response is None:
            return 409, None, _problem_body(409, "a request with this key is in flight"), False
        status, etag, body = json.loads(response)
        return status, etag, body.encode(), True


def _stored(answer: Answer) -> bytes:
    status, etag, body, _ = answer
    return json.dumps([status, etag, body.decode()]).encode()


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

    async def write_keyed(self, write: KeyedWrite) -> Answer:
        now = datetime.now(UTC)
        async with self.pool.acquire() as connection, connection.transaction():
            claimed = await connection.fetchval(
                _PG_CLAIM, _SCOPE, write.key, write.fingerprint, now, now + _KEY_TTL
            )
            if claimed is None:
                record = await connection.fetchrow(_PG_RECORD, _SCOPE, write.key)
                assert record is not None  # never purged here
                return write.recorded(record["fingerprint"], record["response"])
            check, extra = (
                ("", ()) if write.expected is None else (" AND etag = $6", (write.expected,))
            )
            row = await connection.fetchrow(
                _PG_UPDATE.format(check=check),
                write.item_id, write.counter, write.text, secrets.token_hex(8), now, *extra,
            )  # fmt: skip
            current = None
            if row is None:
                current = await connection.fetchrow(
                    f"SELECT {_COLUMNS} FROM items WHERE id = $1", write.item_id
                )
            answer = write.answer(row, current)
            await connection.execute(_PG_KEEP, _SCOPE, write.key, _stored(answer))
        return answer

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

    async def write_keyed(self, write: KeyedWrite) -> Answer:
        now = datetime.now(UTC)
        connection = await self.idle.get()
        try:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                answer = await self._keyed(connection, write, now)
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")
        finally:
            self.idle.put_nowait(connection)
        return answer

    async def _keyed(
        self, connection: aiosqlite.Connection, write: KeyedWrite, now: datetime
    ) -> Answer:
        stamp, expires = now.strftime(_SQLITE_TIME), (now + _KEY_TTL).strftime(_SQLITE_TIME)
        claimed = await connection.execute_fetchall(
            _SQLITE_CLAIM, (_SCOPE, write.key, write.fingerprint, stamp, expires)
        )
        if not claimed:
            records = list(await connection.execute_fetchall(_SQLITE_RECORD, (_SCOPE, write.key)))
            return write.recorded(records[0]["fingerprint"], records[0]["response"])
        parameters: tuple[object, ...] = (
            write.counter, write.text, secrets.token_hex(8), stamp, write.item_id,
        )  # fmt: skip
        check = ""
        if write.expected is not None:
            check, parameters = " AND etag = ?", (*parameters, write.expected)
        rows = list(
            await connection.execute_fetchall(_SQLITE_UPDATE.format(check=check), parameters)
        )
        current = None
        if not rows:
            found = list(
                await connection.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM items WHERE id = ?", (write.item_id,)
                )
            )
            current = dict(found[0]) if found else None
        answer = write.answer(dict(rows[0]) if rows else None, current)
        await connection.execute(_SQLITE_KEEP, (_stored(answer), _SCOPE, write.key))
        return answer

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


def _problem_body(status: int, detail: str) -> bytes:
    return json.dumps({"status": status, "detail": detail}).encode()


def _problem(status: int, detail: str, etag: str | None = None) -> Response:
    headers = {"ETag": f'"{etag}"'} if etag is not None else None
    return Response(_problem_body(status, detail), status, headers, media_type=_PROBLEM)


def _keyed_response(answer: Answer) -> Response:
    status, etag, body, replayed = answer
    headers = {} if etag is None else {"ETag": etag}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    media = "application/json" if status == 200 else _PROBLEM
    return Response(body, status, headers, media_type=media)


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.headers.get("if-match", "")):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


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
        sent = await request.body()
        try:
            body = json.loads(sent)
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
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None:
            keyed = KeyedWrite(
                item_id=key,
                counter=counter,
                text=text,
                expected=expected,
                key=idempotency_key,
                fingerprint=_fingerprint(request, sent),
            )
            return _keyed_response(await state["store"].write_keyed(keyed))
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

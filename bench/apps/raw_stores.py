"""The raw-driver baseline's storage: hand-written SQL on asyncpg or aiosqlite.

PostgreSQL through an asyncpg pool; SQLite through a few autocommit connections, each
statement its own atomic transaction. :meth:`Store.write` is the one-statement
compare-and-set, :meth:`Store.write_keyed` the keyed write's transaction
(:mod:`bench.apps.raw_app` says what each does). Both raw apps, on Starlette and on
FastAPI, use these stores, so that what sets them apart is the framework alone.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "COLUMNS",
    "Answer",
    "KeyedWrite",
    "Row",
    "Store",
    "document",
    "open_store",
    "problem_body",
]

COLUMNS = "id, counter, text, etag"
_POOL_SIZE = 10
_SQLITE_CONNECTIONS = 5
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite

_PG_UPDATE = (
    "UPDATE items SET counter = COALESCE($2, counter), text = COALESCE($3, text), "
    "etag = $4, updated_at = $5 WHERE id = $1{check} RETURNING " + COLUMNS
)
_SQLITE_UPDATE = (
    "UPDATE items SET counter = COALESCE(?, counter), text = COALESCE(?, text), "
    "etag = ?, updated_at = ? WHERE id = ?{check} RETURNING " + COLUMNS
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
            body = json.dumps(document(row)).encode()
            return 200, f'"{row["etag"]}"', body, False
        if current is None:
            return 404, None, problem_body(404, "no such item"), False
        return 412, f'"{current["etag"]}"', problem_body(412, "the item has changed"), False

    def recorded(self, fingerprint: str, response: bytes | None) -> Answer:
        """The answer when the key has a record already."""
        if fingerprint != self.fingerprint:
            return 422, None, problem_body(422, "the key was sent with another request"), False
        if response is None:
            return 409, None, problem_body(409, "a request with this key is in flight"), False
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
            f"SELECT {COLUMNS} FROM items WHERE id = $1", item_id
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
                    f"SELECT {COLUMNS} FROM items WHERE id = $1", write.item_id
                )
            answer = write.answer(row, current)
            await connection.execute(_PG_KEEP, _SCOPE, write.key, _stored(answer))
        return answer

    async def after(self, position: int, limit: int) -> Sequence[Row]:
        rows: Sequence[Row] = await self.pool.fetch(
            f"SELECT {COLUMNS}, created_seq FROM items WHERE created_seq > $1 "
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
        rows = await self._fetch(f"SELECT {COLUMNS} FROM items WHERE id = ?", (item_id,))
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
                    f"SELECT {COLUMNS} FROM items WHERE id = ?", (write.item_id,)
                )
            )
            current = dict(found[0]) if found else None
        answer = write.answer(dict(rows[0]) if rows else None, current)
        await connection.execute(_SQLITE_KEEP, (_stored(answer), _SCOPE, write.key))
        return answer

    async def after(self, position: int, limit: int) -> Sequence[Row]:
        return await self._fetch(
            f"SELECT {COLUMNS}, created_seq FROM items WHERE created_seq > ? "
            "ORDER BY created_seq LIMIT ?",
            (position, limit),
        )

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


async def open_store(url: str) -> Store:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return await SqliteStore.open(str(parsed.database))
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresStore(await asyncpg.create_pool(dsn, min_size=2, max_size=_POOL_SIZE))


def document(row: Row) -> dict[str, Any]:
    """The item's JSON document."""
    return {"id": row["id"], "counter": row["counter"], "text": row["text"]}


def problem_body(status: int, detail: str) -> bytes:
    """A problem's JSON body."""
    return json.dumps({"status": status, "detail": detail}).encode()

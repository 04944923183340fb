"""A database that cannot serve a request: every operation raises ServiceUnavailable.

The server refuses connections, the pool has no free connection, a lock is not granted
within the lock, statement or busy timeout: on the driver's fast path and through
SQLAlchemy's execution alike, each public operation raises
:class:`~optimist.errors.ServiceUnavailable` carrying the engine's Retry-After, never a
driver's error.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import MetaData, event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.conditions import ABSENT
from optimist.cursor import CursorCodec
from optimist.errors import ServiceUnavailable
from optimist.sqlalchemy import (
    Versioned,
    autocommit,
    create,
    create_clocked,
    create_engine,
    delete,
    delete_clocked,
    find,
    get,
    list_page,
    page,
    transaction,
    update,
    update_clocked,
)
from optimist.sqlalchemy import engine as engines
from optimist.tokens import TokenSigner
from optimist.vclock import VectorClock
from tests.support.databases import execute
from tests.support.stores import declare, declare_sessions

pytestmark = pytest.mark.anyio

REFUSED = "postgresql+asyncpg://root:secret@127.0.0.1:1/nowhere"


@dataclass(frozen=True)
class Target:
    """An engine and the tables the operations use."""

    engine: AsyncEngine
    items: Versioned
    sessions: Versioned


def tables() -> tuple[Versioned, Versioned]:
    """``items`` and the clocked ``sessions``, on one metadata."""
    metadata = MetaData()
    items, _ = declare(metadata)
    return items, declare_sessions(metadata)


async def _in_transaction(target: Target) -> None:
    async with transaction(target.engine) as connection:
        await connection.execute(text("SELECT 1"))


async def _in_autocommit(target: Target) -> None:
    async with autocommit(target.engine) as connection:
        await connection.execute(text("SELECT 1"))


CODEC = CursorCodec(TokenSigner(["k"]), max_age=timedelta(hours=1))
NODE = "n1"
Operation = Callable[[Target], Awaitable[Any]]

WRITES: dict[str, Operation] = {
    "update-driver": lambda t: update(t.engine, t.items, "a", {"name": "x"}),
    "update-sqlalchemy": lambda t: update(
        t.engine, t.items, "a", {"counter": t.items.table.c.counter + 1}
    ),
    "delete": lambda t: delete(t.engine, t.items, "a"),
    "create": lambda t: create(t.engine, t.items, {"id": "new"}, condition=ABSENT),
    "create-clocked": lambda t: create_clocked(t.engine, t.sessions, {"id": "new"}, node=NODE),
    "update-clocked": lambda t: update_clocked(
        t.engine, t.sessions, "s", {"notes": "x"}, node=NODE, sent=None
    ),
    "update-clocked-sent": lambda t: update_clocked(
        t.engine, t.sessions, "s", {"notes": "x"}, node=NODE, sent=VectorClock({NODE: 1})
    ),
    "delete-clocked": lambda t: delete_clocked(t.engine, t.sessions, "s", sent=None),
    "transaction": _in_transaction,
}
READS: dict[str, Operation] = {
    "get": lambda t: get(t.engine, t.items, "a"),
    "find": lambda t: find(t.engine, t.items, "a"),
    "page": lambda t: page(t.engine, t.items, limit=2),
    "page-filtered": lambda t: page(
        t.engine, t.items, limit=2, filters=[t.items.table.c.counter >= 0]
    ),
    "list-page": lambda t: list_page(t.engine, t.items, CODEC, query="items", limit=2, cursor=None),
    "autocommit": _in_autocommit,
}
EVERY = {**READS, **WRITES}


def observed(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` with a statement listener: everything runs through SQLAlchemy's execution."""

    def observe(*_args: Any) -> None:
        return None

    event.listen(engine.sync_engine, "before_cursor_execute", observe)
    return engine


PATHS = {"driver": lambda engine: engine, "sqlalchemy": observed}


@pytest.fixture(params=list(PATHS), ids=list(PATHS))
def path(request: pytest.FixtureRequest) -> Callable[[AsyncEngine], AsyncEngine]:
    """The fast path on the driver, or SQLAlchemy's execution."""
    chosen: Callable[[AsyncEngine], AsyncEngine] = PATHS[request.param]
    return chosen


# -- a server that refuses connections -------------------------------------------------------


@pytest.fixture
async def refused(path: Callable[[AsyncEngine], AsyncEngine]) -> AsyncIterator[Target]:
    """Engines on a port where nothing listens."""
    items, sessions = tables()
    engine = path(create_engine(REFUSED, retry_after=7))
    yield Target(engine, items, sessions)
    await engine.dispose()


@pytest.mark.parametrize("operation", list(EVERY.values()), ids=list(EVERY))
async def test_a_refused_connection_is_service_unavailable(
    refused: Target, operation: Operation
) -> None:
    """Every operation on a server that refuses connections raises ServiceUnavailable."""
    with pytest.raises(ServiceUnavailable) as raised:
        await operation(refused)
    assert (raised.value.reason, raised.value.retry_after) == ("cannot connect", 7)


async def test_the_default_retry_after_is_one_second() -> None:
    """Without ``retry_after``, an engine's 503 asks for one second."""
    items, _ = tables()
    engine = create_engine(REFUSED)
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await get(engine, items, "a")
        assert raised.value.retry_after == engines.DEFAULT_RETRY_AFTER == 1
    finally:
        await engine.dispose()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_server_that_never_answers_times_out_at_connect(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's connect timeout applies: a silent server is a 503, not a hang."""
    monkeypatch.setattr(engines, "POSTGRES_CONNECT_TIMEOUT", 0.2)
    items, _ = tables()
    engine = create_engine(f"postgresql+asyncpg://root@127.0.0.1:{silent_port}/x")
    try:
        with anyio.fail_after(30), pytest.raises(ServiceUnavailable) as raised:
            await get(engine, items, "a")
        assert raised.value.reason == "connect timed out"
    finally:
        await engine.dispose()


# -- a pool with no free connection ------------------------------------------------------------


async def test_an_exhausted_pool_is_service_unavailable(
    database_url: str, path: Callable[[AsyncEngine], AsyncEngine]
) -> None:
    """A read that finds every pooled connection taken past pool_timeout is a 503."""
    items, _ = tables()
    engine = path(create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1))
    try:
        async with engine.connect() as taken:
            await taken.execute(text("SELECT 1"))
            with pytest.raises(ServiceUnavailable) as raised:
                await get(engine, items, "a")
        assert raised.value.reason == "no free connection in the pool"
    finally:
        await engine.dispose()


# -- a lock not granted in time ----------------------------------------------------------------


@pytest.fixture
async def sqlite_locked(
    tmp_path: Path, path: Callable[[AsyncEngine], AsyncEngine]
) -> AsyncIterator[Target]:
    """A SQLite file whose write lock another connection holds, and an engine that waits
    0.2 s for it."""
    file = tmp_path / "locked.db"
    engine = path(create_engine(f"sqlite+aiosqlite:///{file}", busy_timeout=0.2))
    target = await _seeded(engine)
    holder = sqlite3.connect(file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield target
    finally:
        holder.rollback()
        holder.close()
        await engine.dispose()


async def _seeded(engine: AsyncEngine) -> Target:
    items, sessions = tables()
    async with engine.begin() as connection:
        await connection.run_sync(items.table.metadata.create_all)
    await create(engine, items, {"id": "a"})
    await create_clocked(engine, sessions, {"id": "s"}, node=NODE)
    return Target(engine, items, sessions)


@pytest.mark.parametrize("operation", list(WRITES.values()), ids=list(WRITES))
async def test_a_sqlite_write_past_the_busy_timeout_is_service_unavailable(
    sqlite_locked: Target, operation: Operation
) -> None:
    """A write that waits for another connection's lock beyond busy_timeout raises a 503."""
    with pytest.raises(ServiceUnavailable) as raised:
        await operation(sqlite_locked)
    assert raised.value.reason == "database is locked"


@pytest.fixture(params=["lock_timeout", "statement_timeout"])
def timeout_setting(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL setting that gives up on a lock wait."""
    setting: str = request.param
    return setting


@pytest.fixture
async def postgres_locked(
    postgres_url: str, path: Callable[[AsyncEngine], AsyncEngine], timeout_setting: str
) -> AsyncIterator[Target]:
    """Rows whose locks another session holds, and an engine that gives up after 0.2 s."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    engine = path(
        create_engine(postgres_url, connect_args={"server_settings": {timeout_setting: "200"}})
    )
    target = await _seeded(engine)
    holder = await asyncpg.connect(postgres_url.replace("+asyncpg", ""), timeout=5)
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1 FROM items FOR UPDATE")
        await holder.execute("SELECT 1 FROM sessions FOR UPDATE")
        await holder.execute("LOCK TABLE optimist_sequences IN EXCLUSIVE MODE")
        yield target
    finally:
        await holder.close()
        await engine.dispose()


WRITES_ON_HELD_ROWS = {name: op for name, op in WRITES.items() if name != "transaction"}


@pytest.mark.postgres
@pytest.mark.parametrize(
    "operation", list(WRITES_ON_HELD_ROWS.values()), ids=list(WRITES_ON_HELD_ROWS)
)
async def test_a_postgres_write_past_its_lock_wait_is_service_unavailable(
    postgres_locked: Target, timeout_setting: str, operation: Operation
) -> None:
    """A write that waits for a row lock past lock_timeout or statement_timeout is a 503."""
    with pytest.raises(ServiceUnavailable) as raised:
        await operation(postgres_locked)
    assert raised.value.reason == timeout_setting.replace("_", " ")


@pytest.mark.postgres
async def test_the_victim_of_a_deadlock_is_service_unavailable(postgres_url: str) -> None:
    """A transaction PostgreSQL rolls back to break a deadlock (40P01) is a 503, not a
    500: nothing of it was applied, and the client may send it again."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    # This engine's session looks for a deadlock at once; the other waits a minute first,
    # so that the engine's transaction is the one PostgreSQL rolls back.
    settings = {"server_settings": {"deadlock_timeout": "10"}}
    engine = create_engine(postgres_url, connect_args=settings)
    target = await _seeded(engine)
    await create(engine, target.items, {"id": "b"})
    other = await asyncpg.connect(
        postgres_url.replace("+asyncpg", ""),
        timeout=5,
        server_settings={"deadlock_timeout": "60000"},
    )
    waiting: list[asyncio.Task[str]] = []

    async def crossing() -> None:
        async with transaction(engine) as connection:
            await update(connection, target.items, "b", {"name": "mine"})
            await other.execute("BEGIN")
            await other.execute("UPDATE items SET name = 'theirs' WHERE id = 'a'")
            # The other session now waits for "b", which this transaction holds...
            statement = "UPDATE items SET name = 'theirs' WHERE id = 'b'"
            waiting.append(asyncio.create_task(other.execute(statement)))
            await _until_waiting(postgres_url, other.get_server_pid())
            # ...and this one for "a", which the other holds: a deadlock.
            await update(connection, target.items, "a", {"name": "mine"})

    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await crossing()
        assert raised.value.reason == "deadlock detected"
        await waiting[0]  # the other session goes on once this transaction is rolled back
    finally:
        await other.close()
        await engine.dispose()


async def _until_waiting(url: str, pid: int) -> None:
    """Return once the backend ``pid`` waits for a lock (a minute at most)."""
    watcher = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
    try:
        with anyio.fail_after(60):
            while not await watcher.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            ):
                await anyio.sleep(0.01)
    finally:
        await watcher.close()

"""Engines set up for concurrent writers (optimist.sqlalchemy.engine)."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from optimist.sqlalchemy import SQLITE_BEGIN, autocommit, create_engine, reading, transaction
from optimist.sqlalchemy.engine import POSTGRES_POOL, SQLITE_POOL
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh SQLite file with one table."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        ("journal_mode", "wal"),
        ("synchronous", 1),
        ("foreign_keys", 1),
        ("busy_timeout", 30_000),
    ],
    ids=["wal", "synchronous-normal", "foreign-keys", "busy-timeout"],
)
async def test_sqlite_connections_get_the_pragmas(
    sqlite_engine: AsyncEngine, pragma: str, expected: object
) -> None:
    """Every SQLite connection runs in WAL mode with the settings concurrency needs."""
    async with sqlite_engine.connect() as connection:
        assert await connection.scalar(text(f"PRAGMA {pragma}")) == expected


async def test_sqlite_busy_timeout_is_configurable(tmp_path: Path) -> None:
    """The busy timeout is a keyword, in seconds."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", busy_timeout=2.5)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 2500
    finally:
        await engine.dispose()


async def test_sqlite_transaction_takes_the_write_lock_at_begin(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """BEGIN IMMEDIATE: an open transaction holds the lock before its first statement."""
    impatient = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}", busy_timeout=0.05)
    try:
        async with sqlite_engine.begin():
            with pytest.raises(OperationalError, match="locked"):
                async with impatient.begin():
                    pass
    finally:
        await impatient.dispose()


async def test_sqlite_writer_waits_for_the_lock_instead_of_failing(
    sqlite_engine: AsyncEngine,
) -> None:
    """A second writer waits out the first (busy timeout) rather than failing."""
    released = anyio.Event()

    async def holder() -> None:
        async with sqlite_engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (1)"))
            await anyio.sleep(0.3)
        released.set()

    async with anyio.create_task_group() as group:
        group.start_soon(holder)
        await anyio.sleep(0.05)
        started = time.monotonic()
        async with sqlite_engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (2)"))
        assert released.is_set()
        assert time.monotonic() - started > 0.1
    async with sqlite_engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM t")) == 2


async def test_sqlite_connection_returned_in_a_transaction_is_rolled_back(
    sqlite_engine: AsyncEngine,
) -> None:
    """A pooled connection given back with an open transaction loses its writes and its lock."""
    proxied = await sqlite_engine.raw_connection()
    driver = proxied.driver_connection
    assert driver is not None
    await driver.execute("BEGIN IMMEDIATE")
    await driver.execute("INSERT INTO t VALUES (1)")
    await greenlet_spawn(proxied.close)
    assert not driver.in_transaction
    async with sqlite_engine.begin() as connection:
        await connection.execute(text("INSERT INTO t VALUES (2)"))
        assert await connection.scalar(text("SELECT count(*) FROM t")) == 1


async def test_sqlite_reads_run_beside_a_writer(sqlite_engine: AsyncEngine) -> None:
    """A read transaction takes no write lock: it runs while a writer holds it."""
    async with sqlite_engine.begin() as writer:
        await writer.execute(text("INSERT INTO t VALUES (1)"))
        with anyio.fail_after(1):
            async with reading(sqlite_engine).begin() as reader:
                # WAL: the reader sees the last committed state, not the open write.
                assert await reader.scalar(text("SELECT count(*) FROM t")) == 0


async def test_sqlite_read_on_a_callers_connection_takes_no_write_lock(
    sqlite_engine: AsyncEngine,
) -> None:
    """transaction(read=True) on an idle connection begins deferred, then restores the mode."""
    async with sqlite_engine.connect() as connection:
        async with sqlite_engine.begin():
            with anyio.fail_after(1):
                async with transaction(connection, read=True) as reading_connection:
                    await reading_connection.scalar(text("SELECT count(*) FROM t"))
        options = connection.sync_connection.get_execution_options()  # type: ignore[union-attr]
        assert options[SQLITE_BEGIN] == "IMMEDIATE"


async def test_unknown_begin_mode_is_refused(sqlite_engine: AsyncEngine) -> None:
    """A misspelt begin mode fails loudly instead of running unlocked."""
    with pytest.raises(ValueError, match=SQLITE_BEGIN):
        async with sqlite_engine.execution_options(**{SQLITE_BEGIN: "LAZY"}).begin():
            pass


def test_reading_leaves_postgres_engines_alone(postgres_url: str) -> None:
    """Only SQLite needs a separate read mode."""
    engine = create_engine(postgres_url)
    assert reading(engine) is engine


def test_a_sqlite_file_gets_a_fixed_pool(tmp_path: Path) -> None:
    """A SQLite file's engine keeps its connections (no overflow to open and close)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fixed.db'}")
    pool = engine.pool
    assert pool.size() == SQLITE_POOL["pool_size"]  # type: ignore[attr-defined]
    assert pool._max_overflow == 0  # type: ignore[attr-defined]
    mine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}", max_overflow=3)
    assert mine.pool._max_overflow == 3  # type: ignore[attr-defined]


def test_an_in_memory_sqlite_database_keeps_its_one_connection() -> None:
    """The fixed pool's settings are not forced on a pool that has one connection."""
    engine = create_engine("sqlite+aiosqlite://")
    assert not isinstance(engine.pool, QueuePool)


def test_postgres_engine_gets_a_resilient_pool(postgres_url: str) -> None:
    """PostgreSQL engines recycle and bound their pool, and ping only idle connections."""
    engine = create_engine(postgres_url)
    pool = engine.pool
    assert pool.size() == POSTGRES_POOL["pool_size"]  # type: ignore[attr-defined]
    assert pool._pre_ping is False
    assert pool._recycle == POSTGRES_POOL["pool_recycle"]


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
        return pid


async def _terminate(postgres_url: str, pid: int) -> None:
    admin = create_engine(postgres_url, pool_size=1)
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


async def test_postgres_idle_connection_closed_by_the_server_is_replaced(
    postgres_url: str,
) -> None:
    """A pooled connection the server closed while it sat idle is pinged and replaced."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, idle_ping=0.0)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


async def test_postgres_closed_connection_is_replaced_without_a_ping(postgres_url: str) -> None:
    """Without the idle ping, a pooled connection asyncpg knows is closed is still replaced."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, idle_ping=None)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
            driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await _terminate(postgres_url, first)
        with anyio.fail_after(30):
            while not driver.is_closed():
                await anyio.sleep(0.01)
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


def test_postgres_pool_settings_can_be_overridden(postgres_url: str) -> None:
    """Keywords win over the defaults."""
    engine = create_engine(postgres_url, pool_size=3, pool_pre_ping=False)
    assert engine.pool.size() == 3  # type: ignore[attr-defined]
    assert engine.pool._pre_ping is False


INSERT_ONE = text(
    "INSERT INTO items (id, tenant, counter, etag, updated_at, created_seq) "
    "VALUES ('x', 1, 0, 'e', '2025-01-01 00:00:00.000000', 1)"
)


async def count_items(engine: AsyncEngine) -> int | None:
    async with engine.connect() as connection:
        count: int | None = await connection.scalar(text("SELECT count(*) FROM items"))
        return count


async def test_a_disposed_engine_is_freed_with_what_was_derived_from_it(
    database_url: str,
) -> None:
    """An engine that autocommit() and reading() derived engines from is freed once unused."""
    engine = create_engine(database_url)
    async with autocommit(engine) as connection:
        await connection.execute(text("SELECT 1"))
    async with reading(engine).connect() as connection:
        await connection.execute(text("SELECT 1"))
    await engine.dispose()
    freed = weakref.ref(engine.sync_engine)
    del engine, connection
    gc.collect()
    assert freed() is None


async def test_transaction_on_an_engine_commits(store: Store) -> None:
    """transaction(engine) commits what the block wrote."""
    async with transaction(store.engine) as connection:
        await connection.execute(INSERT_ONE)
    assert await count_items(store.engine) == 1


async def test_transaction_rolls_back_on_error(store: Store) -> None:
    """An error inside the block undoes its writes."""

    async def write_then_fail() -> None:
        async with transaction(store.engine) as connection:
            await connection.execute(INSERT_ONE)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await count_items(store.engine) == 0


async def test_autocommit_commits_each_statement_at_once(store: Store) -> None:
    """autocommit(engine): a write is visible to others before the block ends."""
    async with autocommit(store.engine) as connection:
        await connection.execute(INSERT_ONE)
        assert await count_items(store.engine) == 1


async def test_autocommit_keeps_what_was_written_before_an_error(store: Store) -> None:
    """autocommit(engine) has no transaction to roll back: each statement stands."""

    async def write_then_fail() -> None:
        async with autocommit(store.engine) as connection:
            await connection.execute(INSERT_ONE)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await count_items(store.engine) == 1


async def test_autocommit_joins_an_open_transaction(store: Store) -> None:
    """On a caller's connection in a transaction, autocommit() neither commits nor rolls back."""
    async with store.engine.connect() as connection:
        outer = await connection.begin()
        async with autocommit(connection) as joined:
            assert joined is connection
            await joined.execute(INSERT_ONE)
        assert connection.in_transaction()
        await outer.rollback()
    assert await count_items(store.engine) == 0


async def test_transaction_on_sqlite_still_begins_after_autocommit(
    sqlite_engine: AsyncEngine,
) -> None:
    """A transaction on the same pool still takes the write lock at BEGIN."""
    async with autocommit(sqlite_engine) as connection:
        await connection.execute(text("INSERT INTO t VALUES (1)"))
    async with transaction(sqlite_engine) as connection:
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        assert raw.driver_connection.in_transaction


async def test_transaction_joins_an_open_transaction(store: Store) -> None:
    """Inside a caller's transaction, transaction() neither commits nor rolls back."""
    async with store.engine.connect() as connection:
        outer = await connection.begin()
        async with transaction(connection) as joined:
            assert joined is connection
        assert connection.in_transaction()
        await outer.rollback()

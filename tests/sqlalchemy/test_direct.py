"""Prepared statements on the driver's connection (optimist.sqlalchemy._direct)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Executable, Integer, Select, bindparam, event, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from optimist.errors import ResourceExists, ServiceUnavailable
from optimist.sqlalchemy import _direct, create, create_engine, find, get, transaction, update
from optimist.sqlalchemy._direct import INDIRECT, Indirect, all_rows, transaction_rows
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._statements import Prepared, page_of, read_one, update_one
from tests.support.databases import execute, terminate_backends
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def one_row(
    engine: AsyncEngine, statement: Executable, parameters: Mapping[str, Any]
) -> dict[str, Any] | Indirect | None:
    """The one row ``statement`` returns on the driver (None: none), or INDIRECT."""
    found = await all_rows(engine, statement, parameters)
    if found is INDIRECT:
        return INDIRECT
    assert len(found) <= 1
    return found[0] if found else None


async def _row(store: Store, key: str = "a") -> dict[str, Any]:
    await create(store.engine, store.items, {"id": key, "name": "n", "counter": 3})
    statement, parameters = read_one(store.items, (key,), {"tenant": 1})
    found = await one_row(store.engine, statement, parameters)
    assert isinstance(found, dict)
    return found


async def test_a_read_matches_what_sqlalchemy_returns(store: Store) -> None:
    """A row read on the driver equals the row SQLAlchemy's execution returns, types and all."""
    direct = await _row(store)
    async with store.engine.connect() as connection:
        through = await find(connection, store.items, "a", scope={"tenant": 1})
    assert through is not None
    assert direct == dict(through.values)
    assert direct["updated_at"].tzinfo is not None


async def test_a_missing_row_is_none(store: Store) -> None:
    """No row at the key is None, not the fallback."""
    statement, parameters = read_one(store.items, ("nobody",), {"tenant": 1})
    assert await one_row(store.engine, statement, parameters) is None


async def test_a_conditional_update_writes_on_the_driver(store: Store) -> None:
    """The prepared UPDATE applies its values and new version, and a stale tag writes nothing."""
    before = await _row(store)
    now = datetime.now(UTC)
    values = {"counter": 4, "etag": "next", "updated_at": now}
    prepared = update_one(store.items, ("a",), {"tenant": 1}, values, before["etag"])
    assert prepared is not None
    written = await one_row(store.engine, *prepared)
    assert isinstance(written, dict)
    assert (written["counter"], written["etag"], written["updated_at"]) == (4, "next", now)
    assert await one_row(store.engine, *prepared) is None
    assert (await get(store.engine, store.items, "a", scope={"tenant": 1}))["counter"] == 4


async def test_statement_listeners_take_sqlalchemy_s_path(store: Store) -> None:
    """An engine whose cursor execution is observed runs everything through SQLAlchemy."""
    await _row(store)
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        statement, parameters = read_one(store.items, ("a",), {"tenant": 1})
        assert await one_row(store.engine, statement, parameters) is INDIRECT
        await get(store.engine, store.items, "a", scope={"tenant": 1})
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(seen) == 1


@pytest.mark.parametrize("hook", ["before_execute", "after_execute", "after_cursor_execute"])
async def test_other_execution_listeners_take_sqlalchemy_s_path(store: Store, hook: str) -> None:
    """Any listener of statement execution keeps the engine on SQLAlchemy's execution."""
    await _row(store)

    def observe(*_args: Any) -> None:
        return None

    event.listen(store.engine.sync_engine, hook, observe)
    try:
        statement, parameters = read_one(store.items, ("a",), {"tenant": 1})
        assert await one_row(store.engine, statement, parameters) is INDIRECT
    finally:
        event.remove(store.engine.sync_engine, hook, observe)


async def test_a_schema_translating_engine_takes_sqlalchemy_s_path(store: Store) -> None:
    """An engine that maps schema names is not bypassed: the SQL names change as it runs."""
    await _row(store)
    mapped = store.engine.execution_options(schema_translate_map={None: None})
    statement, parameters = read_one(store.items, ("a",), {"tenant": 1})
    assert await one_row(mapped, statement, parameters) is INDIRECT
    record = await get(mapped, store.items, "a", scope={"tenant": 1})
    assert record["id"] == "a"


async def test_an_echoing_engine_takes_sqlalchemy_s_path(database_url: str) -> None:
    """An engine that logs its statements is not bypassed."""
    async with open_store(database_url) as store:
        await _row(store)
    engine = create_engine(database_url, echo=True)
    try:
        statement, parameters = read_one(store.items, ("a",), {"tenant": 1})
        assert await one_row(engine, statement, parameters) is INDIRECT
    finally:
        await engine.dispose()


async def test_cancelled_statement_discards_its_connection(postgres_url: str) -> None:
    """A task cancelled while the driver works leaves no connection checked out or reused."""
    engine = create_engine(postgres_url)
    try:
        sleeping: Select[Any] = select(literal_column("pg_sleep(5)").label("slept"))
        with anyio.move_on_after(0.3):
            await one_row(engine, sleeping, {})
        pool = engine.sync_engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        answer = await one_row(engine, select(literal_column("41 + 1").label("n")), {})
        assert answer == {"n": 42}
    finally:
        await engine.dispose()


async def test_a_read_whose_session_the_server_ended_runs_on_a_new_connection(
    postgres_url: str,
) -> None:
    """A read whose pooled session the server terminated answers from a new session."""
    engine = create_engine(postgres_url)
    try:
        who: Select[Any] = select(literal_column("pg_backend_pid()").label("pid"))
        first = await one_row(engine, who, {})
        assert isinstance(first, dict)
        await terminate_backends(postgres_url, f"pid = {int(first['pid'])}")
        outcome = await one_row(engine, who, {})
        assert isinstance(outcome, dict)
        assert outcome["pid"] != first["pid"]
    finally:
        await engine.dispose()


async def test_a_write_never_sent_runs_on_a_new_connection(postgres_url: str) -> None:
    """A write whose connection the driver knew closed before sending runs once, elsewhere."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url) as store:
        await create(store.engine, store.items, {"id": "a", "counter": 0})
        # Without create_engine's checkout test, the closed connection reaches the driver.
        plain = create_async_engine(postgres_url, pool_size=1, max_overflow=0)
        try:
            proxied = await plain.raw_connection()
            await proxied.driver_connection.close()  # type: ignore[union-attr]
            proxied.close()
            values = {"counter": 1, "etag": "next", "updated_at": datetime.now(UTC)}
            prepared = update_one(store.items, ("a",), {"tenant": 1}, values, None)
            assert prepared is not None
            written = await one_row(plain, *prepared)
        finally:
            await plain.dispose()
        assert isinstance(written, dict)
        assert (await get(store.engine, store.items, "a"))["counter"] == 1


async def test_a_value_the_database_refuses_stays_an_error(postgres_url: str) -> None:
    """A parameter PostgreSQL cannot read is SQLAlchemy's DBAPIError, not a 503."""
    engine = create_engine(postgres_url)
    try:
        typed: Select[Any] = select(literal_column("1").label("n")).where(
            literal_column("1") == bindparam("x", type_=Integer)
        )
        with pytest.raises(DBAPIError):
            await fetch(engine, Prepared(typed, {"x": "not a number"}))
    finally:
        await engine.dispose()


async def test_a_page_matches_what_sqlalchemy_returns(store: Store) -> None:
    """A first page read on the driver equals SQLAlchemy's, watermark column included."""
    for key in "abcde":
        await create(store.engine, store.items, {"id": key})
    statement, parameters = page_of(
        store.items, {"tenant": 1}, limit=3, after=None, watermark=None, descending=False
    )
    direct = await all_rows(store.engine, statement, parameters)
    async with store.engine.connect() as connection:
        through = [
            dict(row) for row in (await connection.execute(statement, parameters)).mappings()
        ]
    assert direct == through
    assert [row["id"] for row in through] == ["a", "b", "c"]


async def test_one_process_s_sqlite_writers_take_turns(tmp_path: Path) -> None:
    """Concurrent updates in one process never meet SQLite's lock, even with no busy wait."""
    async with open_store(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}", busy_timeout=0) as store:
        for key in "abcd":
            await create(store.engine, store.items, {"id": key})

        async def writer(key: str) -> None:
            for counter in range(20):
                await update(store.engine, store.items, key, {"counter": counter})

        async with anyio.create_task_group() as group:
            for index in range(32):
                group.start_soon(writer, "abcd"[index % 4])
        final = await get(store.engine, store.items, "a")
        assert final["counter"] == 19


def _count_driver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, record the SQL of each statement sent on the driver's connection."""
    sent: list[str] = []
    direct = _direct._fetch

    async def recorded(connection: Any, plan: Any, arguments: Any, describe: bool) -> Any:
        sent.append(plan.sql)
        return await direct(connection, plan, arguments, describe)

    monkeypatch.setattr(_direct, "_fetch", recorded)
    return sent


async def test_writes_in_a_transaction_run_on_the_driver_within_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prepared write given a connection in a transaction goes to the driver, and it is
    that transaction's: rolled back with it, as SQLAlchemy's would be."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url) as store:
        await create(store.engine, store.items, {"id": "a", "counter": 0})
        sent = _count_driver_calls(monkeypatch)

        async def write_then_fail() -> None:
            async with transaction(store.engine) as connection:
                written = await update(connection, store.items, "a", {"counter": 5})
                assert written["counter"] == 5
                assert (await get(connection, store.items, "a"))["counter"] == 5
                raise LookupError

        with pytest.raises(LookupError):
            await write_then_fail()
        assert len(sent) == 2
        assert (await get(store.engine, store.items, "a"))["counter"] == 0


async def test_a_refusal_in_a_transaction_is_its_typed_error(postgres_url: str) -> None:
    """A unique value refused on the driver inside a transaction is ResourceExists."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url) as store:
        await create(store.engine, store.items, {"id": "a", "email": "a@example.com"})
        await create(store.engine, store.items, {"id": "b"})
        with pytest.raises(ResourceExists):
            async with transaction(store.engine) as connection:
                await update(connection, store.items, "b", {"email": "a@example.com"})
        assert (await get(store.engine, store.items, "b"))["email"] is None


async def test_no_transaction_no_driver(store: Store) -> None:
    """Outside a transaction, or on SQLite, a statement given a connection is SQLAlchemy's."""
    statement, parameters = read_one(store.items, ("a",), {"tenant": 1})
    async with store.engine.connect() as connection:
        assert await transaction_rows(connection, statement, parameters) is INDIRECT


async def test_a_session_ended_in_a_transaction_is_a_503_and_its_connection_goes(
    postgres_url: str,
) -> None:
    """A transaction whose session the server ended fails its next statement on the
    driver with ServiceUnavailable, and the engine goes on with new connections."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url) as store:
        await create(store.engine, store.items, {"id": "a", "counter": 0})

        async def write_after_termination() -> None:
            async with transaction(store.engine) as connection:
                pid = await connection.scalar(select(literal_column("pg_backend_pid()")))
                assert pid is not None
                await terminate_backends(postgres_url, f"pid = {int(pid)}")
                # Until asyncpg has read the server's goodbye, a statement races it.
                driver: Any = (await connection.get_raw_connection()).driver_connection
                with anyio.fail_after(10):
                    while not driver.is_closed():
                        await anyio.sleep(0.01)
                await update(connection, store.items, "a", {"counter": 1})

        with pytest.raises(ServiceUnavailable):
            await write_after_termination()
        await update(store.engine, store.items, "a", {"counter": 2})
        assert (await get(store.engine, store.items, "a"))["counter"] == 2

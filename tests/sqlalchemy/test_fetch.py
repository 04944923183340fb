"""One statement, on the driver or through SQLAlchemy (optimist.sqlalchemy._fetch)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Select, event, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from optimist.errors import OptimistError, ResourceExists
from optimist.sqlalchemy import _fetch, create, create_engine, get, update
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._statements import page_of, read_one, update_one
from tests.support.stores import Store, on_the_driver, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


def _version() -> dict[str, Any]:
    return {"etag": "next", "updated_at": datetime.now(UTC)}


async def test_a_prepared_read_on_an_engine_runs_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prepared SELECT given an engine is one statement on the driver's connection."""
    await create(store.engine, store.items, {"id": "a"})
    ran = on_the_driver(monkeypatch)
    rows = await fetch(store.engine, read_one(store.items, ("a",), {}))
    assert ran == [False]
    assert [row["id"] for row in rows] == ["a"]


async def test_a_prepared_write_on_an_engine_runs_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prepared UPDATE given an engine is one write on the driver's connection."""
    await create(store.engine, store.items, {"id": "a"})
    prepared = update_one(store.items, ("a",), {}, {"counter": 7, **_version()}, None)
    assert prepared is not None
    ran = on_the_driver(monkeypatch)
    rows = await fetch(store.engine, prepared, writes=store.items, values={"counter": 7})
    assert ran == [True]
    assert [row["counter"] for row in rows] == [7]


async def test_a_statement_built_for_the_call_runs_through_sqlalchemy(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-off statement never reaches the driver's plan cache: SQLAlchemy runs it."""
    await create(store.engine, store.items, {"id": "a"})

    async def declined(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a one-off statement went to the driver")

    monkeypatch.setattr(_fetch, "all_rows", declined)
    table = store.items.table
    rows = await fetch(store.engine, select(table.c.id).where(table.c.id == "a"))
    assert rows == [{"id": "a"}]


async def test_a_page_built_for_the_call_takes_its_parameters(store: Store) -> None:
    """A statement built on a prepared one runs with the parameters given beside it."""
    for key in "abc":
        await create(store.engine, store.items, {"id": key})
    prepared = page_of(store.items, {}, limit=2, after=None, watermark=3, descending=False)
    statement = cast("Select[Any]", prepared.statement).where(store.items.table.c.id != "a")
    rows = await fetch(store.engine, statement, prepared.parameters)
    assert [row["id"] for row in rows] == ["b", "c"]


async def test_an_observed_engine_runs_the_statement_through_sqlalchemy(store: Store) -> None:
    """When the fast path declines, the same statement runs once through SQLAlchemy."""
    await create(store.engine, store.items, {"id": "a"})
    seen: list[str] = []

    def count(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        rows = await fetch(store.engine, read_one(store.items, ("a",), {}))
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert [row["id"] for row in rows] == ["a"]
    assert len(seen) == 1


@pytest.mark.parametrize("joined", [False, True], ids=["engine", "connection"])
async def test_no_row_is_an_empty_list(store: Store, joined: bool) -> None:
    """A statement that returns nothing is no rows, on the driver as through SQLAlchemy."""
    async with store.engine.connect() as connection:
        bind = connection if joined else store.engine
        assert await fetch(bind, read_one(store.items, ("nope",), {})) == []


async def test_a_connection_s_transaction_is_joined(store: Store) -> None:
    """Given a connection in a transaction, a write is the caller's to roll back."""
    await create(store.engine, store.items, {"id": "a", "counter": 1})
    prepared = update_one(store.items, ("a",), {}, {"counter": 2, **_version()}, None)
    assert prepared is not None
    async with store.engine.connect() as connection, connection.begin() as outer:
        rows = await fetch(connection, prepared, writes=store.items, values={"counter": 2})
        assert [row["counter"] for row in rows] == [2]
        await outer.rollback()
    assert (await get(store.engine, store.items, "a"))["counter"] == 1


@pytest.mark.parametrize("joined", [False, True], ids=["engine", "connection"])
async def test_a_refused_value_is_a_typed_error(store: Store, joined: bool) -> None:
    """A value the database refuses is the error about it, on either route."""
    await create(store.engine, store.items, {"id": "a", "email": "a@example.com"})
    await create(store.engine, store.items, {"id": "b", "email": "b@example.com"})
    values = {"email": "a@example.com"}
    prepared = update_one(store.items, ("b",), {}, {**values, **_version()}, None)
    assert prepared is not None
    async with store.engine.connect() as connection:
        bind = connection if joined else store.engine
        with pytest.raises(ResourceExists) as raised:
            await fetch(bind, prepared, writes=store.items, values=values)
    assert raised.value.key == {"email": "a@example.com"}


async def test_a_refused_write_leaves_the_pool_serving(store: Store) -> None:
    """A write the database refuses is SQLAlchemy's typed error; the next write goes through."""
    await create(store.engine, store.items, {"id": "a", "email": "a@example.com"})
    await create(store.engine, store.items, {"id": "b", "email": "b@example.com"})
    for _ in range(3):
        with pytest.raises(ResourceExists):
            await update(store.engine, store.items, "b", {"email": "a@example.com"})
    moved = await update(store.engine, store.items, "b", {"email": "c@example.com"})
    assert moved["email"] == "c@example.com"


async def test_an_error_it_cannot_name_is_raised_as_it_is(store: Store) -> None:
    """A database error that is no refused value stays SQLAlchemy's error."""
    with pytest.raises(DBAPIError) as raised:
        await fetch(store.engine, text("UPDATE nowhere SET x = 1"), writes=store.items, values={})
    assert not isinstance(raised.value, OptimistError)


async def test_without_writes_a_refusal_is_not_translated(store: Store) -> None:
    """Without ``writes`` a refused statement is SQLAlchemy's error, even a constraint's."""
    await create(store.engine, store.items, {"id": "a", "email": "a@example.com"})
    await create(store.engine, store.items, {"id": "b"})
    table = store.items.table
    taken = sql_update(table).where(table.c.id == "b").values(email="a@example.com")
    with pytest.raises(DBAPIError):
        await fetch(store.engine, taken.returning(table.c.id))


async def test_an_echoing_engine_still_fetches_the_row(database_url: str) -> None:
    """An echoing engine reads through SQLAlchemy and returns the same row."""
    async with open_store(database_url) as store:
        created = await create(store.engine, store.items, {"id": "a"})
    engine = create_engine(database_url, echo=True)
    try:
        rows = await fetch(engine, read_one(store.items, ("a",), {}))
    finally:
        await engine.dispose()
    assert [store.items.record(row) for row in rows] == [created]

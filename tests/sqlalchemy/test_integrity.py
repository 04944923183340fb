"""Values the database refuses become typed errors (optimist.sqlalchemy._integrity)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String
from sqlalchemy.exc import IntegrityError, OperationalError

from optimist.errors import InvalidInput, ResourceExists
from optimist.sqlalchemy import create, create_engine, find, update, versioned_table
from optimist.sqlalchemy._integrity import translate
from tests.support.stores import Store, declare, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def test_create_with_taken_unique_value_is_a_conflict(store: Store) -> None:
    """A unique violation on another column is a 409 naming that column and value."""
    await create(store.engine, store.items, {"id": "a", "email": "x@example.com"})
    with pytest.raises(ResourceExists) as raised:
        await create(store.engine, store.items, {"id": "b", "email": "x@example.com"})
    assert raised.value.key == {"email": "x@example.com"}
    assert await find(store.engine, store.items, "b") is None


async def test_update_to_taken_unique_value_is_a_conflict(store: Store) -> None:
    """An update that collides on a unique column is a 409 and changes nothing."""
    await create(store.engine, store.items, {"id": "a", "email": "x@example.com"})
    before = await create(store.engine, store.items, {"id": "b", "email": "y@example.com"})
    with pytest.raises(ResourceExists) as raised:
        await update(store.engine, store.items, "b", {"email": "x@example.com"})
    assert raised.value.key == {"email": "x@example.com"}
    assert await find(store.engine, store.items, "b") == before


@pytest.mark.parametrize(
    ("values", "field"),
    [({"percent": 101}, "ck_percent"), ({"counter": None}, "counter")],
    ids=["check", "not-null"],
)
async def test_update_violating_a_constraint_is_invalid_input(
    store: Store, values: dict[str, Any], field: str
) -> None:
    """CHECK and NOT NULL violations are 400s naming the constraint or column."""
    await create(store.engine, store.items, {"id": "a"})
    with pytest.raises(InvalidInput) as raised:
        await update(store.engine, store.items, "a", values)
    assert field in raised.value.field


async def test_dangling_foreign_key_is_invalid_input(database_url: str) -> None:
    """A reference to a missing row (foreign keys are on in SQLite too) is a 400."""
    items, _ = declare()
    links = versioned_table(
        "links",
        items.table.metadata,
        Column("id", String(10), primary_key=True),
        Column("item_id", String(40), ForeignKey("items.id")),
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(items.table.metadata.create_all)
        with pytest.raises(InvalidInput, match="existing reference"):
            await create(engine, links, {"id": "l", "item_id": "missing"})
    finally:
        await engine.dispose()


async def test_too_long_value_is_invalid_input_on_postgres(postgres_url: str) -> None:
    """A value longer than its column (PostgreSQL enforces lengths; SQLite does not) is a 400."""
    metadata = MetaData()
    short = versioned_table(
        "short", metadata, Column("id", Integer, primary_key=True), Column("code", String(3))
    )
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        with pytest.raises(InvalidInput):
            await create(engine, short, {"code": "toolong"})
    finally:
        await engine.dispose()


def test_unrelated_database_errors_are_not_translated() -> None:
    """An operational error (not the client's fault) stays what it is."""
    items, _ = declare()
    error = OperationalError("SELECT 1", {}, Exception("database is locked"))
    assert translate(error, items, {}) is None


def test_unknown_integrity_message_is_not_translated() -> None:
    """An integrity error this module cannot read is left to the caller."""
    items, _ = declare()
    error = IntegrityError("INSERT", {}, Exception("something odd"))
    assert translate(error, items, {}) is None

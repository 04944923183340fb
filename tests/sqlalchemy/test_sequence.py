"""The commit-ordered write sequence (optimist.sqlalchemy._sequence)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from sqlalchemy import MetaData

from optimist.sqlalchemy import create, page, sequences
from optimist.sqlalchemy._sequence import SEQUENCES_TABLE, high_water
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


def test_sequences_table_is_declared_once_per_metadata() -> None:
    """The counter table is declared on first use and reused after."""
    metadata = MetaData()
    first = sequences(metadata)
    assert first.name == SEQUENCES_TABLE
    assert sequences(metadata) is first


async def test_high_water_is_zero_before_any_create(store: Store) -> None:
    """An unused table's counter reads 0."""
    async with store.engine.connect() as connection:
        assert await high_water(connection, store.items.counters, store.items.sequence_name) == 0


async def test_creates_number_rows_strictly_upwards(store: Store) -> None:
    """Each create takes the next number; the counter is the high-water mark."""
    numbers = [
        (await create(store.engine, store.items, {"id": f"k{n}"}))["created_seq"] for n in range(5)
    ]
    assert numbers == sorted(set(numbers))
    async with store.engine.connect() as connection:
        assert await high_water(connection, store.items.counters, "items") == numbers[-1]


async def test_tables_have_separate_counters(store: Store) -> None:
    """Creates in one table do not advance another table's counter."""
    await create(store.engine, store.items, {"id": "a"})
    await create(store.engine, store.items, {"id": "b"})
    weak = await create(store.engine, store.weak_items, {"id": "w"})
    assert weak["created_seq"] == 1


async def test_numbers_of_deleted_rows_are_not_reused(store: Store) -> None:
    """The counter only grows: a new row never takes a deleted row's number."""
    last = await create(store.engine, store.items, {"id": "a"})
    async with store.engine.begin() as connection:
        await connection.execute(store.items.table.delete())
    again = await create(store.engine, store.items, {"id": "b"})
    assert again["created_seq"] > last["created_seq"]


async def test_uncommitted_create_stays_above_the_watermark(store: Store) -> None:
    """A create still open when a first page is read is numbered above its watermark.

    The open create holds the counter; a second create waits for it, and a page read
    meanwhile sees neither. This is what keeps the watermark strict on PostgreSQL,
    where a SEQUENCE would let a lower number commit after a higher one.
    """
    await create(store.engine, store.items, {"id": "before"})
    numbers: dict[str, int] = {}
    async with store.engine.connect() as slow:
        transaction = await slow.begin()
        numbers["slow"] = (await create(slow, store.items, {"id": "slow"}))["created_seq"]

        async def fast() -> None:
            numbers["fast"] = (await create(store.engine, store.items, {"id": "fast"}))[
                "created_seq"
            ]

        async with anyio.create_task_group() as group:
            group.start_soon(fast)
            await anyio.sleep(0.3)
            assert "fast" not in numbers, "a second create did not wait for the open one"
            first = await page(store.engine, store.items, limit=10)
            assert [r["id"] for r in first.records] == ["before"]
            assert first.watermark < numbers["slow"]
            await transaction.commit()
    assert numbers["slow"] < numbers["fast"]

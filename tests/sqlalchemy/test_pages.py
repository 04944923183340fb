"""Keyset pages with a snapshot watermark (optimist.sqlalchemy.pages)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from sqlalchemy import event

from optimist.errors import ResourceNotFound
from optimist.sqlalchemy import Page, create, delete, page, update
from tests.support.stores import Store, on_the_driver, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def fill(store: Store, count: int, prefix: str = "i", tenant: int = 1) -> list[str]:
    keys = [f"{prefix}{n:03d}" for n in range(count)]
    for key in keys:
        await create(store.engine, store.items, {"id": key, "tenant": tenant})
    return keys


def ids(result: Page) -> list[str]:
    return [record["id"] for record in result.records]


async def traverse(store: Store, limit: int, **options: object) -> list[str]:
    """Every id of a full traversal, page after page."""
    seen: list[str] = []
    first = await page(store.engine, store.items, limit=limit, **options)  # type: ignore[arg-type]
    seen += ids(first)
    position, watermark = first.next_position, first.watermark
    while position is not None:
        following = await page(
            store.engine,
            store.items,
            limit=limit,
            after=position,
            watermark=watermark,
            **options,  # type: ignore[arg-type]
        )
        seen += ids(following)
        position = following.next_position
    return seen


async def test_traversal_returns_every_row_once_in_creation_order(store: Store) -> None:
    """Pages follow creation order and end with no next position."""
    keys = await fill(store, 7)
    assert await traverse(store, limit=3) == keys


async def test_exactly_full_last_page_has_no_next_position(store: Store) -> None:
    """A page that ends the table says so, even when it is exactly full."""
    await fill(store, 4)
    result = await page(store.engine, store.items, limit=4)
    assert len(result.records) == 4
    assert result.next_position is None


async def test_empty_table_gives_an_empty_last_page(store: Store) -> None:
    """No rows: no records, no next page, watermark 0."""
    assert await page(store.engine, store.items, limit=5) == Page((), None, 0)


async def test_first_page_watermark_is_the_high_water_mark(store: Store) -> None:
    """The first page's watermark is the sequence number of the latest create."""
    await fill(store, 3)
    latest = await create(store.engine, store.items, {"id": "z"})
    result = await page(store.engine, store.items, limit=1)
    assert result.watermark == latest["created_seq"]


async def test_first_page_records_hold_the_tables_columns_only(store: Store) -> None:
    """The high-water mark read with a first page does not leak into its records."""
    await fill(store, 2)
    result = await page(store.engine, store.items, limit=5)
    assert all(set(r.values) == set(store.items.table.c.keys()) for r in result.records)


async def test_empty_first_page_of_a_scope_still_has_the_high_water_mark(store: Store) -> None:
    """A tenant with no rows yet starts its traversal at the table's current mark."""
    await fill(store, 3, tenant=1)
    result = await page(store.engine, store.items, limit=5, scope={"tenant": 2})
    assert result == Page((), None, 3)


async def test_rows_created_after_the_first_page_stay_out(store: Store) -> None:
    """A create between pages is above the watermark and never shows up."""
    keys = await fill(store, 4)
    first = await page(store.engine, store.items, limit=2)
    await create(store.engine, store.items, {"id": "late"})
    rest = await page(
        store.engine, store.items, limit=10, after=first.next_position, watermark=first.watermark
    )
    assert ids(first) + ids(rest) == keys


async def test_deleting_a_seen_row_shifts_nothing(store: Store) -> None:
    """Deleting a row already served moves no other row off the next page (keyset, not OFFSET)."""
    keys = await fill(store, 6)
    first = await page(store.engine, store.items, limit=3)
    await delete(store.engine, store.items, keys[0])
    rest = await page(
        store.engine, store.items, limit=3, after=first.next_position, watermark=first.watermark
    )
    assert ids(rest) == keys[3:]


async def test_deleting_an_unseen_row_drops_only_that_row(store: Store) -> None:
    """A row deleted before its page is served is skipped; the others all come."""
    keys = await fill(store, 6)
    first = await page(store.engine, store.items, limit=2)
    await delete(store.engine, store.items, keys[3])
    rest = await page(
        store.engine, store.items, limit=10, after=first.next_position, watermark=first.watermark
    )
    assert ids(rest) == [keys[2], keys[4], keys[5]]


async def test_updating_a_seen_row_does_not_bring_it_back(store: Store) -> None:
    """An update keeps the row's position: it is not served twice."""
    keys = await fill(store, 4)
    first = await page(store.engine, store.items, limit=2)
    await update(store.engine, store.items, keys[0], {"name": "changed"})
    rest = await page(
        store.engine, store.items, limit=10, after=first.next_position, watermark=first.watermark
    )
    assert ids(rest) == keys[2:]


async def test_scope_limits_the_traversal_to_one_tenant(store: Store) -> None:
    """A scoped traversal sees only that tenant's rows."""
    mine = await fill(store, 3, prefix="m", tenant=1)
    await fill(store, 3, prefix="t", tenant=2)
    assert await traverse(store, limit=2, scope={"tenant": 1}) == mine


async def test_filters_narrow_the_traversal(store: Store) -> None:
    """Extra filters apply to every page."""
    keys = await fill(store, 6)
    for key in keys[::2]:
        await update(store.engine, store.items, key, {"name": "even"})
    even = store.items.table.c.name == "even"
    assert await traverse(store, limit=2, filters=[even]) == keys[::2]


async def test_descending_traversal_lists_newest_first(store: Store) -> None:
    """Descending pages run from the newest row at the snapshot down to the oldest."""
    keys = await fill(store, 5)
    first = await page(store.engine, store.items, limit=2, descending=True)
    await create(store.engine, store.items, {"id": "late"})
    assert ids(first) == keys[:-3:-1]
    rest = await page(
        store.engine,
        store.items,
        limit=10,
        after=first.next_position,
        watermark=first.watermark,
        descending=True,
    )
    assert ids(first) + ids(rest) == keys[::-1]


@pytest.mark.parametrize("first", [True, False], ids=["first-page", "later-page"])
async def test_a_page_is_one_query_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """Given an engine, a page without filters is one prepared SELECT on the driver."""
    await fill(store, 5)
    ran = on_the_driver(monkeypatch)
    after, watermark = (None, None) if first else (2, 5)
    result = await page(store.engine, store.items, limit=2, after=after, watermark=watermark)
    assert ran == [False]
    assert result.watermark == 5


async def test_limit_below_one_is_refused(store: Store) -> None:
    """A page holds at least one row."""
    with pytest.raises(ValueError, match="limit"):
        await page(store.engine, store.items, limit=0)


async def test_deep_page_is_an_index_range_without_sort(store: Store) -> None:
    """The page query walks the created_seq index from the position: no OFFSET, no sort."""
    await fill(store, 30)
    captured: list[tuple[str, Any]] = []

    def capture(
        _conn: object, _cursor: object, statement: str, parameters: Any, *_: object
    ) -> None:
        if "LIMIT" in statement.upper():
            captured.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await page(store.engine, store.items, limit=5, after=20, watermark=30)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    if "OFFSET" in statement.upper():
        assert parameters[-1] == 0  # SQLAlchemy's SQLite dialect spells out OFFSET 0
    async with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = " ".join(str(row[-1]) for row in rows)
            assert "USING INDEX" in plan
            assert "TEMP B-TREE" not in plan
        else:
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            plan = " ".join(str(row[0]) for row in rows)
            assert "Index Scan" in plan
            assert "Sort" not in plan


async def test_traversal_is_a_snapshot_under_concurrent_writes(store: Store) -> None:
    """Amid concurrent creates, updates and deletes: each survivor once, no newcomer."""
    originals = await fill(store, 60)
    deleted: set[str] = set()
    created: list[str] = []
    stop = anyio.Event()
    rng = random.Random(7)

    async def churn(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            action = rng.choice(["create", "update", "delete"])
            key = rng.choice(originals)
            try:
                if action == "create":
                    record = await create(store.engine, store.items, {"id": f"w{worker}-{n}"})
                    created.append(record["id"])
                elif action == "update":
                    await update(store.engine, store.items, key, {"name": f"{worker}-{n}"})
                else:
                    await delete(store.engine, store.items, key)
                    deleted.add(key)
            except ResourceNotFound:
                pass
            await anyio.sleep(0)

    seen: list[str] = []
    async with anyio.create_task_group() as group:
        for worker in range(3):
            group.start_soon(churn, worker)
        first = await page(store.engine, store.items, limit=4)
        seen += ids(first)
        position, watermark = first.next_position, first.watermark
        while position is not None:
            await anyio.sleep(0.005)
            following = await page(
                store.engine, store.items, limit=4, after=position, watermark=watermark
            )
            seen += ids(following)
            position = following.next_position
        stop.set()

    assert len(seen) == len(set(seen)), "an item appeared twice"
    assert not set(seen) & set(created), "an item created during the traversal appeared"
    survivors = set(originals) - deleted
    assert survivors <= set(seen), "an original that was never deleted is missing"
    assert set(seen) <= set(originals)
    assert created, "no create interleaved with the traversal"
    assert deleted, "no delete interleaved with the traversal"

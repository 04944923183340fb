"""One-row statements built once per shape (optimist.sqlalchemy._statements)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData

from optimist.sqlalchemy import _statements as module
from optimist.sqlalchemy import create
from optimist.sqlalchemy._statements import page_of, read_one, update_one
from tests.support.stores import Store, declare, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


def _now() -> dict[str, object]:
    return {"etag": "fresh", "updated_at": datetime.now(UTC)}


def test_reads_of_one_shape_share_a_statement() -> None:
    """Two reads of different keys in the same scope run one statement object."""
    items, _ = declare(MetaData())
    first, first_parameters = read_one(items, ("a",), {"tenant": 1})
    second, second_parameters = read_one(items, ("b",), {"tenant": 2})
    assert first is second
    assert first_parameters != second_parameters


def test_updates_of_the_same_columns_share_a_statement() -> None:
    """Updates writing the same columns under the same kind of condition share one."""
    items, _ = declare(MetaData())
    one = update_one(items, ("a",), {}, {"counter": 1, **_now()}, "e1")
    two = update_one(items, ("b",), {}, {"counter": 2, **_now()}, "e2")
    assert one is not None
    assert two is not None
    assert one[0] is two[0]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [({"name": "x"}, "e1"), ({"counter": 1}, None)],
    ids=["other-columns", "unconditional"],
)
def test_another_shape_gets_another_statement(
    columns: dict[str, object], expected: str | None
) -> None:
    """Other columns, or no tag to expect, make a statement of their own."""
    items, _ = declare(MetaData())
    base = update_one(items, ("a",), {}, {"counter": 1, **_now()}, "e1")
    other = update_one(items, ("a",), {}, {**columns, **_now()}, expected)
    assert base is not None
    assert other is not None
    assert base[0] is not other[0]


def test_sql_expression_values_are_left_to_the_caller() -> None:
    """A value that is SQL (``counter + 1``) cannot be a bind parameter: None."""
    items, _ = declare(MetaData())
    increment = {"counter": items.table.c.counter + 1, **_now()}
    assert update_one(items, ("a",), {}, increment, None) is None


def test_shapes_beyond_the_bound_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past SHAPES shapes per table, a statement is built at every call."""
    monkeypatch.setattr(module, "SHAPES", 1)
    items, _ = declare(MetaData())
    kept, _ = read_one(items, ("a",), {})
    built, _ = read_one(items, ("a",), {"tenant": 1})
    again, _ = read_one(items, ("a",), {"tenant": 1})
    assert read_one(items, ("b",), {})[0] is kept
    assert built is not again


async def test_prepared_update_writes_only_while_the_tag_holds(store: Store) -> None:
    """The prepared UPDATE changes the row for its current tag, and not for another."""
    created = await create(store.engine, store.items, {"id": "a", "counter": 0})
    stale = update_one(store.items, ("a",), {"tenant": 1}, {"counter": 5, **_now()}, "stale")
    fresh = update_one(
        store.items, ("a",), {"tenant": 1}, {"counter": 6, **_now()}, created.etag.opaque
    )
    assert stale is not None
    assert fresh is not None
    async with store.engine.begin() as connection:
        refused = (await connection.execute(*stale)).mappings().first()
        written = (await connection.execute(*fresh)).mappings().first()
    assert refused is None
    assert written is not None
    assert written["counter"] == 6


async def test_prepared_read_respects_the_scope(store: Store) -> None:
    """The prepared SELECT finds the row in its tenant and not in another."""
    await create(store.engine, store.items, {"id": "a", "tenant": 1})
    async with store.engine.connect() as connection:
        mine = (await connection.execute(*read_one(store.items, ("a",), {"tenant": 1}))).first()
        theirs = (await connection.execute(*read_one(store.items, ("a",), {"tenant": 2}))).first()
    assert mine is not None
    assert theirs is None


def test_pages_of_one_shape_share_a_statement() -> None:
    """Later pages of any position, size and tenant run one statement object."""
    items, _ = declare(MetaData())
    one, one_parameters = page_of(
        items, {"tenant": 1}, limit=3, after=5, watermark=9, descending=False
    )
    two, two_parameters = page_of(
        items, {"tenant": 2}, limit=7, after=8, watermark=20, descending=False
    )
    assert one is two
    assert one_parameters != two_parameters


@pytest.mark.parametrize(
    "changes",
    [{"watermark": None}, {"after": None}, {"descending": True}],
    ids=["first-page", "from-the-start", "descending"],
)
def test_another_page_shape_gets_another_statement(changes: dict[str, object]) -> None:
    """A first page, a page from the start, or the other order is a statement of its own."""
    items, _ = declare(MetaData())
    arguments: dict[str, Any] = {"limit": 3, "after": 5, "watermark": 9, "descending": False}
    base, _ = page_of(items, {}, **arguments)
    other, _ = page_of(items, {}, **{**arguments, **changes})
    assert base is not other

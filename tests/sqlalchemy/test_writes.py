"""Conditional reads and writes of one row (optimist.sqlalchemy.writes) on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.conditions import (
    EXISTS,
    NEVER,
    Condition,
    TagIn,
    UnmodifiedSince,
)
from optimist.errors import PreconditionFailed, ResourceNotFound
from optimist.etag import Comparison, EntityTag
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.sqlalchemy import (
    Record,
    create,
    delete,
    find,
    get,
    update,
    validators,
)
from tests.support.stores import Store, on_the_driver, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Collect the data statements (not BEGIN/COMMIT) the engine executes."""
    seen: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def make(store: Store, key: str = "a", **values: Any) -> Record:
    return await create(store.engine, store.items, {"id": key, **values})


def tag_in(*tags: EntityTag, comparison: Comparison = Comparison.STRONG) -> Condition:
    return TagIn(tags, comparison)


# -- get ---------------------------------------------------------------------------------


async def test_get_returns_the_row_with_its_entity_tag(store: Store) -> None:
    """get reads the row and its strong entity tag, timestamp and state."""
    created = await make(store, name="first")
    record = await get(store.engine, store.items, "a")
    assert record == created
    assert record.etag == EntityTag(record["etag"])
    assert record.state.exists
    assert record.state.etag == record.etag
    assert record.updated_at.tzinfo is UTC


async def test_get_is_one_query(store: Store) -> None:
    """get costs one SELECT."""
    await make(store)
    with statements(store.engine) as seen:
        await get(store.engine, store.items, "a")
    assert len(seen) == 1


async def test_get_is_one_query_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an engine, get is one prepared SELECT on the driver's connection."""
    await make(store)
    ran = on_the_driver(monkeypatch)
    await get(store.engine, store.items, "a")
    assert ran == [False]


async def test_get_missing_row_is_not_found(store: Store) -> None:
    """A key without a row raises ResourceNotFound naming the resource and key."""
    with pytest.raises(ResourceNotFound) as raised:
        await get(store.engine, store.items, "nope")
    assert (raised.value.resource, raised.value.key) == ("items", "nope")


async def test_get_outside_scope_is_not_found(store: Store) -> None:
    """Another tenant's row is a 404."""
    await make(store, tenant=1)
    with pytest.raises(ResourceNotFound):
        await get(store.engine, store.items, "a", scope={"tenant": 2})
    assert await find(store.engine, store.items, "a", scope={"tenant": 1}) is not None


async def test_validators_are_the_rows_etag_and_modification_time(store: Store) -> None:
    """validators reads the state a revalidation is decided on, the same as get's."""
    created = await make(store, name="first")
    assert await validators(store.engine, store.items, "a") == created.state


async def test_validators_read_two_columns_in_one_query(store: Store) -> None:
    """validators costs one SELECT that names the ETag and modification time alone."""
    await make(store, name="first")
    with statements(store.engine) as seen:
        await validators(store.engine, store.items, "a")
    [statement] = seen
    selected = statement.split("FROM")[0]
    named = {
        column for column in ("etag", "updated_at", "name", "created_seq") if column in selected
    }
    assert named == {"etag", "updated_at"}


async def test_validators_run_on_the_driver(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an engine, validators is one prepared SELECT on the driver's connection."""
    await make(store)
    ran = on_the_driver(monkeypatch)
    await validators(store.engine, store.items, "a")
    assert ran == [False]


async def test_validators_of_a_missing_or_foreign_row_are_not_found(store: Store) -> None:
    """No row, or another tenant's, raises ResourceNotFound as get does."""
    await make(store, tenant=1)
    for key, scope in (("nope", None), ("a", {"tenant": 2})):
        with pytest.raises(ResourceNotFound):
            await validators(store.engine, store.items, key, scope=scope)


async def test_record_state_drives_evaluate(store: Store) -> None:
    """The state of a read row answers If-None-Match with 304."""
    record = await make(store)
    conditions = Preconditions.parse(if_none_match=str(record.etag))
    assert evaluate(conditions, "GET", record.state) is Outcome.NOT_MODIFIED


# -- update ------------------------------------------------------------------------------


async def test_update_with_current_tag_writes_and_changes_the_tag(store: Store) -> None:
    """A matching If-Match writes the values, a new ETag and a later updated_at."""
    created = await make(store, name="old")
    updated = await update(
        store.engine, store.items, "a", {"name": "new"}, condition=tag_in(created.etag)
    )
    assert updated["name"] == "new"
    assert updated.etag != created.etag
    assert updated.updated_at >= created.updated_at
    assert await get(store.engine, store.items, "a") == updated


async def test_update_success_is_one_statement(store: Store) -> None:
    """The success path is the UPDATE … RETURNING alone."""
    created = await make(store)
    with statements(store.engine) as seen:
        await update(store.engine, store.items, "a", {"name": "x"}, condition=tag_in(created.etag))
    assert len(seen) == 1
    assert seen[0].lstrip().upper().startswith("UPDATE")


async def test_a_strong_if_match_update_is_one_statement_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an engine, one strong If-Match is one prepared UPDATE on the driver's connection."""
    created = await make(store)
    ran = on_the_driver(monkeypatch)
    updated = await update(
        store.engine, store.items, "a", {"name": "x"}, condition=tag_in(created.etag)
    )
    assert ran == [True]
    assert updated["name"] == "x"


async def test_a_stale_strong_if_match_is_a_write_and_a_read_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refused prepared UPDATE and the read that says why both run on the driver."""
    created = await make(store)
    ran = on_the_driver(monkeypatch)
    with pytest.raises(PreconditionFailed) as raised:
        await update(
            store.engine, store.items, "a", {"name": "x"}, condition=tag_in(EntityTag("old"))
        )
    assert ran == [True, False]
    assert raised.value.current_etag == created.etag


async def test_a_stale_tag_reads_the_row_to_say_why(store: Store) -> None:
    """A conditional update that matches nothing is a 412 carrying the current tag."""
    created = await create(store.engine, store.items, {"id": "a"})
    with pytest.raises(PreconditionFailed) as failed:
        await update(
            store.engine, store.items, "a", {"counter": 1}, condition=TagIn((EntityTag("old"),))
        )
    assert failed.value.current_etag == created.etag


async def test_update_with_stale_tag_fails_with_current_state(store: Store) -> None:
    """A stale If-Match writes nothing; the 412 carries the current tag and row."""
    created = await make(store, name="old")
    current = await update(store.engine, store.items, "a", {"name": "theirs"})
    with pytest.raises(PreconditionFailed) as raised:
        await update(
            store.engine, store.items, "a", {"name": "mine"}, condition=tag_in(created.etag)
        )
    assert raised.value.current_etag == current.etag
    assert raised.value.current == current
    assert (await get(store.engine, store.items, "a"))["name"] == "theirs"


async def test_update_missing_row_is_not_found(store: Store) -> None:
    """No row at the key is a 404, whatever the condition."""
    with pytest.raises(ResourceNotFound):
        await update(store.engine, store.items, "nope", {"name": "x"}, condition=EXISTS)


async def test_update_outside_scope_is_not_found_even_with_the_right_tag(store: Store) -> None:
    """Another tenant's row is a 404 for writes too, and stays unwritten."""
    created = await make(store, tenant=1, name="kept")
    with pytest.raises(ResourceNotFound):
        await update(
            store.engine,
            store.items,
            "a",
            {"name": "x"},
            condition=tag_in(created.etag),
            scope={"tenant": 2},
        )
    assert (await get(store.engine, store.items, "a"))["name"] == "kept"


async def test_update_never_reads_without_writing(store: Store) -> None:
    """A malformed If-Match (NEVER) skips the UPDATE and answers 412 from one read."""
    created = await make(store)
    with statements(store.engine) as seen, pytest.raises(PreconditionFailed) as raised:
        await update(store.engine, store.items, "a", {"name": "x"}, condition=NEVER)
    assert raised.value.current_etag == created.etag
    assert [s.lstrip().split(None, 1)[0].upper() for s in seen] == ["SELECT"]


async def test_update_without_values_still_changes_the_tag(store: Store) -> None:
    """Every successful write changes the ETag, even one that sets nothing."""
    created = await make(store)
    touched = await update(store.engine, store.items, "a", {})
    assert touched.etag != created.etag


async def test_update_accepts_sql_expressions(store: Store) -> None:
    """Values may be expressions over the row, evaluated by the database."""
    await make(store, counter=41)
    updated = await update(
        store.engine, store.items, "a", {"counter": store.items.table.c.counter + 1}
    )
    assert updated["counter"] == 42


async def test_update_weak_table_matches_weakly(store: Store) -> None:
    """On a table of weak tags, If-Match compared weakly (the admin profile) writes."""
    created = await create(store.engine, store.weak_items, {"id": "w"})
    assert created.etag.weak
    updated = await update(
        store.engine,
        store.weak_items,
        "w",
        {"name": "x"},
        condition=tag_in(created.etag, comparison=Comparison.WEAK),
    )
    assert updated.etag.weak
    assert updated.etag != created.etag


async def test_update_weak_table_never_matches_strongly(store: Store) -> None:
    """RFC 9110 §8.8.3.2: a strong If-Match never matches a weak stored tag."""
    created = await create(store.engine, store.weak_items, {"id": "w"})
    with pytest.raises(PreconditionFailed):
        await update(
            store.engine, store.weak_items, "w", {"name": "x"}, condition=tag_in(created.etag)
        )


@pytest.mark.parametrize(
    ("shift", "writes"),
    [(timedelta(seconds=5), True), (timedelta(seconds=-5), False)],
    ids=["unmodified-since-later", "modified-after-date"],
)
async def test_update_if_unmodified_since(store: Store, shift: timedelta, writes: bool) -> None:
    """If-Unmodified-Since writes only if the row is not newer than the date."""
    created = await make(store)
    condition = UnmodifiedSince(created.updated_at.replace(microsecond=0) + shift)
    if writes:
        await update(store.engine, store.items, "a", {"name": "x"}, condition=condition)
    else:
        with pytest.raises(PreconditionFailed):
            await update(store.engine, store.items, "a", {"name": "x"}, condition=condition)


@pytest.mark.parametrize(
    "column", ["etag", "updated_at", "created_seq", "id"], ids=lambda c: f"sets-{c}"
)
async def test_update_refuses_managed_columns(store: Store, column: str) -> None:
    """The version columns and the key are not the caller's to set."""
    await make(store)
    with pytest.raises(ValueError, match=column):
        await update(store.engine, store.items, "a", {column: "x"})


async def test_update_unknown_column_is_refused(store: Store) -> None:
    """A misspelt column is a programming error, raised before any statement."""
    with pytest.raises(ValueError, match="nmae"):
        await update(store.engine, store.items, "a", {"nmae": "x"})


async def test_update_joins_the_callers_transaction(store: Store) -> None:
    """Given a connection in a transaction, the write is the caller's to roll back."""
    created = await make(store, name="before")
    async with store.engine.connect() as connection, connection.begin() as outer:
        await update(connection, store.items, "a", {"name": "after"})
        await outer.rollback()
    assert await get(store.engine, store.items, "a") == created


# -- delete ------------------------------------------------------------------------------


async def test_delete_with_current_tag_removes_the_row(store: Store) -> None:
    """A matching If-Match deletes and returns the row as it was."""
    created = await make(store)
    deleted = await delete(store.engine, store.items, "a", condition=tag_in(created.etag))
    assert deleted == created
    assert await find(store.engine, store.items, "a") is None


async def test_delete_with_stale_tag_keeps_the_row(store: Store) -> None:
    """A stale If-Match deletes nothing and reports the current tag."""
    created = await make(store)
    current = await update(store.engine, store.items, "a", {"name": "x"})
    with pytest.raises(PreconditionFailed) as raised:
        await delete(store.engine, store.items, "a", condition=tag_in(created.etag))
    assert raised.value.current_etag == current.etag
    assert await find(store.engine, store.items, "a") == current


async def test_delete_never_reads_without_writing(store: Store) -> None:
    """A malformed If-Match (NEVER) skips the DELETE, answers 412 from one read, keeps the row."""
    created = await make(store)
    with statements(store.engine) as seen, pytest.raises(PreconditionFailed) as raised:
        await delete(store.engine, store.items, "a", condition=NEVER)
    assert raised.value.current_etag == created.etag
    assert [s.lstrip().split(None, 1)[0].upper() for s in seen] == ["SELECT"]


async def test_delete_missing_row_is_not_found(store: Store) -> None:
    """Deleting nothing is a 404."""
    with pytest.raises(ResourceNotFound):
        await delete(store.engine, store.items, "nope")


async def test_delete_outside_scope_is_not_found(store: Store) -> None:
    """Another tenant's row is a 404 and survives."""
    created = await make(store, tenant=1)
    with pytest.raises(ResourceNotFound):
        await delete(
            store.engine, store.items, "a", condition=tag_in(created.etag), scope={"tenant": 2}
        )
    assert await find(store.engine, store.items, "a") == created

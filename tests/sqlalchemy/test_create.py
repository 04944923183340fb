"""Creates (optimist.sqlalchemy.writes.create, optimist.sqlalchemy._create) on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, select

from optimist.conditions import ABSENT, ALWAYS, EXISTS, NEVER, Condition, Not, TagIn
from optimist.errors import PreconditionFailed, ResourceExists
from optimist.etag import Comparison, EntityTag
from optimist.sqlalchemy import Record, create, create_engine, find, get, versioned_table
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def make(store: Store, key: str = "a", **values: Any) -> Record:
    return await create(store.engine, store.items, {"id": key, **values})


async def test_create_if_absent_inserts(store: Store) -> None:
    """If-None-Match: * on a free key creates the row with a tag and a sequence number."""
    created = await create(store.engine, store.items, {"id": "a", "name": "x"}, condition=ABSENT)
    assert created["name"] == "x"
    assert created["created_seq"] >= 1
    assert await get(store.engine, store.items, "a") == created


async def test_create_if_absent_on_taken_key_fails_with_current(store: Store) -> None:
    """If-None-Match: * on a taken key is a 412 with the current tag and row."""
    existing = await make(store, name="first")
    with pytest.raises(PreconditionFailed) as raised:
        await create(store.engine, store.items, {"id": "a", "name": "second"}, condition=ABSENT)
    assert raised.value.current_etag == existing.etag
    assert raised.value.current == existing


async def test_create_without_precondition_on_taken_key_is_a_conflict(store: Store) -> None:
    """A plain create on a taken key is a 409 and overwrites nothing."""
    existing = await make(store, name="first")
    with pytest.raises(ResourceExists) as raised:
        await create(store.engine, store.items, {"id": "a", "name": "second"})
    assert (raised.value.resource, raised.value.key) == ("items", "a")
    assert await get(store.engine, store.items, "a") == existing


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        (EXISTS, PreconditionFailed),
        (NEVER, PreconditionFailed),
        (TagIn((EntityTag("x"),)), PreconditionFailed),
        (Not(TagIn((EntityTag("x"),), Comparison.WEAK)), None),
        (ALWAYS, None),
    ],
    ids=["if-match-star", "malformed-if-match", "if-match-tag", "if-none-match-tag", "none"],
)
async def test_create_on_free_key_by_condition(
    store: Store, condition: Condition, error: type[Exception] | None
) -> None:
    """RFC 9110 §13.1.1: If-Match is false on an absent resource; other conditions create."""
    if error is None:
        await create(store.engine, store.items, {"id": "a"}, condition=condition)
        assert await find(store.engine, store.items, "a") is not None
    else:
        with pytest.raises(error) as raised:
            await create(store.engine, store.items, {"id": "a"}, condition=condition)
        assert getattr(raised.value, "current_etag", "unset") is None
        assert await find(store.engine, store.items, "a") is None


@pytest.mark.parametrize(
    ("matches", "error"),
    [(True, PreconditionFailed), (False, ResourceExists)],
    ids=["if-none-match-current-tag", "if-none-match-other-tag"],
)
async def test_create_on_taken_key_with_if_none_match_tags(
    store: Store, matches: bool, error: type[Exception]
) -> None:
    """If-None-Match with the current tag is a 412; with another tag the taken key is a 409."""
    existing = await make(store)
    tag = existing.etag if matches else EntityTag("other")
    with pytest.raises(error):
        await create(
            store.engine, store.items, {"id": "a"}, condition=Not(TagIn((tag,), Comparison.WEAK))
        )


async def test_create_fills_in_the_scope(store: Store) -> None:
    """A scoped create stores the scope's values."""
    created = await create(store.engine, store.items, {"id": "a"}, scope={"tenant": 7})
    assert created["tenant"] == 7


async def test_create_refuses_values_contradicting_the_scope(store: Store) -> None:
    """A value that contradicts the scope is a programming error."""
    with pytest.raises(ValueError, match="tenant"):
        await create(store.engine, store.items, {"id": "a", "tenant": 1}, scope={"tenant": 2})


async def test_create_taken_key_in_another_scope_is_a_bare_conflict(store: Store) -> None:
    """A key taken by another tenant is a 409 without that tenant's tag."""
    await make(store, tenant=1)
    with pytest.raises(ResourceExists):
        await create(store.engine, store.items, {"id": "a"}, condition=ABSENT, scope={"tenant": 2})


async def test_create_applies_python_column_defaults(store: Store) -> None:
    """Column defaults apply to creates on both backends."""
    created = await make(store)
    assert (created["tenant"], created["counter"]) == (1, 0)


async def test_create_with_server_chosen_key(database_url: str) -> None:
    """Without a key the database chooses one (an identity column)."""
    metadata = MetaData()
    notes = versioned_table(
        "notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(20))
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        first = await create(engine, notes, {"text": "a"})
        second = await create(engine, notes, {"text": "b"})
        assert first["id"] != second["id"]
        assert second["created_seq"] > first["created_seq"]
        async with engine.connect() as connection:
            assert (
                await connection.scalar(
                    select(notes.table.c.text).where(notes.table.c.id == second["id"])
                )
            ) == "b"
    finally:
        await engine.dispose()

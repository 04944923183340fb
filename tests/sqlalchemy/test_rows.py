"""One row by its key (optimist.sqlalchemy._rows): locate, find, columns, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from optimist.conditions import ALWAYS, NEVER, Condition, TagIn
from optimist.errors import GuardFailed, PreconditionFailed, ResourceNotFound
from optimist.etag import EntityTag
from optimist.sqlalchemy import Record, create
from optimist.sqlalchemy._rows import check_columns, find, locate, refusal
from optimist.sqlalchemy._where import Guard
from tests.support.stores import Store, declare, declare_sessions, on_the_driver, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def submitted(store: Store, key: str = "a", tenant: int = 1) -> Record:
    return await create(
        store.engine, store.items, {"id": key, "name": "submitted", "tenant": tenant}
    )


@pytest.mark.parametrize(
    ("key", "scope", "count"),
    [("a", None, 1), ("a", {"tenant": 1}, 1), ("a", {"tenant": 2}, 0), ("b", None, 0)],
    ids=["key", "key-in-scope", "key-outside-scope", "other-key"],
)
async def test_locate_selects_the_row_by_key_within_the_scope(
    store: Store, key: str, scope: dict[str, Any] | None, count: int
) -> None:
    """The clause selects the row at the key only inside its scope."""
    await submitted(store)
    located = locate(store.items, (key,), scope)
    async with store.engine.connect() as connection:
        found = await connection.scalar(
            select(func.count()).select_from(store.items.table).where(located)
        )
    assert found == count


async def test_find_returns_the_row_with_its_version(store: Store) -> None:
    """find reads the row as a Record with its entity tag."""
    created = await submitted(store)
    assert await find(store.engine, store.items, "a") == created


@pytest.mark.parametrize(
    ("key", "scope"), [("nope", None), ("a", {"tenant": 2})], ids=["missing", "outside-scope"]
)
async def test_find_of_no_row_in_scope_is_none(
    store: Store, key: str, scope: dict[str, Any] | None
) -> None:
    """A missing key, or another tenant's row, is None."""
    await submitted(store)
    assert await find(store.engine, store.items, key, scope=scope) is None


async def test_find_is_one_query_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an engine, find is one prepared SELECT on the driver's connection."""
    await submitted(store)
    ran = on_the_driver(monkeypatch)
    assert await find(store.engine, store.items, "a", scope={"tenant": 1}) is not None
    assert ran == [False]


async def test_find_joins_the_callers_transaction(store: Store) -> None:
    """Given a connection in a transaction, find sees that transaction's own writes."""
    async with store.engine.connect() as connection, connection.begin() as outer:
        await create(connection, store.items, {"id": "a"})
        assert await find(connection, store.items, "a") is not None
        await outer.rollback()
    assert await find(store.engine, store.items, "a") is None


@pytest.mark.parametrize(
    ("values", "allow_key"),
    [({"nmae": "x"}, False), ({"etag": "x"}, True), ({"id": "x"}, False)],
    ids=["unknown", "managed", "key-on-update"],
)
def test_check_columns_refuses_what_the_caller_may_not_write(
    values: dict[str, Any], allow_key: bool
) -> None:
    """Unknown columns, version columns, and the key outside a create are refused."""
    items, _ = declare()
    with pytest.raises(ValueError, match=next(iter(values))):
        check_columns(items, values, allow_key=allow_key)


def test_check_columns_refuses_the_clock_column() -> None:
    """A clocked table's clock is optimist's to write too."""
    sessions = declare_sessions()
    with pytest.raises(ValueError, match="vector_clock"):
        check_columns(sessions, {"vector_clock": "{}"}, allow_key=True)


def test_check_columns_lets_a_create_set_the_key() -> None:
    """A create names its key; the caller's other columns pass."""
    items, _ = declare()
    check_columns(items, {"id": "a", "name": "x"}, allow_key=True)


def test_refusal_without_a_row_is_not_found() -> None:
    """No row in scope any more: a 404 naming the resource and key."""
    items, _ = declare()
    refused = refusal(items, "a", None, condition=NEVER, guard={"name": ("x",)})
    assert isinstance(refused, ResourceNotFound)
    assert (refused.resource, refused.key) == ("items", "a")


@pytest.mark.parametrize(
    ("condition", "guard", "error"),
    [
        (ALWAYS, {"name": ("draft",)}, GuardFailed),
        (TagIn((EntityTag("stale"),)), {"name": ("draft",)}, PreconditionFailed),
        (TagIn((EntityTag("stale"),)), None, PreconditionFailed),
        (NEVER, None, PreconditionFailed),
    ],
    ids=["guard-fails", "both-fail", "precondition-fails", "never"],
)
async def test_refusal_decides_the_precondition_before_the_guard(
    store: Store, condition: Condition, guard: Guard | None, error: type[Exception]
) -> None:
    """RFC 9110 §13.2.1: a failed precondition is a 412 even where the guard fails too."""
    seed = await submitted(store)
    refused = refusal(store.items, "a", seed, condition=condition, guard=guard)
    assert type(refused) is error
    assert isinstance(refused, PreconditionFailed | GuardFailed)
    assert refused.current == seed


async def test_refusal_with_a_row_meeting_both_is_a_precondition_failure(store: Store) -> None:
    """refusal() never blames a guard that holds of the row it is given."""
    seed = await submitted(store)
    refused = refusal(store.items, "a", seed, condition=ALWAYS, guard={"name": ("submitted",)})
    assert type(refused) is PreconditionFailed

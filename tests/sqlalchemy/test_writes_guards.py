"""Guarded updates (optimist.sqlalchemy.writes): a rule about the row's own values, checked
in the write's statement, on both backends.

The ``items`` table's ``name`` column plays a status: a guard ``{"name": ("submitted",)}``
lets an update apply only while the row is submitted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from optimist.conditions import NEVER, TagIn
from optimist.errors import GuardFailed, PreconditionFailed, ResourceNotFound
from optimist.etag import EntityTag
from optimist.sqlalchemy import Record, create, get, update, writes
from tests.support.stores import Store, open_store, race, writers

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def submitted(store: Store, key: str = "a") -> Record:
    return await create(store.engine, store.items, {"id": key, "name": "submitted"})


async def test_update_applies_while_the_guard_holds(store: Store) -> None:
    """A guard the row meets lets the update write, with a new ETag."""
    seed = await submitted(store)
    record = await update(
        store.engine, store.items, "a", {"name": "accepted"}, guard={"name": ("submitted",)}
    )
    assert record["name"] == "accepted"
    assert record.etag != seed.etag


async def test_a_successful_guarded_update_is_one_statement(store: Store) -> None:
    """The guard is part of the UPDATE: no read before or after a write that applies."""
    await submitted(store)
    seen: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        await update(store.engine, store.items, "a", {"name": "x"}, guard={"name": ["submitted"]})
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    assert len(seen) == 1
    assert seen[0].lstrip().upper().startswith("UPDATE")
    assert " IN " in seen[0].upper()


async def test_a_guard_the_row_fails_is_guard_failed_and_writes_nothing(store: Store) -> None:
    """A row outside the guard is refused with GuardFailed carrying the row as it is."""
    seed = await submitted(store)
    with pytest.raises(GuardFailed) as raised:
        await update(store.engine, store.items, "a", {"name": "x"}, guard={"name": ("draft",)})
    assert (raised.value.resource, raised.value.key) == ("items", "a")
    assert raised.value.current == seed
    assert await get(store.engine, store.items, "a") == seed


async def test_a_failed_precondition_is_decided_before_the_guard(store: Store) -> None:
    """RFC 9110 §13.2.1: a stale If-Match is a 412 even where the guard fails too."""
    seed = await submitted(store)
    stale = TagIn((EntityTag("stale"),))
    with pytest.raises(PreconditionFailed) as raised:
        await update(
            store.engine, store.items, "a", {}, condition=stale, guard={"name": ("draft",)}
        )
    assert not isinstance(raised.value, GuardFailed)
    assert raised.value.current_etag == seed.etag


async def test_a_malformed_precondition_with_a_guard_is_412(store: Store) -> None:
    """A condition no row meets (NEVER) skips the statement and refuses with 412."""
    await submitted(store)
    with pytest.raises(PreconditionFailed):
        await update(
            store.engine, store.items, "a", {}, condition=NEVER, guard={"name": ("submitted",)}
        )


async def test_a_matching_precondition_and_failing_guard_is_guard_failed(store: Store) -> None:
    """With If-Match naming the current tag, the guard is what refuses."""
    seed = await submitted(store)
    with pytest.raises(GuardFailed):
        await update(
            store.engine,
            store.items,
            "a",
            {},
            condition=TagIn((seed.etag,)),
            guard={"name": ("draft",)},
        )


async def test_a_guarded_update_of_a_missing_row_is_not_found(store: Store) -> None:
    """No row: ResourceNotFound, whatever the guard."""
    with pytest.raises(ResourceNotFound):
        await update(store.engine, store.items, "nope", {}, guard={"name": ("draft",)})


async def test_an_empty_guard_collection_admits_no_row(store: Store) -> None:
    """A column guarded by no values refuses every row."""
    await submitted(store)
    with pytest.raises(GuardFailed):
        await update(store.engine, store.items, "a", {}, guard={"name": ()})


async def test_several_columns_must_all_hold(store: Store) -> None:
    """Every column of a guard must hold of the row."""
    await submitted(store)
    with pytest.raises(GuardFailed):
        await update(
            store.engine, store.items, "a", {}, guard={"name": ("submitted",), "tenant": (2,)}
        )
    record = await update(
        store.engine, store.items, "a", {}, guard={"name": ("submitted",), "tenant": (1,)}
    )
    assert record["name"] == "submitted"


@pytest.mark.parametrize(
    ("guard", "error"),
    [({"nope": ("x",)}, ValueError), ({"name": "submitted"}, TypeError)],
    ids=["unknown-column", "string-not-collection"],
)
async def test_a_malformed_guard_is_refused_before_any_statement(
    store: Store, guard: dict[str, Any], error: type[Exception]
) -> None:
    """An unknown column, or a string where a collection belongs, is a programming error."""
    await submitted(store)
    with pytest.raises(error):
        await update(store.engine, store.items, "a", {}, guard=guard)


async def test_a_row_that_changes_after_the_statement_is_written_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the row meets the guard by the time it is read back, the update runs again."""
    await create(store.engine, store.items, {"id": "a", "name": "draft"})
    real_find = writes.find
    reads = 0

    async def changed_in_between(bind: Any, *args: Any, **kwargs: Any) -> Record | None:
        # Another writer's commit, landing between the refused UPDATE and the read.
        nonlocal reads
        reads += 1
        if reads == 1:
            await bind.execute(
                store.items.table.update()
                .where(store.items.table.c.id == "a")
                .values(name="submitted")
            )
        return await real_find(bind, *args, **kwargs)

    monkeypatch.setattr(writes, "find", changed_in_between)
    async with store.engine.connect() as connection, connection.begin():
        record = await update(
            connection, store.items, "a", {"name": "accepted"}, guard={"name": ("submitted",)}
        )
    assert record["name"] == "accepted"
    assert reads == 1


# -- races -----------------------------------------------------------------------------


async def transition(connection: AsyncConnection, store: Store, target: str) -> str:
    """One guarded transition out of ``submitted``; ``won:<target>`` or ``guard:<status>``."""
    try:
        await update(connection, store.items, "a", {"name": target}, guard={"name": ("submitted",)})
    except GuardFailed as refused:
        return f"guard:{refused.current['name']}"
    return f"won:{target}"


@pytest.mark.parametrize("count", [2, 8], ids=lambda n: f"{n}-writers")
async def test_exactly_one_guarded_transition_wins(store: Store, count: int) -> None:
    """Concurrent transitions out of one status: one applies, the rest see its result."""
    await submitted(store)
    targets = [("accepted", "rejected")[i % 2] for i in range(count)]
    async with writers(store.url, count) as (_items, connections):
        outcomes = await race(connections, lambda i, c: transition(c, store, targets[i]))
    kinds = Counter(outcome.split(":", 1)[0] for outcome in outcomes)
    assert kinds == {"won": 1, "guard": count - 1}, outcomes
    (winner,) = [o.split(":", 1)[1] for o in outcomes if o.startswith("won:")]
    assert {o.split(":", 1)[1] for o in outcomes if o.startswith("guard:")} == {winner}
    assert (await get(store.engine, store.items, "a"))["name"] == winner

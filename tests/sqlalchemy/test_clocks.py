"""Vector-clock resources: the stored clock as compare-and-set key (optimist.sqlalchemy.clocks)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optimist.conditions import ABSENT, ALWAYS, Condition, TagIn
from optimist.errors import PreconditionFailed, ResourceNotFound, VersionConflict
from optimist.preconditions import Preconditions
from optimist.sqlalchemy import (
    Record,
    Versioned,
    clock_of,
    create,
    create_clocked,
    create_engine,
    delete,
    delete_clocked,
    get,
    update,
    update_clocked,
)
from optimist.vclock import Ordering, VectorClock
from tests.support.stores import (
    declare_sessions,
    process_clock_worker,
    race,
    read_clock_total,
    run_processes,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Sessions:
    """An engine and the clock-versioned table on it."""

    engine: AsyncEngine
    table: Versioned


async def open_sessions(url: str, connections: int = 5) -> tuple[AsyncEngine, Versioned]:
    """A fresh ``sessions`` table, and an engine with room for ``connections`` at once."""
    sessions = declare_sessions(MetaData())
    engine = create_engine(url, pool_size=connections + 1, max_overflow=0)
    async with engine.begin() as connection:
        await connection.run_sync(sessions.table.metadata.create_all)
    return engine, sessions


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Sessions]:
    """A fresh clock-versioned ``sessions`` table on each backend."""
    engine, sessions = await open_sessions(database_url)
    try:
        yield Sessions(engine, sessions)
    finally:
        await engine.dispose()


async def make(store: Sessions, key: str = "s1", node: str = "a") -> VectorClock:
    record = await create_clocked(store.engine, store.table, {"id": key}, node=node)
    return clock_of(store.table, record)


def clock(**counters: int) -> VectorClock:
    return VectorClock(counters)


async def test_create_starts_the_clock_on_this_node(store: Sessions) -> None:
    """A new row's clock is {node: 1}, and its ETag encodes that clock."""
    record = await create_clocked(store.engine, store.table, {"id": "s1"}, node="a")
    assert clock_of(store.table, record) == clock(a=1)
    assert record.etag == clock(a=1).to_etag()
    assert VectorClock.from_header(str(record.etag)) == clock(a=1)


async def test_create_if_absent_on_taken_key_fails(store: Sessions) -> None:
    """If-None-Match: * works for clocked rows as for any other."""
    await make(store)
    with pytest.raises(PreconditionFailed) as raised:
        await create_clocked(store.engine, store.table, {"id": "s1"}, node="b", condition=ABSENT)
    assert raised.value.current_etag == clock(a=1).to_etag()


async def test_update_with_current_clock_advances_it(store: Sessions) -> None:
    """Sending the stored clock writes and increments this node's counter."""
    sent = await make(store, node="a")
    record = await update_clocked(
        store.engine, store.table, "s1", {"notes": "x"}, node="b", sent=sent
    )
    assert clock_of(store.table, record) == clock(a=1, b=1)
    assert record.etag == clock(a=1, b=1).to_etag()
    assert record["notes"] == "x"


@pytest.mark.parametrize(
    ("sent", "ordering", "conflict"),
    [
        (clock(a=1), Ordering.BEFORE, "stale"),
        (clock(a=1, c=1), Ordering.CONCURRENT, "concurrent"),
        (clock(a=3), Ordering.AFTER, "concurrent"),
        (clock(), Ordering.BEFORE, "stale"),
    ],
    ids=["dominated", "neither-dominates", "claims-unseen-writes", "empty"],
)
async def test_update_with_other_clock_is_a_version_conflict(
    store: Sessions, sent: VectorClock, ordering: Ordering, conflict: str
) -> None:
    """A clock that is not the stored {a: 2} writes nothing; the 412 says how it differs."""
    first = await make(store, node="a")
    await update_clocked(store.engine, store.table, "s1", {"notes": "v2"}, node="a", sent=first)
    with pytest.raises(VersionConflict) as raised:
        await update_clocked(
            store.engine, store.table, "s1", {"notes": "lost"}, node="b", sent=sent
        )
    error = raised.value
    assert (error.ordering, error.conflict) == (ordering, conflict)
    assert error.current_clock == clock(a=2)
    assert error.current_etag == clock(a=2).to_etag()
    assert error.current["notes"] == "v2"
    assert (await get(store.engine, store.table, "s1"))["notes"] == "v2"


async def test_update_of_missing_row_is_not_found(store: Sessions) -> None:
    """No row at the key is a 404, with or without a clock."""
    for sent in (clock(a=1), None):
        with pytest.raises(ResourceNotFound):
            await update_clocked(store.engine, store.table, "nope", {}, node="a", sent=sent)


async def test_update_outside_scope_is_not_found(store: Sessions) -> None:
    """Another building's session is a 404 even with the right clock."""
    sent = await make(store)
    with pytest.raises(ResourceNotFound):
        await update_clocked(
            store.engine, store.table, "s1", {}, node="a", sent=sent, scope={"building": 2}
        )


async def test_update_without_clock_still_increments(store: Sessions) -> None:
    """An unconditional write advances the stored clock on this node."""
    await make(store, node="a")
    record = await update_clocked(store.engine, store.table, "s1", {}, node="a", sent=None)
    assert clock_of(store.table, record) == clock(a=2)


async def test_update_refuses_to_set_the_clock_directly(store: Sessions) -> None:
    """The clock column is written only by the clock functions."""
    sent = await make(store)
    with pytest.raises(ValueError, match="vector_clock"):
        await update_clocked(
            store.engine, store.table, "s1", {"vector_clock": "{}"}, node="a", sent=sent
        )


async def test_generic_writes_refuse_clocked_tables(store: Sessions) -> None:
    """update and create would let tag and clock drift apart, so they refuse."""
    await make(store)
    with pytest.raises(ValueError, match="clocks"):
        await update(store.engine, store.table, "s1", {"notes": "x"})
    with pytest.raises(ValueError, match="clocks"):
        await create(store.engine, store.table, {"id": "s2"})


async def test_generic_delete_by_tag_works_on_clocked_rows(store: Sessions) -> None:
    """The stored tag is the clock's tag, so an If-Match delete by tag works."""
    sent = await make(store)
    await delete(store.engine, store.table, "s1", condition=TagIn((sent.to_etag(),)))
    with pytest.raises(ResourceNotFound):
        await get(store.engine, store.table, "s1")


async def test_delete_with_current_clock_removes_the_row(store: Sessions) -> None:
    """A delete with the stored clock removes the row and returns it."""
    sent = await make(store)
    deleted = await delete_clocked(store.engine, store.table, "s1", sent=sent)
    assert clock_of(store.table, deleted) == sent
    with pytest.raises(ResourceNotFound):
        await get(store.engine, store.table, "s1")


async def test_delete_with_stale_clock_is_a_version_conflict(store: Sessions) -> None:
    """A delete with a dominated clock keeps the row and reports it stale."""
    first = await make(store)
    await update_clocked(store.engine, store.table, "s1", {}, node="a", sent=first)
    with pytest.raises(VersionConflict) as raised:
        await delete_clocked(store.engine, store.table, "s1", sent=first)
    assert raised.value.conflict == "stale"
    assert await get(store.engine, store.table, "s1")


async def test_delete_missing_row_is_not_found(store: Sessions) -> None:
    """Deleting nothing is a 404."""
    with pytest.raises(ResourceNotFound):
        await delete_clocked(store.engine, store.table, "nope", sent=None)


async def test_large_clocks_fit(store: Sessions) -> None:
    """A clock of 64 long node names (the largest allowed) is stored and compared."""
    sent = await make(store, node="n" * 64)
    for n in range(63):
        record = await update_clocked(
            store.engine, store.table, "s1", {}, node=f"{n:02d}" + "x" * 62, sent=sent
        )
        sent = clock_of(store.table, record)
    assert len(sent) == 64
    assert (await get(store.engine, store.table, "s1")).etag == sent.to_etag()


# -- preconditions beyond the clock, evaluated on the held row --------------------------


def preconditions(
    *, if_none_match: str | None = None, if_unmodified_since: str | None = None
) -> Condition:
    """The write condition of a request carrying these fields (and no If-Match)."""
    return Preconditions.parse(
        if_none_match=if_none_match, if_unmodified_since=if_unmodified_since
    ).write_condition()


async def write_b(
    store: Sessions, notes: str, *, sent: VectorClock | None, condition: Condition
) -> Record:
    """Write ``notes`` to row ``s1`` on node ``b``."""
    return await update_clocked(
        store.engine,
        store.table,
        "s1",
        {"notes": notes},
        node="b",
        sent=sent,
        condition=condition,
    )


# Of the row {a: 1}: these hold…
HOLDING = [
    pytest.param({"if_unmodified_since": "Fri, 31 Dec 9999 23:59:59 GMT"}, id="unmodified-since"),
    pytest.param({"if_none_match": '"b=1"'}, id="none-match-other"),
    pytest.param({"if_none_match": '"a=2", W/"b=1"'}, id="none-match-others"),
]
# …and these do not.
FAILING = [
    pytest.param({"if_unmodified_since": "Sat, 01 Jan 2000 00:00:00 GMT"}, id="modified-since"),
    pytest.param({"if_none_match": '"a=1"'}, id="none-match-current"),
    pytest.param({"if_none_match": 'W/"a=1"'}, id="none-match-current-weak"),
    pytest.param({"if_none_match": "*"}, id="none-match-any"),
]


@pytest.mark.parametrize("fields", HOLDING)
@pytest.mark.parametrize("with_clock", [False, True], ids=["no-clock", "current-clock"])
async def test_update_writes_when_the_condition_holds_of_the_held_row(
    store: Sessions, fields: dict[str, str], with_clock: bool
) -> None:
    """A condition true of the stored row: the write applies and advances the clock."""
    sent = await make(store, node="a")
    record = await write_b(
        store, "x", sent=sent if with_clock else None, condition=preconditions(**fields)
    )
    assert clock_of(store.table, record) == clock(a=1, b=1)
    assert (await get(store.engine, store.table, "s1"))["notes"] == "x"


@pytest.mark.parametrize("fields", FAILING)
async def test_update_with_a_false_condition_fails_with_the_held_row(
    store: Sessions, fields: dict[str, str]
) -> None:
    """A condition false of the stored row: a 412 (not a clock conflict) carrying the row."""
    await create_clocked(store.engine, store.table, {"id": "s1", "notes": "v1"}, node="a")
    with pytest.raises(PreconditionFailed) as raised:
        await write_b(store, "lost", sent=None, condition=preconditions(**fields))
    error = raised.value
    assert not isinstance(error, VersionConflict)
    assert error.current_etag == clock(a=1).to_etag()
    assert error.current["notes"] == "v1"
    stored = await get(store.engine, store.table, "s1")
    assert (clock_of(store.table, stored), stored["notes"]) == (clock(a=1), "v1")


async def test_held_update_decides_the_clock_first(store: Sessions) -> None:
    """A stale clock with a false condition is the clock's conflict (RFC 9110 §13.2.2 step 1)."""
    first = await make(store, node="a")
    await update_clocked(store.engine, store.table, "s1", {"notes": "v2"}, node="a", sent=first)
    with pytest.raises(VersionConflict) as raised:
        await write_b(store, "lost", sent=first, condition=preconditions(if_none_match="*"))
    assert (raised.value.conflict, raised.value.current_clock) == ("stale", clock(a=2))
    assert raised.value.current["notes"] == "v2"


@pytest.mark.parametrize("fields", HOLDING)
async def test_delete_when_the_condition_holds_removes_the_row(
    store: Sessions, fields: dict[str, str]
) -> None:
    """A condition true of the stored row: the row is deleted and returned."""
    await make(store, node="a")
    deleted = await delete_clocked(
        store.engine, store.table, "s1", sent=None, condition=preconditions(**fields)
    )
    assert clock_of(store.table, deleted) == clock(a=1)
    with pytest.raises(ResourceNotFound):
        await get(store.engine, store.table, "s1")


@pytest.mark.parametrize("fields", FAILING)
async def test_delete_with_a_false_condition_keeps_the_row(
    store: Sessions, fields: dict[str, str]
) -> None:
    """A condition false of the stored row: a 412 carrying the row, which stays."""
    sent = await make(store, node="a")
    with pytest.raises(PreconditionFailed) as raised:
        await delete_clocked(
            store.engine, store.table, "s1", sent=sent, condition=preconditions(**fields)
        )
    assert not isinstance(raised.value, VersionConflict)
    assert raised.value.current_etag == clock(a=1).to_etag()
    assert raised.value.current["id"] == "s1"
    assert clock_of(store.table, await get(store.engine, store.table, "s1")) == clock(a=1)


async def test_held_writes_of_a_missing_row_are_not_found(store: Sessions) -> None:
    """No row at the key is a 404 before any condition is evaluated, even a false one."""
    condition = preconditions(if_unmodified_since="Sat, 01 Jan 2000 00:00:00 GMT")
    with pytest.raises(ResourceNotFound):
        await update_clocked(
            store.engine, store.table, "nope", {}, node="a", sent=None, condition=condition
        )
    with pytest.raises(ResourceNotFound):
        await delete_clocked(store.engine, store.table, "nope", sent=None, condition=condition)


async def test_held_writes_outside_scope_are_not_found(store: Sessions) -> None:
    """Another building's session is a 404 on the held path too, its condition true or not."""
    sent = await make(store)
    condition = preconditions(if_none_match='"b=1"')
    with pytest.raises(ResourceNotFound):
        await update_clocked(
            store.engine,
            store.table,
            "s1",
            {},
            node="a",
            sent=sent,
            condition=condition,
            scope={"building": 2},
        )
    with pytest.raises(ResourceNotFound):
        await delete_clocked(
            store.engine, store.table, "s1", sent=sent, condition=condition, scope={"building": 2}
        )
    assert clock_of(store.table, await get(store.engine, store.table, "s1")) == sent


# -- racing writers ---------------------------------------------------------------------

#: The clock of the row every race starts from.
ORIGIN = VectorClock({"origin": 1})

#: One racing writer: ``(table, index, its connection)`` → its outcome.
Attempt = Callable[[Versioned, int, AsyncConnection], Awaitable[str]]


async def race_on_one_row(
    url: str, writers_count: int, attempt: Attempt
) -> tuple[list[str], VectorClock]:
    """``writers_count`` writers racing on a new row ``hot`` of clock :data:`ORIGIN`:
    their outcomes, and the row's clock once all are done."""
    engine, sessions = await open_sessions(url, writers_count)
    try:
        await create_clocked(engine, sessions, {"id": "hot"}, node="origin")
        connections = [await engine.connect() for _ in range(writers_count)]
        try:
            outcomes = await race(connections, lambda i, c: attempt(sessions, i, c))
        finally:
            for connection in connections:
                await connection.close()
        return outcomes, clock_of(sessions, await get(engine, sessions, "hot"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("writers_count", [2, 8, 32], ids=lambda n: f"{n}-writers")
@pytest.mark.parametrize(
    "condition",
    [ALWAYS, preconditions(if_none_match='"other=1"')],
    ids=["clock-only", "held-none-match"],
)
async def test_exactly_one_writer_with_the_same_clock_wins(
    database_url: str, writers_count: int, condition: Condition
) -> None:
    """N nodes racing with the same clock: one writes, the rest learn they are stale."""

    async def attempt(sessions: Versioned, index: int, connection: AsyncConnection) -> str:
        try:
            await update_clocked(
                connection, sessions, "hot", {}, node=f"n{index}", sent=ORIGIN, condition=condition
            )
        except VersionConflict as conflict:
            return conflict.conflict
        return "won"

    outcomes, final = await race_on_one_row(database_url, writers_count, attempt)
    assert Counter(outcomes) == {"won": 1, "stale": writers_count - 1}
    assert sum(final.values()) == 2


@pytest.mark.parametrize(
    "condition",
    [
        ALWAYS,
        preconditions(
            if_none_match='"other=1"', if_unmodified_since="Fri, 31 Dec 9999 23:59:59 GMT"
        ),
    ],
    ids=["no-precondition", "held-preconditions"],
)
async def test_clocked_writes_without_a_clock_lose_no_increment(
    database_url: str, condition: Condition
) -> None:
    """Eight nodes, 10 writes each without a clock, held preconditions true or none: 80 count."""

    async def attempt(sessions: Versioned, index: int, connection: AsyncConnection) -> str:
        for n in range(10):
            await update_clocked(
                connection,
                sessions,
                "hot",
                {"notes": f"n{index}-{n}"},
                node=f"n{index}",
                sent=None,
                condition=condition,
            )
        return "10 acknowledged"

    outcomes, final = await race_on_one_row(database_url, 8, attempt)
    assert outcomes == ["10 acknowledged"] * 8
    assert final == VectorClock({"origin": 1, **{f"n{i}": 10 for i in range(8)}})


@pytest.mark.slow
def test_unconditional_clocked_writes_across_processes_lose_nothing(database_url: str) -> None:
    """Four processes of two nodes, 10 writes each without a clock: all 80 are counted."""

    async def seed() -> None:
        engine, sessions = await open_sessions(database_url)
        try:
            await create_clocked(engine, sessions, {"id": "hot"}, node="origin")
        finally:
            await engine.dispose()

    asyncio.run(seed())
    acknowledged = sum(
        run_processes(
            process_clock_worker, [(database_url, "hot", 2, 10, worker) for worker in range(4)]
        )
    )
    assert acknowledged == 80
    assert asyncio.run(read_clock_total(database_url, "hot")) == 1 + acknowledged

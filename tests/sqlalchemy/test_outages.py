"""A PostgreSQL server that ends sessions: no dead pooled connection reaches a caller.

Every backend of the test's scratch database is terminated as an administrator (or a
restart) would, while the engine's pool holds idle connections or while concurrent
tasks use them. Reads then always succeed; a write succeeds, or is refused by its
precondition, or raises ServiceUnavailable, and runs twice only if it was never sent.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from optimist.conditions import TagIn
from optimist.errors import PreconditionFailed, ServiceUnavailable
from optimist.sqlalchemy import _direct as direct
from optimist.sqlalchemy import create, get, page, update
from tests.support.databases import execute, terminate_backends
from tests.support.stores import Store, open_store

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROUNDS = 30


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on the scratch PostgreSQL database, with rows a and b."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url, pool_size=8) as opened:
        for key in "ab":
            await create(opened.engine, opened.items, {"id": key, "name": "seed"})
        yield opened


async def fill_pool(engine: AsyncEngine, count: int) -> list[Any]:
    """Check out ``count`` connections at once, use each, return them to the pool idle;
    their asyncpg connections."""
    drivers: list[Any] = []
    async with asyncio.TaskGroup() as group:
        gate = asyncio.Barrier(count)

        async def hold() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                drivers.append((await connection.get_raw_connection()).driver_connection)
                await gate.wait()

        for _ in range(count):
            group.create_task(hold())
    return drivers


async def end_every_session(url: str, drivers: list[Any]) -> None:
    """Terminate every backend of the database, and wait until asyncpg has seen each of
    ``drivers`` closed (as it does as soon as the event loop reads the server's goodbye)."""
    await terminate_backends(url)
    with anyio.fail_after(30):
        while not all(driver.is_closed() for driver in drivers):
            await anyio.sleep(0.01)


async def conditional_update(store: Store, key: str) -> None:
    """Read the row, then write it under If-Match of what was read."""
    current = await get(store.engine, store.items, key)
    await update(
        store.engine,
        store.items,
        key,
        {"counter": current["counter"] + 1},
        condition=TagIn((current.etag,)),
    )


async def test_reads_after_every_session_ended_in_the_pool_all_succeed(store: Store) -> None:
    """Thirty reads after every pooled session was terminated: not one fails."""
    await end_every_session(store.url, await fill_pool(store.engine, 5))
    for _ in range(ROUNDS):
        assert (await get(store.engine, store.items, "a"))["id"] == "a"


async def test_conditional_updates_after_every_session_ended_all_succeed(store: Store) -> None:
    """Thirty read-modify-write updates after every pooled session was terminated all apply."""
    await end_every_session(store.url, await fill_pool(store.engine, 5))
    for _ in range(ROUNDS):
        await conditional_update(store, "a")
    assert (await get(store.engine, store.items, "a"))["counter"] == ROUNDS


def count_failures(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """From now on, record every statement the driver fails to run on the fast path."""
    failures: list[BaseException] = []
    run = direct._fetch

    async def counted(*args: Any) -> Any:
        try:
            return await run(*args)
        except BaseException as error:
            failures.append(error)
            raise

    monkeypatch.setattr(direct, "_fetch", counted)
    return failures


async def test_no_statement_is_sent_on_a_connection_known_closed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool refuses closed connections at checkout: no statement even tries one."""
    await end_every_session(store.url, await fill_pool(store.engine, 5))
    failures = count_failures(monkeypatch)
    for _ in range(ROUNDS):
        await conditional_update(store, "a")
    assert failures == []


async def test_one_dead_connection_retires_the_connections_pooled_before_it(
    postgres_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the checkout test, the first dead connection found recycles all the others."""
    plain = create_async_engine(postgres_url, pool_size=5, max_overflow=0)
    try:
        await end_every_session(store.url, await fill_pool(plain, 5))
        failures = count_failures(monkeypatch)
        for _ in range(ROUNDS):
            await conditional_update(Store(store.url, plain, store.items, store.weak_items), "a")
        assert len(failures) == 1
    finally:
        await plain.dispose()


def observed(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` with a statement listener: everything runs through SQLAlchemy's execution."""

    def observe(*_args: Any) -> None:
        return None

    event.listen(engine.sync_engine, "before_cursor_execute", observe)
    return engine


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: get(store.engine, store.items, "a"),
        lambda store: page(store.engine, store.items, limit=1, filters=[store.items.etag != ""]),
        lambda store: conditional_update(store, "a"),
    ],
    ids=["read", "filtered-page", "conditional-update"],
)
async def test_statements_through_sqlalchemy_run_again_on_a_fresh_connection(
    postgres_url: str, store: Store, operation: Callable[[Store], Any]
) -> None:
    """Through SQLAlchemy's execution, without the checkout test, a statement that finds its
    connection closed before sending runs once more: thirty operations, no error."""
    plain = observed(create_async_engine(postgres_url, pool_size=5, max_overflow=0))
    try:
        await end_every_session(store.url, await fill_pool(plain, 5))
        for _ in range(ROUNDS):
            await operation(Store(store.url, plain, store.items, store.weak_items))
    finally:
        await plain.dispose()


TASKS = 8
OPERATIONS = 45


async def test_sessions_ended_under_load_cost_only_503s(store: Store) -> None:
    """Sessions terminated under concurrent reads and writes: each operation succeeds, is
    refused by its precondition, or raises ServiceUnavailable; nothing else."""
    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    warm = [asyncio.Event() for _ in range(TASKS)]
    halfway = [asyncio.Event() for _ in range(TASKS)]

    async def expression_update(key: str) -> None:
        # SQL in the values: a statement built for the call, run through SQLAlchemy.
        current = await get(store.engine, store.items, key)
        counter = store.items.table.c.counter
        await update(
            store.engine,
            store.items,
            key,
            {"counter": counter + 1},
            condition=TagIn((current.etag,)),
        )

    async def worker(index: int) -> None:
        key = "ab"[index % 2]
        steps: list[Callable[[], Any]] = [
            lambda: get(store.engine, store.items, key),
            lambda: conditional_update(store, key),
            lambda: expression_update(key),
        ]
        for n in range(OPERATIONS):
            try:
                await steps[n % len(steps)]()
                outcomes["ok"] += 1
            except PreconditionFailed:
                outcomes["412"] += 1
            except ServiceUnavailable:
                outcomes["503"] += 1
            except Exception as error:  # the claim: there is no such error
                unexpected.append(error)
            if n == OPERATIONS // 4:
                warm[index].set()
            if n == OPERATIONS // 2:
                halfway[index].set()

    async with asyncio.TaskGroup() as group:
        for index in range(TASKS):
            group.create_task(worker(index))
        for events in (warm, halfway):
            for ready in events:
                await ready.wait()
            await terminate_backends(store.url)
    assert unexpected == []
    assert outcomes["ok"] > 0


async def hold_row(url: str, key: str) -> asyncpg.Connection:
    """A connection of its own that holds ``key``'s row lock until it rolls back."""
    holder = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
    await holder.execute("BEGIN")
    await holder.execute("SELECT 1 FROM items WHERE id = $1 FOR UPDATE", key)
    return holder


async def wait_for_lock_waiter(url: str) -> None:
    """Wait until a session of the database is waiting for a lock."""
    waiting = "wait_event_type = 'Lock'"
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
    try:
        with anyio.fail_after(30):
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                f"WHERE datname = current_database() AND {waiting}"
            )
            while not await admin.fetchval(query):
                await anyio.sleep(0.01)
    finally:
        await admin.close()


WRITES: list[tuple[Callable[[Store], Any], str]] = [
    (lambda store: update(store.engine, store.items, "a", {"name": "written"}), "driver"),
    (
        lambda store: update(
            store.engine, store.items, "a", {"counter": store.items.table.c.counter + 1}
        ),
        "sqlalchemy",
    ),
]


@pytest.mark.parametrize("write", [w for w, _ in WRITES], ids=[i for _, i in WRITES])
async def test_a_write_whose_session_ends_mid_statement_is_not_sent_again(
    store: Store, write: Callable[[Store], Any]
) -> None:
    """An unconditional write waiting for a row lock when its session is ended raises
    ServiceUnavailable and never runs again: sent twice, it would apply once the lock goes."""
    before = await get(store.engine, store.items, "a")
    holder = await hold_row(store.url, "a")
    try:
        writing = asyncio.create_task(write(store))
        await wait_for_lock_waiter(store.url)
        await terminate_backends(store.url, "wait_event_type = 'Lock'")
        await holder.execute("ROLLBACK")
        with anyio.fail_after(30), pytest.raises(ServiceUnavailable):
            await writing
    finally:
        await holder.close()
    after = await get(store.engine, store.items, "a")
    assert (after.etag, after["counter"], after["name"]) == (before.etag, 0, "seed")

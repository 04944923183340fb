"""Tables, stores and multi-process runners shared by the tests of optimist.sqlalchemy.

A plain module (not a test module), so that worker processes started with ``spawn``
can import the functions they run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, Column, Executable, Integer, MetaData, String
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optimist.conditions import ABSENT, TagIn
from optimist.errors import PreconditionFailed
from optimist.etag import EntityTag
from optimist.sqlalchemy import (
    Record,
    Versioned,
    _fetch,
    clock_of,
    create,
    create_engine,
    get,
    update,
    update_clocked,
    versioned_table,
)
from optimist.sqlalchemy._direct import INDIRECT, all_rows

__all__ = [
    "Store",
    "as_text",
    "clocked_increments",
    "create_if_absent",
    "declare",
    "declare_sessions",
    "increment",
    "on_the_driver",
    "open_store",
    "process_clock_worker",
    "process_create_worker",
    "process_increment_worker",
    "process_update_worker",
    "race",
    "read_clock_total",
    "read_row",
    "run_processes",
    "update_if_match",
    "writers",
]


@dataclass(frozen=True)
class Store:
    """An engine and the versioned ``items`` table (plus a weak twin) created on it."""

    url: str
    engine: AsyncEngine
    items: Versioned
    weak_items: Versioned


def declare(metadata: MetaData | None = None) -> tuple[Versioned, Versioned]:
    """The ``items`` table (strong tags, scoped by tenant) and ``weak_items`` (weak tags)."""
    metadata = metadata or MetaData()
    items = versioned_table(
        "items",
        metadata,
        Column("id", String(40), primary_key=True),
        Column("tenant", Integer, nullable=False, default=1),
        Column("counter", Integer, nullable=False, default=0),
        Column("name", String(100)),
        Column("email", String(100), unique=True),
        Column("percent", Integer, CheckConstraint("percent BETWEEN 0 AND 100", name="ck_percent")),
        scope=("tenant",),
    )
    weak_items = versioned_table(
        "weak_items",
        metadata,
        Column("id", String(40), primary_key=True),
        Column("name", String(100)),
        weak=True,
    )
    return items, weak_items


def declare_sessions(metadata: MetaData | None = None) -> Versioned:
    """The clock-versioned ``sessions`` table, scoped by building."""
    return versioned_table(
        "sessions",
        metadata or MetaData(),
        Column("id", String(40), primary_key=True),
        Column("building", Integer, nullable=False, default=1),
        Column("notes", String(200)),
        clock=True,
    )


@asynccontextmanager
async def open_store(url: str, **engine_kwargs: Any) -> AsyncIterator[Store]:
    """A fresh schema on ``url`` and an engine on it, disposed at the end."""
    items, weak_items = declare()
    engine = create_engine(url, **engine_kwargs)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(items.table.metadata.create_all)
        yield Store(url, engine, items, weak_items)
    finally:
        await engine.dispose()


def on_the_driver(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, record each statement the driver runs (whether it writes) and fail any
    statement that SQLAlchemy's execution would run instead.
    """
    ran: list[bool] = []
    direct = all_rows

    async def recorded(
        engine: AsyncEngine, statement: Executable, parameters: Any, *, write: bool = False
    ) -> Any:
        rows = await direct(engine, statement, parameters, write=write)
        assert rows is not INDIRECT, "the driver declined the statement"
        ran.append(write)
        return rows

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a statement ran through SQLAlchemy's execution")

    monkeypatch.setattr(_fetch, "all_rows", recorded)
    monkeypatch.setattr(_fetch, "committing", refused)
    return ran


def _entry(target: Callable[..., Any], args: tuple[Any, ...], results: Any, barrier: Any) -> None:
    try:
        results.put(("ok", asyncio.run(target(*args, barrier))))
    except BaseException as error:  # report everything: the parent asserts on it
        results.put(("error", f"{type(error).__name__}: {error}"))


def run_processes(
    target: Callable[..., Any], arguments: Sequence[tuple[Any, ...]], timeout: float = 60.0
) -> list[Any]:
    """Run ``asyncio.run(target(*args, barrier))`` in one spawned process per ``args``.

    ``barrier`` is shared by all of them, so that they can start racing together
    (``await asyncio.to_thread(barrier.wait)``). Returns their results; a worker that
    raised fails the caller with the worker's error.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    barrier = context.Barrier(len(arguments))
    processes = [
        context.Process(target=_entry, args=(target, args, results, barrier)) for args in arguments
    ]
    for process in processes:
        process.start()
    outcomes: list[Any] = []
    try:
        for _ in processes:
            status, value = results.get(timeout=timeout)
            if status != "ok":
                raise AssertionError(f"a worker process failed: {value}")
            outcomes.append(value)
    except queue.Empty as error:
        raise AssertionError("a worker process did not finish in time") from error
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return outcomes


# -- racing writers ---------------------------------------------------------------------
#
# Each writer holds a connection of its own, opened before the start signal, so that
# the race is between statements, not between connection set-ups.


@asynccontextmanager
async def writers(url: str, count: int) -> AsyncIterator[tuple[Versioned, list[AsyncConnection]]]:
    """``count`` open connections on one engine, and the ``items`` table."""
    items, _ = declare()
    engine = create_engine(url, pool_size=count, max_overflow=0)
    connections: list[AsyncConnection] = []
    try:
        for _ in range(count):
            connection = await engine.connect()
            await connection.exec_driver_sql("SELECT 1")
            await connection.commit()
            connections.append(connection)
        yield items, connections
    finally:
        for connection in connections:
            await connection.close()
        await engine.dispose()


async def race(
    connections: Sequence[AsyncConnection],
    attempt: Callable[[int, AsyncConnection], Awaitable[str]],
    start: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """Run ``attempt(i, connection)`` on every connection at once; their outcomes in order."""
    go = asyncio.Event()

    async def one(index: int, connection: AsyncConnection) -> str:
        await go.wait()
        return await attempt(index, connection)

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(connections)]
    if start is not None:
        await start()
    await asyncio.sleep(0)
    go.set()
    return list(await asyncio.gather(*tasks))


async def update_if_match(
    connection: AsyncConnection, items: Versioned, key: str, tag: str, name: str
) -> str:
    """One conditional update; ``won:<new tag>`` or ``412:<current tag>``."""
    try:
        record = await update(
            connection, items, key, {"name": name}, condition=TagIn((EntityTag(tag),))
        )
    except PreconditionFailed as failed:
        return f"412:{failed.current_etag.opaque if failed.current_etag else ''}"
    return f"won:{record.etag.opaque}"


async def create_if_absent(
    connection: AsyncConnection, items: Versioned, key: str, name: str
) -> str:
    """One create with If-None-Match: *; ``won:<tag>`` or ``412:<current tag>``."""
    try:
        record = await create(connection, items, {"id": key, "name": name}, condition=ABSENT)
    except PreconditionFailed as failed:
        return f"412:{failed.current_etag.opaque if failed.current_etag else ''}"
    return f"won:{record.etag.opaque}"


async def increment(connection: AsyncConnection, items: Versioned, key: str, rounds: int) -> int:
    """``rounds`` read-modify-write increments, retrying on 412; how many were acknowledged."""
    acknowledged = 0
    current = await get(connection, items, key)
    for _ in range(rounds):
        while True:
            try:
                current = await update(
                    connection,
                    items,
                    key,
                    {"counter": current["counter"] + 1},
                    condition=TagIn((current.etag,)),
                )
            except PreconditionFailed as failed:
                current = failed.current
                continue
            acknowledged += 1
            break
    return acknowledged


async def process_update_worker(
    url: str, key: str, tag: str, tasks: int, worker: int, barrier: Any
) -> list[str]:
    """A process of ``tasks`` writers racing one If-Match update."""
    async with writers(url, tasks) as (items, connections):
        return await race(
            connections,
            lambda i, c: update_if_match(c, items, key, tag, f"p{worker}-{i}"),
            start=lambda: asyncio.to_thread(barrier.wait),
        )


async def process_create_worker(
    url: str, key: str, tasks: int, worker: int, barrier: Any
) -> list[str]:
    """A process of ``tasks`` writers racing one create-if-absent."""
    async with writers(url, tasks) as (items, connections):
        return await race(
            connections,
            lambda i, c: create_if_absent(c, items, key, f"p{worker}-{i}"),
            start=lambda: asyncio.to_thread(barrier.wait),
        )


async def process_increment_worker(
    url: str, key: str, tasks: int, rounds: int, barrier: Any
) -> int:
    """A process of ``tasks`` writers each incrementing ``rounds`` times."""
    async with writers(url, tasks) as (items, connections):
        counts = await race(
            connections,
            lambda _i, c: as_text(increment(c, items, key, rounds)),
            start=lambda: asyncio.to_thread(barrier.wait),
        )
    return sum(int(count) for count in counts)


async def as_text(counting: Awaitable[int]) -> str:
    """The result of ``counting`` as text, so that it can race beside string outcomes."""
    return str(await counting)


async def read_row(url: str, key: str) -> Record:
    """The ``items`` row at ``key``, read through an engine of its own."""
    items, _ = declare()
    engine = create_engine(url)
    try:
        return await get(engine, items, key)
    finally:
        await engine.dispose()


async def clocked_increments(
    connection: AsyncConnection, sessions: Versioned, key: str, node: str, rounds: int
) -> int:
    """``rounds`` unconditional clocked writes on ``node``; how many were acknowledged."""
    for n in range(rounds):
        await update_clocked(
            connection, sessions, key, {"notes": f"{node}-{n}"}, node=node, sent=None
        )
    return rounds


async def process_clock_worker(
    url: str, key: str, tasks: int, rounds: int, worker: int, barrier: Any
) -> int:
    """A process of ``tasks`` nodes, each writing ``rounds`` times without a clock."""
    sessions = declare_sessions()
    engine = create_engine(url, pool_size=tasks, max_overflow=0)
    connections = [await engine.connect() for _ in range(tasks)]
    try:
        counts = await race(
            connections,
            lambda i, c: as_text(clocked_increments(c, sessions, key, f"p{worker}-n{i}", rounds)),
            start=lambda: asyncio.to_thread(barrier.wait),
        )
    finally:
        for connection in connections:
            await connection.close()
        await engine.dispose()
    return sum(int(count) for count in counts)


async def read_clock_total(url: str, key: str) -> int:
    """The sum of the counters of the stored clock of session ``key``."""
    sessions = declare_sessions()
    engine = create_engine(url)
    try:
        return sum(clock_of(sessions, await get(engine, sessions, key)).values())
    finally:
        await engine.dispose()

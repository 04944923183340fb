"""Connections kept between direct statements for a turn of the loop (optimist.sqlalchemy._lane)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Select, event, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.errors import ServiceUnavailable
from optimist.sqlalchemy import _lane, create_engine, reading
from optimist.sqlalchemy._direct import INDIRECT, all_rows

pytestmark = pytest.mark.anyio

_ONE: Select[Any] = select(literal_column("1").label("one"))
_PID: Select[Any] = select(literal_column("pg_backend_pid()").label("pid"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, none beside it, on each backend."""
    made = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=10)
    try:
        yield made
    finally:
        await made.dispose()


def _checkouts(engine: AsyncEngine) -> list[int]:
    """A list that grows by one at each checkout from ``engine``'s pool."""
    seen: list[int] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: seen.append(1))
    return seen


async def _value(engine: AsyncEngine, statement: Select[Any]) -> Any:
    rows = await all_rows(engine, statement, {})
    assert rows is not INDIRECT
    return next(iter(rows[0].values()))


async def _turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_the_next_statement_takes_the_connection_the_last_one_ended_with(
    engine: AsyncEngine,
) -> None:
    """Statements one after another check out of the pool once."""
    checkouts = _checkouts(engine)
    for _ in range(5):
        assert await _value(engine, _ONE) == 1
    assert len(checkouts) == 1


async def test_a_connection_goes_back_to_the_pool_when_no_statement_takes_it(
    engine: AsyncEngine,
) -> None:
    """Two idle turns of the loop return a kept connection to the pool."""
    await _value(engine, _ONE)
    assert _lane.kept(engine.sync_engine) == 1
    await _turns(_lane.TURNS + 2)
    assert _lane.kept(engine.sync_engine) == 0
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_transaction_waiting_for_the_pool_gets_the_kept_connection(
    engine: AsyncEngine,
) -> None:
    """A caller of the pool waits a turn for a kept connection, never its pool timeout."""
    await _value(engine, _ONE)
    assert _lane.kept(engine.sync_engine) == 1
    async with asyncio.timeout(5), engine.begin() as connection:
        assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2


async def test_a_caller_waiting_for_the_pool_goes_before_later_statements(
    engine: AsyncEngine,
) -> None:
    """Under a steady stream of statements, a transaction waiting for the pool's one
    connection gets it after the statement running when it asked, not when the stream ends."""
    ran = 0
    stop = asyncio.Event()

    async def stream() -> None:
        nonlocal ran
        while not stop.is_set():
            await _value(engine, _ONE)
            ran += 1

    streaming = asyncio.create_task(stream())
    while ran < 3:  # the stream holds the connection, statement after statement
        await asyncio.sleep(0)
    asked = ran
    try:
        async with asyncio.timeout(30), engine.begin() as connection:
            served = ran
            assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2
    finally:
        stop.set()
        await streaming
    assert served - asked <= 2


async def test_a_derived_engine_shares_its_pool_s_lane(engine: AsyncEngine) -> None:
    """An engine of other execution options takes the connection its pool's lane keeps."""
    checkouts = _checkouts(engine)
    await _value(engine, _ONE)
    await _value(reading(engine), _ONE)
    assert len(checkouts) == 1


async def test_concurrent_statements_never_share_a_connection(database_url: str) -> None:
    """Fifty statements at once on five connections all answer (a driver refuses a second
    statement on a busy connection)."""
    engine = create_engine(database_url, pool_size=5, max_overflow=0)
    try:
        answers = await asyncio.gather(*(_value(engine, _ONE) for _ in range(50)))
        assert answers == [1] * 50
        assert _lane.kept(engine.sync_engine) <= 5
    finally:
        await engine.dispose()


async def test_a_kept_session_the_server_ended_is_not_taken(postgres_url: str) -> None:
    """A kept connection found closed is discarded, and the statement runs on a new one."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = await _value(engine, _PID)
        [(proxied, _turn)] = _lane._LANES[engine.sync_engine.pool].idle
        proxied.driver_connection.terminate()  # type: ignore[union-attr]
        assert await _value(engine, _PID) != first
    finally:
        await engine.dispose()


async def test_disposing_of_the_engine_closes_what_its_lane_keeps(engine: AsyncEngine) -> None:
    """Engine.dispose closes a kept connection rather than leaving it to a discarded pool."""
    await _value(engine, _ONE)
    proxied = _lane.take(engine.sync_engine)
    assert proxied is not None
    assert _lane.keep(engine.sync_engine, proxied, proxied.driver_connection)
    await engine.dispose()
    assert _lane.kept(engine.sync_engine) == 0
    assert not proxied.is_valid  # closed, not returned to the discarded pool


async def test_a_connection_in_a_transaction_is_not_kept(engine: AsyncEngine) -> None:
    """Only a connection outside any transaction, as its driver sees it, waits in the lane."""
    await _value(engine, _ONE)
    proxied = _lane.take(engine.sync_engine)
    assert proxied is not None
    driver: Any = proxied.driver_connection
    await driver.execute("BEGIN")
    try:
        assert not _lane.keep(engine.sync_engine, proxied, proxied.driver_connection)
    finally:
        await driver.execute("ROLLBACK")
    assert _lane.keep(engine.sync_engine, proxied, proxied.driver_connection)


async def test_an_overflow_connection_is_closed_by_its_pool_without_an_error(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A kept connection the pool has no room for goes back in a task, and the pool closes it."""
    engine = create_engine(database_url, pool_size=1, max_overflow=2)
    pool: Any = engine.sync_engine.pool
    try:
        with caplog.at_level("ERROR", logger="sqlalchemy.pool"):
            await asyncio.gather(*(_value(engine, _ONE) for _ in range(3)))
            async with asyncio.timeout(10):
                while pool.checkedout():
                    await asyncio.sleep(0.01)
        assert pool.checkedin() == 1
        assert not caplog.records
    finally:
        await engine.dispose()


async def test_statements_waiting_for_an_exhausted_pool_are_handed_connections(
    database_url: str,
) -> None:
    """Twenty statements at once on two connections check out of the pool twice: each
    waiting one is handed the connection a statement is done with."""
    engine = create_engine(database_url, pool_size=2, max_overflow=0)
    try:
        checkouts = _checkouts(engine)
        assert await _value(engine, _ONE) == 1  # the pool's lane is made
        answers = await asyncio.gather(*(_value(engine, _ONE) for _ in range(20)))
        assert answers == [1] * 20
        assert len(checkouts) == 2
    finally:
        await engine.dispose()


async def test_a_waiting_statement_gets_the_connection_a_transaction_gives_back(
    engine: AsyncEngine,
) -> None:
    """A statement waiting in the lane is woken by a connection that goes back to the
    pool, and runs on it."""
    await _value(engine, _ONE)
    async with asyncio.timeout(10):
        async with engine.connect() as taken:
            await taken.execute(text("SELECT 1"))
            waiting = asyncio.create_task(_value(engine, _ONE))
            while not _lane._LANES[engine.sync_engine.pool].waiting:
                await asyncio.sleep(0)
        assert await waiting == 1


async def test_a_statement_waits_in_the_lane_no_longer_than_the_pool_timeout(
    database_url: str,
) -> None:
    """A statement that waits in the lane past pool_timeout is a 503, as one that waits
    in the pool's queue is."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        await _value(engine, _ONE)
        async with engine.connect() as taken:
            await taken.execute(text("SELECT 1"))
            with pytest.raises(ServiceUnavailable) as raised:
                await _value(engine, _ONE)
        assert raised.value.reason == "no free connection in the pool"
        assert await _value(engine, _ONE) == 1  # the lane serves again
    finally:
        await engine.dispose()


async def test_a_waiter_that_gives_up_passes_its_connection_on(engine: AsyncEngine) -> None:
    """A connection handed to a statement cancelled before it ran goes to the next in
    line, not lost to the pool."""
    await _value(engine, _ONE)
    proxied = _lane.take(engine.sync_engine)
    assert proxied is not None
    lane = _lane._LANES[engine.sync_engine.pool]
    first = asyncio.create_task(_value(engine, _ONE))
    second = asyncio.create_task(_value(engine, _ONE))
    while len(lane.waiting) < 2:
        await asyncio.sleep(0)
    assert _lane.keep(engine.sync_engine, proxied, proxied.driver_connection)
    first.cancel()  # handed the connection, cancelled before it ran
    async with asyncio.timeout(10):
        assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first

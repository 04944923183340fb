"""Connections the direct path keeps between its statements, for a turn of the event loop.

A one-row statement on the driver (:mod:`optimist.sqlalchemy._direct`) takes about as
long as SQLAlchemy's async pool needs to lend it a connection and take it back: a
checkout is a greenlet switch into the pool and an ``asyncio.wait_for`` on its queue
(a task and a timer), a checkin another switch, both with their events. Under load the
next statement starts within the same turn of the event loop in which the last one
ended (the loop runs every task a turn's I/O made ready), so the connection one ends
with is what the next one needs.

So a connection the direct path is done with, outside any transaction, is *kept*
here: in its pool's lane for this event loop, a list, instead of the pool's queue. The
next direct statement *takes* the newest one kept, a list pop, and checks only what
the pool's checkout would (asyncpg's flag of a closed connection; the idle ping is
moot for a connection idle for less than a turn). Only while no caller waits for the
pool: one that does (every connection is out) gets the next connection returned and
whatever the lane holds, in its turn, and later statements queue behind it, so that a
lane never serves the statements of each new turn ahead of a caller that has waited
longer, however steady the load. A callback scheduled with the first
connection kept gives back to the pool, on each following turn, every connection that
has sat in the lane a whole turn: a lane holds connections only while statements keep
coming, and none that a caller of the pool (a transaction, a derived engine) waits for
longer than one turn. Giving one back to a queue with room for it is bookkeeping, no
I/O: outside a transaction the reset on return has nothing to roll back. One the pool
would close (an overflow connection) is given back in a task.

When every connection of a pool is out (none in its queue, none it may still open),
a statement that finds its lane empty *waits* in the lane instead of in the pool's
queue: the next connection a direct statement is done with is handed to the statement
that has waited longest, a future's result, with no checkin or checkout between. A
caller waiting for the pool itself still comes first (the connection goes to the
pool); a connection that goes back to the pool by any other way (a transaction's, one
a sweep gave back, one discarded) wakes the longest waiter, which then asks the pool.
So every waiter is woken by whatever frees a connection, and none waits behind one
that goes to the pool.

What ends the connections of a pool ends its lane: a connection lost to a restart or
an administrator takes every connection kept along (:func:`drop`), as it takes those
pooled before it; a pool replaced by ``Engine.dispose`` closes what its lane still
holds (outside a greenlet SQLAlchemy closes a connection at once, sending nothing)
instead of returning it to a pool nobody uses.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

__all__ = ["TURNS", "behind", "drop", "keep", "kept", "take", "wait"]

#: Whole turns of the event loop a connection may sit in a lane before it goes back.
TURNS: Final = 1

#: Turns a statement waits at most for waiting callers to take what was given back.
_HANDOVER_TURNS: Final = 3


@dataclass(slots=True, eq=False)
class _Lane:
    """One pool's kept connections on one event loop, each with the turn it was kept in."""

    loop: asyncio.AbstractEventLoop
    engine: weakref.ReferenceType[Engine]
    idle: list[tuple[PoolProxiedConnection, int]] = field(default_factory=list)
    turn: int = 0
    sweeping: bool = False
    closing: set[asyncio.Task[Any]] = field(default_factory=set)
    #: Connections given back to callers waiting for the pool, maybe not yet taken.
    handed: int = 0
    #: Statements waiting for a connection of an exhausted pool, longest first: each is
    #: handed one (or None: ask the pool, which has one back).
    waiting: deque[asyncio.Future[PoolProxiedConnection | None]] = field(default_factory=deque)


_LANES: weakref.WeakKeyDictionary[Pool, _Lane] = weakref.WeakKeyDictionary()
#: The pools whose checkins wake their lane's waiters.
_WATCHED: weakref.WeakSet[Pool] = weakref.WeakSet()


def take(engine: Engine) -> PoolProxiedConnection | None:
    """The newest connection kept for ``engine``'s pool on this loop, or None: none is
    kept, or a caller waits for the pool, which gets what is kept (this one queues)."""
    pool = engine.pool
    lane = _LANES.get(pool)
    if lane is None or not lane.idle or lane.loop is not asyncio.get_running_loop():
        return None
    if _contended(pool):
        lane.handed += len(lane.idle)
        _release(lane, pool)
        return None
    while lane.idle:
        proxied, _turn = lane.idle.pop()
        if not _closed(proxied.driver_connection):
            return proxied
        # What the pool's checkout refuses (engine._check_at_checkout): a session the
        # server ended while it sat here.
        _discard([proxied])
    return None


async def behind(engine: Engine) -> None:
    """Before a statement asks ``engine``'s pool for a connection: if connections were
    given back to callers waiting for one, let those take them first.

    The pool's queue wakes a waiting caller, whose task runs in the next turn of the
    loop, and hands the connection meanwhile to whoever asks without waiting; so while
    what was given back is still in the queue, a statement waits a turn (a few at most:
    a caller cancelled meanwhile never takes it).
    """
    pool = engine.pool
    lane = _LANES.get(pool)
    if lane is None or not lane.handed:
        return
    for _ in range(_HANDOVER_TURNS):
        if not pool.checkedin():  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
    lane.handed = 0


async def wait(engine: Engine) -> PoolProxiedConnection | None:
    """When every connection of ``engine``'s pool is out and no caller waits for the pool,
    wait in the lane for one a statement is done with; None at once otherwise, or once a
    connection went back to the pool: ask the pool then. The wait is bounded by the
    pool's own timeout, and ends as the pool's does (SQLAlchemy's ``TimeoutError``)."""
    pool = engine.pool
    lane = _LANES.get(pool)
    loop = asyncio.get_running_loop()
    if lane is None or lane.loop is not loop or not _exhausted(pool) or _contended(pool):
        return None
    handed: asyncio.Future[PoolProxiedConnection | None] = loop.create_future()
    lane.waiting.append(handed)
    limit = pool.timeout()  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(limit):
            proxied = await handed
    except BaseException as error:
        _pass_on(engine, lane, handed)
        if isinstance(error, TimeoutError):
            raise PoolTimeout(
                f"{type(pool).__name__} limit of size {pool.size()} overflow "  # type: ignore[attr-defined]
                f"{pool._max_overflow} reached, connection timed out, timeout {limit:.2f}"  # type: ignore[attr-defined]
            ) from error
        raise
    if proxied is not None and _closed(proxied.driver_connection):
        _discard([proxied])  # ended while handed over; its checkin wakes the next waiter
        return None
    return proxied


def _pass_on(
    engine: Engine, lane: _Lane, handed: asyncio.Future[PoolProxiedConnection | None]
) -> None:
    """What was handed to a waiter that gave up goes to the next one in line."""
    if not handed.done():
        handed.cancel()  # passed over from now on
    elif not handed.cancelled():
        proxied = handed.result()
        if proxied is None:
            _wake(lane)
        elif not keep(engine, proxied, proxied.driver_connection):
            _discard([proxied])


def keep(engine: Engine, proxied: PoolProxiedConnection, driver: Any) -> bool:
    """Keep ``proxied`` (whose driver's connection is ``driver``) for the next statement,
    or give it back at once to a caller waiting for the pool; False if it is closed or in
    a transaction (the caller returns it to the pool, which discards or rolls it back)."""
    if _closed(driver) or _in_transaction(driver):
        return False
    pool = engine.pool
    loop = asyncio.get_running_loop()
    lane = _LANES.get(pool)
    if lane is None or lane.loop is not loop:
        if lane is not None:
            lane.idle.clear()  # another loop's, gone with it
        lane = _LANES[pool] = _Lane(loop, weakref.ref(engine))
        _watch(engine)
    if _contended(pool):
        # First come, first served: the statements of this turn queue behind it.
        proxied.close()  # the queue is empty, or no one would wait: into it, no I/O
        lane.handed += 1
        return True
    handed = _next_waiter(lane)
    if handed is not None:
        handed.set_result(proxied)
        return True
    lane.idle.append((proxied, lane.turn))
    if not lane.sweeping:
        lane.sweeping = True
        loop.call_soon(_sweep, pool)
    return True


def kept(engine: Engine) -> int:
    """How many connections ``engine``'s pool has in a lane."""
    lane = _LANES.get(engine.pool)
    return 0 if lane is None else len(lane.idle)


def drop(engine: Engine) -> None:
    """Give back every connection kept for ``engine``'s pool (they may have died with one
    that did; the pool, invalidated, recycles them at their next checkout)."""
    pool = engine.pool
    lane = _LANES.get(pool)
    if lane is not None:
        _release(lane, pool)
        _wake(lane, every=True)


def _sweep(pool: Pool) -> None:
    """Give back what sat a whole turn in ``pool``'s lane; come round again while any is left."""
    lane = _LANES.get(pool)
    if lane is None:
        return
    lane.turn += 1
    lane.sweeping = False  # first: whatever happens below, the next keep sweeps again
    engine = lane.engine()
    if engine is None or engine.pool is not pool:
        # Disposed: the pool closed what it held; what the lane holds is closed too.
        _discard(_emptied(lane))
        return
    stale = [entry for entry in lane.idle if lane.turn - entry[1] > TURNS]
    if stale:
        lane.idle[:] = [entry for entry in lane.idle if lane.turn - entry[1] <= TURNS]
        for proxied, _turn in stale:
            _give_back(lane, pool, proxied)
    if lane.idle:
        lane.sweeping = True
        lane.loop.call_soon(_sweep, pool)


def _watch(engine: Engine) -> None:
    """Close the lanes of ``engine``'s pools when it disposes of them (from ``Engine.dispose``,
    in SQLAlchemy's greenlet, so that a connection closes gracefully), and wake a waiting
    statement whenever a connection goes back to the pool."""
    root = _root(engine)
    if not event.contains(root, "engine_disposed", _disposed):
        event.listen(root, "engine_disposed", _disposed)
    pool = engine.pool
    if pool not in _WATCHED:
        _WATCHED.add(pool)
        owner = weakref.ref(pool)

        def checked_in(_driver: Any, _record: Any) -> None:
            # Just before the connection is in the queue: the waiter asks in a later turn.
            found = owner()
            lane = None if found is None else _LANES.get(found)
            if lane is not None and lane.waiting:
                _wake(lane)

        event.listen(pool, "checkin", checked_in)


def _wake(lane: _Lane, *, every: bool = False) -> None:
    """Send the longest waiter of ``lane`` (or ``every`` one) to the pool."""
    while (handed := _next_waiter(lane)) is not None:
        handed.set_result(None)
        if not every:
            return


def _next_waiter(lane: _Lane) -> asyncio.Future[PoolProxiedConnection | None] | None:
    """The longest waiter of ``lane`` still waiting, out of the line; None if none is
    (one that gave up meanwhile is done, and dropped)."""
    while lane.waiting:
        handed = lane.waiting.popleft()
        if not handed.done():
            return handed
    return None


def _root(engine: Engine) -> Engine:
    while isinstance(engine, OptionEngine):
        engine = engine._proxied  # an engine of other execution options shares its pool
    return engine


def _disposed(engine: Engine) -> None:
    loop = asyncio.get_running_loop()
    for pool, lane in list(_LANES.items()):
        owner = lane.engine()
        if owner is None or _root(owner) is not engine or owner.pool is pool:
            continue
        held = _emptied(lane)
        if lane.loop is loop:  # another loop's are gone with it
            _discard(held)
            _wake(lane, every=True)


def _release(lane: _Lane, pool: Pool) -> None:
    for proxied in _emptied(lane):
        _give_back(lane, pool, proxied)


def _emptied(lane: _Lane) -> list[PoolProxiedConnection]:
    """What ``lane`` held, now that it holds nothing."""
    held = [proxied for proxied, _turn in lane.idle]
    lane.idle.clear()
    return held


def _discard(connections: list[PoolProxiedConnection]) -> None:
    """Close ``connections`` and drop them from their pool's records."""
    for proxied in connections:
        proxied.invalidate()
        proxied.close()


def _give_back(lane: _Lane, pool: Pool, proxied: PoolProxiedConnection) -> None:
    """Return ``proxied`` to ``pool``: at once into a queue with room for it; otherwise
    the pool closes it (an overflow connection, a pool that keeps none), which is I/O,
    done in a task in SQLAlchemy's greenlet."""
    if isinstance(pool, QueuePool) and pool.checkedin() < pool.size():
        proxied.close()
        return
    task = lane.loop.create_task(greenlet_spawn(proxied.close))
    lane.closing.add(task)
    task.add_done_callback(lane.closing.discard)


def _exhausted(pool: Pool) -> bool:
    """Whether every connection ``pool`` may hold is out: none in its queue, and none it
    may open beside them (a queue pool's overflow reached; an unbounded one never is)."""
    if not isinstance(pool, QueuePool) or pool._max_overflow < 0:
        return False
    return pool.checkedin() == 0 and pool.overflow() >= pool._max_overflow


def _contended(pool: Pool) -> bool:
    """Whether a caller waits for a connection from ``pool``'s queue.

    SQLAlchemy's async queue pool keeps an ``asyncio.Queue``, made on first use, whose
    waiting callers are its pending getters. A pool of another kind has no such queue: no
    caller of it waits for a connection another returns.
    """
    made = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")
    getters: Any = getattr(made, "_getters", None) or ()
    return any(not getter.done() for getter in getters)


def _closed(driver: Any) -> bool:
    is_closed = getattr(driver, "is_closed", None)  # asyncpg's; aiosqlite has none
    return bool(is_closed()) if is_closed is not None else False


def _in_transaction(driver: Any) -> bool:
    found = getattr(driver, "is_in_transaction", None)  # asyncpg
    if found is not None:
        return bool(found())
    return bool(getattr(driver, "in_transaction", False))  # aiosqlite

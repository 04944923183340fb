"""Running a prepared one-row statement on the driver's own connection.

The statements of :mod:`optimist.sqlalchemy._statements` are built once, compiled once,
and then executed thousands of times a second with new parameters. SQLAlchemy's
execution layer (an async facade that switches greenlets at every call, an execution
context, a cursor adapter, a result object) costs several times what the driver
itself needs for such a statement: about 480 µs against 90 µs for a one-row read on
asyncpg, measured in ``bench/``. This module keeps SQLAlchemy for what it does well
(compiling the statement for the dialect, the pool, the types' bind and result
processors) and hands the compiled SQL straight to the driver:

* ``asyncpg``: ``Connection.fetch`` (asyncpg's own prepared-statement cache, or,
  behind a transaction pooler, where the engine turns that cache off, the unnamed
  statement: :mod:`optimist.sqlalchemy._pooler`);
* ``aiosqlite``: ``Connection.execute_fetchall`` (one hop to the driver's thread).

The connection comes from the engine's pool and goes back to it, so the pool's events
(the idle ping, SQLite's pragmas) apply as before; between two statements of one turn
of the event loop it waits in the pool's lane (:mod:`optimist.sqlalchemy._lane`).
Outside a transaction both drivers commit each statement as it completes, which is
what :func:`~optimist.sqlalchemy.engine.autocommit` does for these statements.

A statement given a connection in a transaction on PostgreSQL runs the same way on
asyncpg's connection under that transaction (:func:`transaction_rows`): an idempotent
request's claim, its write and its answer (:mod:`optimist.sqlalchemy.idempotency`), so
that such a request is five round trips (BEGIN, sent with the first statement as
SQLAlchemy's adapter would, the three statements, COMMIT). SQLite's statements in a
transaction stay SQLAlchemy's.

The callers (:mod:`optimist.sqlalchemy._fetch`, the idempotency claim) run the
statement through SQLAlchemy instead when the fast path steps aside, which it does when:

* the engine is not asyncpg or aiosqlite, logs its statements (``echo``), has
  listeners for execution (``before_execute``, ``after_execute``,
  ``before_cursor_execute``, ``after_cursor_execute``: tracing, statement counting),
  which only SQLAlchemy's execution layer calls, or a ``schema_translate_map``, which
  it applies to the SQL as it executes;
* a result column's key differs from its name;
* the database refuses the statement (a constraint, a value): the statement changed
  nothing, being a transaction of its own, so running it again through SQLAlchemy
  yields the refusal as SQLAlchemy's typed error.

A database that cannot serve the statement raises
:class:`~optimist.errors.ServiceUnavailable` (:mod:`optimist.sqlalchemy._availability`):
one that cannot be reached, a pool with no free connection, a lock or statement
timeout, SQLite's busy timeout run out (not run again through SQLAlchemy: it would
wait as long once more).

A connection that dies under a statement (a backend terminated, a server restarted)
is invalidated with every connection pooled before it, as SQLAlchemy does on a
disconnect, and the statement runs once more on a fresh connection if that is safe: a
read always; a write only if it was never sent (asyncpg refuses a connection it knows
is closed before it sends a byte). Otherwise whether the write reached the database
is unknown, so it is not run again: a ServiceUnavailable. A connection that fails in a
way nobody recognises, or whose task was cancelled while the driver worked, is
invalidated too, never returned to the pool; such an error is raised as
:class:`sqlalchemy.exc.DBAPIError`.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

import aiosqlite
from sqlalchemy import Executable
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from optimist.sqlalchemy import _lane
from optimist.sqlalchemy._availability import DISCARDING, Failure, failure, report, succeeded

__all__ = [
    "DRIVERS",
    "INDIRECT",
    "PLANS",
    "WRITER_WAIT",
    "Indirect",
    "all_rows",
    "transaction_mappings",
    "transaction_rows",
    "writer",
]

#: The drivers the fast path knows.
DRIVERS: Final = frozenset({"asyncpg", "aiosqlite"})

#: The most compiled statements kept per engine; further ones are compiled at each call.
PLANS: Final = 1024

#: Seconds a SQLite writer waits for this process's writer before it goes ahead anyway,
#: to SQLite's busy handler (the engine's default busy timeout).
WRITER_WAIT: Final = 30.0

_Processor: TypeAlias = Callable[[Any], Any] | None


class Indirect(Enum):
    """The outcome of :func:`all_rows` when the statement is SQLAlchemy's to run."""

    INDIRECT = "indirect"


#: See :class:`Indirect`.
INDIRECT: Final = Indirect.INDIRECT


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect, with its parameters and columns in order."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    binds: tuple[_Processor, ...]
    keys: tuple[str, ...]
    types: tuple[Any, ...]


# Per engine: statement id → (statement, plan or None when the statement cannot go direct).
# The statement is kept beside its plan so that its id is never reused while cached.
_PLANS: weakref.WeakKeyDictionary[Engine, dict[int, tuple[Executable, _Plan | None]]] = (
    weakref.WeakKeyDictionary()
)
# Per engine and plan: the result processors, made once the driver named the column types.
_RESULTS: weakref.WeakKeyDictionary[Engine, dict[str, tuple[_Processor, ...]]] = (
    weakref.WeakKeyDictionary()
)


# Per engine: the event loop its SQLite writers last ran on, their lock, and its holder.
_WRITERS: weakref.WeakKeyDictionary[Engine, _Writers] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class _Writers:
    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock
    holder: asyncio.Task[Any] | None = None


def _plan(dialect: Dialect, statement: Executable) -> _Plan | None:
    if not isinstance(statement, ClauseElement):
        return None
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or not compiled.positional:
        return None
    names = tuple(compiled.positiontup or ())
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    columns = list(getattr(statement, "exported_columns", ()))
    if not columns or any(column.key != column.name for column in columns):
        return None
    # Values the compiler added itself (SQLite's OFFSET beside a LIMIT) carry their own.
    defaults = {
        name: compiled.binds[name].effective_value
        for name in names
        if not compiled.binds[name].required
    }
    return _Plan(
        compiled.string,
        names,
        defaults,
        binds,
        tuple(column.key for column in columns),
        tuple(column.type.dialect_impl(dialect) for column in columns),
    )


def _planned(engine: Engine, statement: Executable) -> _Plan | None:
    plans = _PLANS.get(engine)
    if plans is None:
        plans = _PLANS[engine] = {}
    found = plans.get(id(statement))
    if found is None:
        found = (statement, _plan(engine.dialect, statement))
        if len(plans) < PLANS:
            plans[id(statement)] = found
    return found[1]


def _results(engine: Engine, plan: _Plan, type_codes: Sequence[Any]) -> tuple[_Processor, ...]:
    """The result processors of ``plan``, given the driver's type code of each column."""
    dialect = engine.dialect
    processors = tuple(
        kind.result_processor(dialect, code)
        for kind, code in zip(plan.types, type_codes, strict=True)
    )
    _RESULTS.setdefault(engine, {})[plan.sql] = processors
    return processors


def _direct(engine: Engine) -> bool:
    dispatch = engine.dispatch
    return (
        engine.dialect.driver in DRIVERS
        and not engine.echo
        and not dispatch.before_execute
        and not dispatch.after_execute
        and not dispatch.before_cursor_execute
        and not dispatch.after_cursor_execute
        # SQLAlchemy rewrites schema names into the SQL as it executes it.
        and "schema_translate_map" not in engine.get_execution_options()
    )


async def all_rows(
    engine: AsyncEngine,
    statement: Executable,
    parameters: Mapping[str, Any],
    *,
    write: bool = False,
) -> list[dict[str, Any]] | Literal[Indirect.INDIRECT]:
    """The rows ``statement`` returns, or :data:`INDIRECT`; it commits by itself.

    SQLite lets one writer at a time hold the file; a writer that finds it taken
    sleeps in SQLite's busy handler for 1 ms, then 2, 5, 10… up to 100 ms per try,
    so writers of one process that collide wait far longer than the writes take
    (a p99 of 200 ms for 32 concurrent one-row updates that each take under one).
    A ``write`` therefore first takes a lock per engine and event loop, and the
    process's writers queue in order; writers in other processes still meet in the
    busy handler.
    """
    sync = engine.sync_engine
    if not _direct(sync):
        return INDIRECT
    plan = _planned(sync, statement)
    if plan is None:
        return INDIRECT
    arguments = _arguments(plan, parameters)
    results = _RESULTS.get(sync, {}).get(plan.sql)
    if write and sync.dialect.name == "sqlite":
        async with writer(engine):
            return await _run(engine, plan, arguments, results, write)
    return await _run(engine, plan, arguments, results, write)


def _arguments(plan: _Plan, parameters: Mapping[str, Any]) -> list[Any]:
    """The driver's positional arguments of ``plan``: each parameter given (or the
    statement's default for it), through its type's bind processor."""
    return [
        value if process is None else process(value)
        for process, value in zip(
            plan.binds,
            (
                parameters[name] if name in parameters else plan.defaults[name]
                for name in plan.names
            ),
            strict=True,
        )
    ]


@asynccontextmanager
async def writer(engine: AsyncEngine) -> AsyncIterator[None]:
    """Wait for this process's other SQLite writers on ``engine`` (see :func:`all_rows`).

    A transaction that writes (an idempotent request's) holds it to its end. A task
    that holds it already passes: a write of its own inside such a transaction must not
    wait for itself. One that waits longer than :data:`WRITER_WAIT` goes ahead without
    it, to SQLite's busy handler, as it would without this lock: a writer of another
    task that waits for the holder's transaction (the holder waiting in turn for it)
    then ends in the busy timeout, never in a deadlock.
    """
    writers = _writers(engine.sync_engine)
    task = asyncio.current_task()
    if task is not None and writers.holder is task:
        yield
        return
    try:
        async with asyncio.timeout(WRITER_WAIT):
            await writers.lock.acquire()
    except TimeoutError:
        yield
        return
    writers.holder = task
    try:
        yield
    finally:
        writers.holder = None
        writers.lock.release()


async def transaction_rows(
    connection: AsyncConnection, statement: Executable, parameters: Mapping[str, Any]
) -> list[tuple[Any, ...]] | Literal[Indirect.INDIRECT]:
    """The rows (tuples) ``statement`` returns in ``connection``'s transaction, run on
    asyncpg's own connection under it, or :data:`INDIRECT`.

    PostgreSQL on asyncpg only, in a transaction SQLAlchemy began on ``connection``
    (asyncpg's BEGIN is sent here if no statement has sent it yet), when neither the
    engine nor the connection observes its statements (:func:`all_rows`). Nothing runs
    again here, the transaction being the caller's; a failure is raised as SQLAlchemy
    would raise it: a refusal (which aborts the transaction) as a DBAPIError around
    asyncpg's error, whose SQLSTATE and text the caller translates; a connection lost,
    or one whose server refuses writes (:data:`~optimist.sqlalchemy._availability.DISCARDING`),
    invalidated with every connection pooled before it; a connection in an unknown
    state (a cancelled task, an error nobody recognises) invalidated alone. A value
    asyncpg cannot encode, refused before anything is sent, is SQLAlchemy's to run and
    to report.
    """
    ran = await _in_transaction(connection, statement, parameters)
    return ran if ran is INDIRECT else ran[1]


async def transaction_mappings(
    connection: AsyncConnection, statement: Executable, parameters: Mapping[str, Any]
) -> list[dict[str, Any]] | Literal[Indirect.INDIRECT]:
    """:func:`transaction_rows`, each row a dictionary keyed by its columns' keys."""
    ran = await _in_transaction(connection, statement, parameters)
    if ran is INDIRECT:
        return ran
    keys, rows = ran
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def _in_transaction(
    connection: AsyncConnection, statement: Executable, parameters: Mapping[str, Any]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | Literal[Indirect.INDIRECT]:
    sync = connection.sync_connection
    if (
        sync is None
        or sync.dialect.driver != "asyncpg"
        or not sync.in_transaction()
        or not _direct(sync.engine)
        or not _observed_by_none(sync)
    ):
        return INDIRECT
    engine = sync.engine
    plan = _planned(engine, statement)
    if plan is None:
        return INDIRECT
    proxied = await connection.get_raw_connection()
    adapter: Any = proxied.dbapi_connection
    mutex = getattr(adapter, "_execute_mutex", None)
    if mutex is None or getattr(adapter, "isolation_level", None) == "autocommit":
        return INDIRECT
    arguments = _arguments(plan, parameters)
    results = _RESULTS.get(engine, {}).get(plan.sql)
    driver = proxied.driver_connection
    try:
        async with mutex:
            if adapter._transaction is None:
                # SQLAlchemy's asyncpg adapter sends BEGIN with a connection's first
                # statement; this is that statement.
                await adapter._start_transaction()
            rows, codes = await _fetch(driver, plan, arguments, results is None)
    except BaseException as error:
        if _unencodable(error):
            return INDIRECT
        lost = await _failed_in_transaction(connection, engine, proxied, driver, error)
        cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
        if not isinstance(cause, Exception) or not isinstance(error, Exception):
            raise
        # Invalidated as lost: a failure of the database (a 503), whatever the driver said.
        raise DBAPIError(plan.sql, arguments, cause, connection_invalidated=lost) from error
    if results is None:
        results = _results(engine, plan, codes)
    return plan.keys, [
        tuple(
            value if process is None else process(value)
            for process, value in zip(results, row, strict=True)
        )
        for row in rows
    ]


def _observed_by_none(connection: Connection) -> bool:
    """Whether nothing of ``connection``'s own watches or rewrites its statements."""
    dispatch = connection.dispatch
    return (
        not connection._echo
        and not dispatch.before_execute
        and not dispatch.after_execute
        and not dispatch.before_cursor_execute
        and not dispatch.after_cursor_execute
        and "schema_translate_map" not in connection.get_execution_options()
    )


def _unencodable(error: BaseException) -> bool:
    """Whether asyncpg refused ``error``'s arguments before sending anything."""
    from asyncpg import DataError  # noqa: PLC0415 - asyncpg is the postgres extra

    return isinstance(error, DataError)


async def _failed_in_transaction(
    connection: AsyncConnection,
    engine: Engine,
    proxied: PoolProxiedConnection,
    driver: Any,
    error: BaseException,
) -> bool:
    """Invalidate ``connection`` after ``error`` unless it was a refusal that left it
    sound; whether the connection was lost (or its server refuses writes)."""
    if not isinstance(error, Exception):
        await connection.invalidate(error)
        return False
    found = failure(error)
    lost = (
        _closed(driver)
        or (found is not None and found.lost)
        or getattr(error, "sqlstate", None) in DISCARDING
    )
    if lost:
        # What ended it (a restart, an administrator) ended those pooled before it too.
        engine.pool._invalidate(proxied, error, _checkin=False)
        _lane.drop(engine)
        await connection.invalidate(error)
    elif not isinstance(error, _refusals()):
        await connection.invalidate(error)
    return lost


async def _run(
    engine: AsyncEngine,
    plan: _Plan,
    arguments: list[Any],
    results: tuple[_Processor, ...] | None,
    write: bool,
) -> list[dict[str, Any]] | Literal[Indirect.INDIRECT]:
    sync = engine.sync_engine
    resent = False
    while True:
        proxied = _lane.take(sync)
        if proxied is None:
            try:
                proxied = await _lane.wait(sync)
                if proxied is None:
                    await _lane.behind(sync)
                    proxied = await engine.raw_connection()
            except Exception as error:
                found = failure(error, connecting=True)
                if found is None:
                    raise
                raise report(sync, found, error) from error
        connection = proxied.driver_connection
        try:
            rows, codes = await _fetch(connection, plan, arguments, results is None)
            break
        except BaseException as error:
            found = await _failed(sync, proxied, connection, error)
            if found is None:
                if not isinstance(error, Exception):
                    raise
                if isinstance(error, _refusals()):
                    return INDIRECT
                raise DBAPIError(plan.sql, arguments, error) from error
            if resent or not (found.unsent if write else found.lost):
                raise report(sync, found, error) from error
            resent = True
    if not _lane.keep(sync, proxied, connection):
        await greenlet_spawn(proxied.close)
    succeeded(sync)
    if results is None:
        results = _results(sync, plan, codes)
    return _mappings(plan.keys, results, rows)


def _mappings(
    keys: tuple[str, ...], results: tuple[_Processor, ...], rows: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    """Each row a dict by column key, each value through its column's result processor."""
    converted = [(key, process) for key, process in zip(keys, results, strict=True) if process]
    mappings = [dict(zip(keys, row, strict=True)) for row in rows]
    for mapping in mappings:
        for key, process in converted:
            mapping[key] = process(mapping[key])
    return mappings


async def _fetch(
    connection: Any, plan: _Plan, arguments: list[Any], describe: bool
) -> tuple[Sequence[Sequence[Any]], Sequence[Any]]:
    """The rows and, when ``describe``, the driver's type code of each column."""
    if isinstance(connection, aiosqlite.Connection):
        rows = await connection.execute_fetchall(plan.sql, arguments)
        # sqlite3 names no column types (its cursor description carries None).
        return list(rows), [None] * len(plan.keys)
    if describe:
        # Once per statement and engine: asyncpg's fetch does not tell the types. With
        # asyncpg's statement cache off (behind a transaction pooler: _pooler), both
        # calls use the unnamed statement and parse it again beside its Bind, so no
        # server connection keeps it; with the cache on, it is named and kept.
        prepared = await connection.prepare(plan.sql)
        codes = [attribute.type.oid for attribute in prepared.get_attributes()]
        return await prepared.fetch(*arguments), codes
    return await connection.fetch(plan.sql, *arguments), ()


async def _failed(
    engine: Engine, proxied: PoolProxiedConnection, connection: Any, error: BaseException
) -> Failure | None:
    """Return the connection a statement failed on to the pool, or discard it; the
    failure of the database ``error`` is, if it is one.

    A refusal leaves the connection sound: it goes back to the pool. A connection that
    died, or whose state is unknown (a cancelled task, an error nobody recognises), is
    invalidated; one that died takes every connection pooled before it along (what
    ended it, a restart or an administrator, ended them too).
    """
    if not isinstance(error, Exception):
        # Cancelled mid-statement: the connection's state is unknown.
        proxied.invalidate()
        proxied.close()
        return None
    found = failure(error)
    if _closed(connection):
        # The server may have ended the session as it refused (an administrator's
        # shutdown): the connection is gone whatever the error says.
        found = found if found is not None and found.lost else Failure("connection lost", lost=True)
    if found is not None and found.lost:
        engine.pool._invalidate(proxied, error)
        proxied.close()
        _lane.drop(engine)
    elif isinstance(error, _refusals()):
        await greenlet_spawn(proxied.close)
    else:
        proxied.invalidate(error)
        proxied.close()
    return found


def _writers(engine: Engine) -> _Writers:
    """The lock this event loop's writers on ``engine`` take in turn."""
    loop = asyncio.get_running_loop()
    held = _WRITERS.get(engine)
    if held is None or held.loop is not loop:
        held = _WRITERS[engine] = _Writers(loop, asyncio.Lock())
    return held


def _closed(connection: Any) -> bool:
    # sqlite3 refuses statements without closing the connection.
    return not isinstance(connection, aiosqlite.Connection) and bool(connection.is_closed())


@functools.cache
def _refusals() -> tuple[type[Exception], ...]:
    """The errors by which a database refuses a statement, leaving the connection sound."""
    try:
        # Imported on first use: asyncpg is optional (the postgres extra).
        from asyncpg import PostgresError  # noqa: PLC0415
    except ImportError:  # pragma: no cover - asyncpg is the postgres extra
        return (sqlite3.Error,)
    return (sqlite3.Error, PostgresError)

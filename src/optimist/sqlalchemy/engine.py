"""An :class:`~sqlalchemy.ext.asyncio.AsyncEngine` set up for concurrent conditional writes.

:func:`create_engine` is SQLAlchemy's ``create_async_engine`` with the settings that the
guarantees of this package depend on.

SQLite (``sqlite+aiosqlite://``), following SQLAlchemy's documented recipe for taking
over BEGIN from the ``sqlite3`` driver ("Transactions with SQLite and the sqlite3
driver", *Using SQLAlchemy to emit BEGIN in lieu of SQLite's transaction control*):

* ``journal_mode=WAL``: readers never block the writer, the writer never blocks readers;
* ``busy_timeout`` (30 s by default): a writer waits for the lock instead of failing with
  "database is locked";
* ``synchronous=NORMAL``: durable at every checkpoint, safe against corruption in WAL;
* ``foreign_keys=ON``: SQLite leaves them off unless asked, per connection;
* the driver's own transaction control is switched off (``isolation_level = None``) and
  every transaction starts with ``BEGIN IMMEDIATE``, which takes the write lock up
  front. A deferred transaction that reads first and writes later must upgrade its
  lock, and in WAL mode an upgrade after another writer committed fails at once with
  SQLITE_BUSY whatever the busy timeout; taking the lock at BEGIN makes every writer
  wait its turn instead, so several processes on one file neither deadlock nor fail.

Reads need no write lock: :func:`reading` gives an engine (sharing the pool) whose
transactions start with a deferred ``BEGIN``, a consistent WAL snapshot that runs
beside the writer. The same choice is the execution option :data:`SQLITE_BEGIN`
(``"IMMEDIATE"``, ``"DEFERRED"`` or ``"EXCLUSIVE"``) on a connection or an engine.

PostgreSQL (``postgresql+asyncpg://``): the default READ COMMITTED isolation is what a
conditional ``UPDATE … WHERE etag IN (…)`` needs (a concurrent writer waits for the row
lock, then PostgreSQL re-evaluates the WHERE clause against the committed row), so the
engine only gets a pool that survives restarts and idle-connection reapers:
``pool_pre_ping``, ``pool_recycle`` and a bounded size. Any keyword overrides these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "POSTGRES_POOL",
    "SQLITE_BEGIN",
    "SQLITE_BUSY_TIMEOUT",
    "Bind",
    "create_engine",
    "reading",
    "transaction",
]

#: Where a statement runs: an engine (a connection of its own) or a caller's connection.
Bind: TypeAlias = AsyncEngine | AsyncConnection

#: The execution option that chooses how a SQLite transaction begins.
SQLITE_BEGIN: Final = "optimist_sqlite_begin"

#: Seconds a SQLite connection waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT: Final = 30.0

#: Pool settings for PostgreSQL; each may be overridden by a keyword of the same name.
POSTGRES_POOL: Final[dict[str, Any]] = {
    "pool_size": 10,
    "max_overflow": 10,
    "pool_timeout": 30.0,
    "pool_recycle": 1800,
    "pool_pre_ping": True,
}

_BEGIN_MODES: Final = frozenset({"IMMEDIATE", "DEFERRED", "EXCLUSIVE"})


def create_engine(
    url: str | URL,
    *,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for ``url`` configured as this module's docstring describes.

    ``busy_timeout`` (seconds) applies to SQLite only; ``kwargs`` go to
    :func:`sqlalchemy.ext.asyncio.create_async_engine` and win over the defaults.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args = {"timeout": busy_timeout, **kwargs.pop("connect_args", {})}
        engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, busy_timeout)
        return engine
    if backend == "postgresql":
        return create_async_engine(parsed, **{**POSTGRES_POOL, **kwargs})
    return create_async_engine(parsed, **kwargs)


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for reads: on SQLite its transactions take no write lock."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})


@asynccontextmanager
async def transaction(bind: Bind, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction, committed on success and rolled back on error.

    Given an engine, a connection of its own. Given a connection already in a
    transaction, that transaction: the caller commits. Given a connection outside one,
    a transaction on it that ends with the block. On SQLite a ``read`` transaction of
    its own starts with a deferred BEGIN: it takes no write lock.
    """
    if isinstance(bind, AsyncEngine):
        async with (reading(bind) if read else bind).begin() as connection:
            yield connection
    elif bind.in_transaction():
        yield bind
    elif read and bind.dialect.name == "sqlite":
        previous = (
            bind.sync_connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
            if bind.sync_connection
            else "IMMEDIATE"
        )
        await bind.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        try:
            async with bind.begin():
                yield bind
        finally:
            await bind.execution_options(**{SQLITE_BEGIN: previous})
    else:
        async with bind.begin():
            yield bind


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    pragmas = (
        # The busy timeout first: switching the journal mode itself needs a lock.
        f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    )

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Stop the driver from emitting its own deferred BEGIN before DML;
        # on_begin below emits the BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        if mode not in _BEGIN_MODES:
            raise ValueError(f"{SQLITE_BEGIN} must be one of {sorted(_BEGIN_MODES)}, not {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)

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
* a database file that does not exist yet is created ``0600``
  (:data:`SQLITE_FILE_MODE`, ``create_engine(file_mode=...)``) before SQLite opens it:
  SQLite would create it ``0644``, readable by every local user, and it creates the
  ``-wal`` and ``-shm`` files with the database file's mode;
* the driver's own transaction control is switched off (``isolation_level = None``) and
  every transaction starts with ``BEGIN IMMEDIATE``, which takes the write lock up
  front. A deferred transaction that reads first and writes later must upgrade its
  lock, and in WAL mode an upgrade after another writer committed fails at once with
  SQLITE_BUSY whatever the busy timeout; taking the lock at BEGIN makes every writer
  wait its turn instead, so several processes on one file neither deadlock nor fail;
* a file's pool is fixed (:data:`SQLITE_POOL`: 15 connections kept, none opened beyond
  them), where SQLAlchemy's default opens up to ten more under load and closes each as
  it is returned.

Reads need no write lock: :func:`reading` gives an engine (sharing the pool) whose
transactions start with a deferred ``BEGIN``, a consistent WAL snapshot that runs
beside the writer. The same choice is the execution option :data:`SQLITE_BEGIN`
(``"IMMEDIATE"``, ``"DEFERRED"`` or ``"EXCLUSIVE"``) on a connection or an engine.

PostgreSQL (``postgresql+asyncpg://``): the default READ COMMITTED isolation is what a
conditional ``UPDATE … WHERE etag IN (…)`` needs (a concurrent writer waits for the row
lock, then PostgreSQL re-evaluates the WHERE clause against the committed row), so the
engine only gets a pool that survives restarts and idle-connection reapers: a bounded
size, ``pool_recycle``, and a ping of every connection that sat unused in the pool
longer than ``idle_ping`` seconds (:data:`POSTGRES_IDLE_PING`) before it is handed
out. SQLAlchemy's ``pool_pre_ping`` pings at *every* checkout, three round trips on
asyncpg (BEGIN, a statement, ROLLBACK) that tripled the cost of a one-statement
request; a connection in steady use has just proved itself alive, and one that fails
anyway makes SQLAlchemy invalidate the whole pool. Any keyword overrides these
(``pool_pre_ping=True`` included).

On asyncpg a connection is also refused at checkout when the driver knows it is closed
(a backend terminated, a server restarted while the connection sat in the pool): a
test of a flag, no round trip. The pool then recycles every connection older than
that moment (SQLAlchemy's ``invalidate_pool``), so that a restart costs no request its
answer. Connecting gives up after :data:`POSTGRES_CONNECT_TIMEOUT` seconds (asyncpg's
``timeout``; ``connect_args`` may say otherwise).

A primary with standbys: name every host in the URL and ask for the one that accepts
writes, ``postgresql+asyncpg://USER@/DB?host=H1:P1&host=H2:P2&target_session_attrs=read-write``
(SQLAlchemy's multi-host form for asyncpg: each ``host`` with its port, none in the
authority; ``target_session_attrs`` goes to asyncpg's ``connect``). asyncpg tries the
hosts in order at each new connection and keeps the first that is neither a hot standby
nor read-only; one it cannot reach costs that attempt's share of the connect timeout,
which covers all the hosts together. After a failover the pooled connections to the
old primary are dead and go with the pool, as after a restart, and new ones find the
promoted standby; until there is one, no host qualifies and requests are 503s. A
pooled connection whose server stopped accepting writes (SQLSTATE 25006, a primary made
read-only) is a 503 as well and is discarded with every connection pooled before it
(:data:`~optimist.sqlalchemy._availability.DISCARDING`, SQLAlchemy's ``handle_error``
event), so that the next connection looks for the primary again.

Behind a connection pooler in transaction mode (PgBouncer's ``pool_mode =
transaction``), say so: ``create_engine(url, pooler="transaction")`` or
``?pooler=transaction`` in the URL (:data:`POOLERS`; the parameter is taken out before
SQLAlchemy sees the URL). Both prepared-statement caches, asyncpg's and SQLAlchemy's,
are then off and every statement is unnamed, as :mod:`optimist.sqlalchemy._pooler`
explains: no statement of one client meets another's on a shared server connection.
The cost: each statement is parsed and planned at every execution, and asyncpg asks
for its result's types first, one more round trip per statement (two instead of one
for a one-row read or a conditional write). Session pooling needs no such setting.

Work that is one statement (a read of one row, a conditional ``UPDATE … RETURNING``)
is atomic by itself and needs no transaction around it: :func:`autocommit` runs it
without BEGIN and COMMIT, one round trip on PostgreSQL instead of three, and on SQLite
without the ``BEGIN`` statement (a single write statement takes the write lock
itself, waiting out the busy timeout, and has nothing to upgrade).

A database that cannot serve the work (unreachable, restarting, a pool with no free
connection, a lock not granted within the busy or lock timeout) raises
:class:`~optimist.errors.ServiceUnavailable` from :func:`autocommit` and
:func:`transaction`, as from every operation of this package, whose ``retry_after`` is
the engine's (``create_engine(retry_after=...)``, :data:`DEFAULT_RETRY_AFTER` seconds
by default); :mod:`optimist.sqlalchemy._availability` tells such failures from others
and logs each outage once.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, PoolResetState, QueuePool

from optimist.sqlalchemy import _pooler
from optimist.sqlalchemy._availability import (
    DEFAULT_RETRY_AFTER,
    DISCARDING,
    Translation,
    configure,
)
from optimist.sqlalchemy._pooler import POOLERS

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "POOLERS",
    "POSTGRES_CONNECT_TIMEOUT",
    "POSTGRES_IDLE_PING",
    "POSTGRES_POOL",
    "SQLITE_BEGIN",
    "SQLITE_BUSY_TIMEOUT",
    "SQLITE_FILE_MODE",
    "SQLITE_POOL",
    "Bind",
    "autocommit",
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

#: The mode a SQLite database file is created with: its owner reads and writes it, no one
#: else (it may hold secrets; the reference service keeps its signing key there).
SQLITE_FILE_MODE: Final = 0o600

#: Pool settings for PostgreSQL; each may be overridden by a keyword of the same name.
POSTGRES_POOL: Final[dict[str, Any]] = {
    # A fixed pool, as asyncpg's own: SQLAlchemy closes an overflow connection as
    # soon as it is returned while pool_size others sit idle, so under a steady load
    # of many concurrent requests overflow means a new connection (a TCP connect,
    # authentication, asyncpg's setup) for a good share of them. A request beyond
    # twenty concurrent statements waits for a connection (pool_timeout) instead;
    # work that needs two statements passes its connection, it never takes a second.
    "pool_size": 20,
    "max_overflow": 0,
    "pool_timeout": 30.0,
    "pool_recycle": 1800,
}

#: Pool settings for a SQLite file; each may be overridden by a keyword of the same name.
SQLITE_POOL: Final[dict[str, Any]] = {
    # Fixed for the reason PostgreSQL's is: an overflow connection closed as soon as it
    # is returned means, under load, a new one for many statements, and a new aiosqlite
    # connection is a thread and four pragmas. As many as SQLAlchemy's default allows
    # at most (5 + 10 overflow), kept.
    "pool_size": 15,
    "max_overflow": 0,
}

#: Seconds a pooled PostgreSQL connection may sit unused before it is pinged at checkout.
POSTGRES_IDLE_PING: Final = 10.0

#: Seconds asyncpg tries to connect before the attempt fails (and the request is a 503).
POSTGRES_CONNECT_TIMEOUT: Final = 5.0

_BEGIN_MODES: Final = frozenset({"IMMEDIATE", "DEFERRED", "EXCLUSIVE"})
# Execution option of the engine behind autocommit() on SQLite: no BEGIN at all.
_NO_BEGIN: Final = "optimist_sqlite_no_begin"
_IDLE_SINCE: Final = "optimist_idle_since"  # connection-record info: when it was checked in
# Attribute of an engine that holds the engines derived from it once (execution_options()
# builds a new one at every call). On the engine itself, not in a WeakKeyDictionary: a
# derived engine refers to its parent, so a weak key would never die, nor the engine.
_DERIVED: Final = "_optimist_derived"


def create_engine(
    url: str | URL,
    *,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT,
    idle_ping: float | None = POSTGRES_IDLE_PING,
    retry_after: int = DEFAULT_RETRY_AFTER,
    file_mode: int | None = SQLITE_FILE_MODE,
    pooler: str | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for ``url`` configured as this module's docstring describes.

    ``busy_timeout`` (seconds) and ``file_mode`` (the mode a database file that does not
    exist yet is created with; None leaves that to SQLite) apply to SQLite only,
    ``idle_ping`` (seconds, None: never) to PostgreSQL only; ``retry_after`` (seconds) is
    what a 503 of this engine asks a client to wait. ``pooler`` (or the URL's
    ``?pooler=``) names the mode of a connection pooler between the engine and
    PostgreSQL, ``"transaction"`` being the one that needs settings of its own (see this
    module's docstring); a mode it does not know, or one that contradicts the URL or
    ``connect_args``, raises ValueError. ``kwargs`` go to
    :func:`sqlalchemy.ext.asyncio.create_async_engine` and win over the defaults.
    """
    parsed, pooler = _pooler.pooled(make_url(url), pooler)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if file_mode is not None:
            _create_database_file(parsed, file_mode)
        connect_args = {"timeout": busy_timeout, **kwargs.pop("connect_args", {})}
        # The pool's rollback of every returned connection is replaced by on_reset's.
        kwargs.setdefault("pool_reset_on_return", None)
        if _queued(parsed, kwargs):
            kwargs = {**SQLITE_POOL, **kwargs}
        engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, busy_timeout)
    elif backend == "postgresql":
        if parsed.get_driver_name() == "asyncpg":
            kwargs["connect_args"] = {
                "timeout": POSTGRES_CONNECT_TIMEOUT,
                **kwargs.get("connect_args", {}),
            }
            if pooler is not None:
                kwargs["connect_args"] = _pooler.connect_args(parsed, kwargs["connect_args"])
        engine = create_async_engine(parsed, **{**POSTGRES_POOL, **kwargs})
        _check_at_checkout(engine, idle_ping)
        _discard_on_refusal(engine)
    else:
        engine = create_async_engine(parsed, **kwargs)
    configure(engine, retry_after)
    return engine


def _queued(url: URL, kwargs: dict[str, Any]) -> bool:
    """Whether an engine on ``url`` made with ``kwargs`` pools its connections in a queue
    (a file; an in-memory database has one connection, which no pool setting concerns)."""
    if "poolclass" in kwargs or "pool" in kwargs:
        return isinstance(kwargs.get("poolclass"), type) and issubclass(
            kwargs["poolclass"], QueuePool
        )
    dialect: Any = url.get_dialect()  # DefaultDialect's classmethod, not on the protocol
    return issubclass(dialect.get_pool_class(url), QueuePool)


def _derived(engine: AsyncEngine, name: str, **options: Any) -> AsyncEngine:
    """``engine.execution_options(**options)``, made once per engine and kept."""
    made: dict[str, AsyncEngine] | None = getattr(engine.sync_engine, _DERIVED, None)
    if made is None:
        made = {}
        setattr(engine.sync_engine, _DERIVED, made)
    derived = made.get(name)
    if derived is None:
        derived = made[name] = engine.execution_options(**options)
    return derived


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for reads: on SQLite its transactions take no write lock."""
    if engine.dialect.name != "sqlite":
        return engine
    return _derived(engine, "reading", **{SQLITE_BEGIN: "DEFERRED"})


@asynccontextmanager
async def autocommit(bind: Bind, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection for work whose every statement is atomic by itself.

    Given an engine, a connection of its own on which each statement commits as it
    completes: no BEGIN, no COMMIT (see this module's docstring). Given a connection,
    :func:`transaction` on it (``read`` as there): a caller's transaction is joined.
    A database that cannot serve the work raises ServiceUnavailable.
    """
    with Translation(bind) as translation:
        async with committing(bind, translation, read=read) as connection:
            yield connection


@asynccontextmanager
async def transaction(bind: Bind, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction, committed on success and rolled back on error.

    Given an engine, a connection of its own. Given a connection already in a
    transaction, that transaction: the caller commits. Given a connection outside one,
    a transaction on it that ends with the block. On SQLite a ``read`` transaction of
    its own starts with a deferred BEGIN: it takes no write lock. A database that
    cannot serve the work raises ServiceUnavailable.
    """
    with Translation(bind) as translation:
        async with _transaction(bind, translation, read=read) as connection:
            yield connection


@asynccontextmanager
async def committing(
    bind: Bind, translation: Translation, *, read: bool = False
) -> AsyncIterator[AsyncConnection]:
    """:func:`autocommit` without its translation, marking ``translation`` once connected.

    For :mod:`optimist.sqlalchemy._fetch`, which decides itself whether a statement
    whose connection failed runs again.
    """
    if not isinstance(bind, AsyncEngine):
        async with _transaction(bind, translation, read=read) as connection:
            yield connection
        return
    if bind.dialect.name == "sqlite":
        # The driver is in autocommit mode already (see _configure_sqlite): only the
        # BEGIN that on_begin would emit is left out.
        derived = _derived(bind, "autocommit", **{_NO_BEGIN: True})
    else:
        derived = _derived(bind, "autocommit", isolation_level="AUTOCOMMIT")
    async with derived.begin() as connection:
        translation.connected = True
        yield connection


@asynccontextmanager
async def _transaction(
    bind: Bind, translation: Translation, *, read: bool
) -> AsyncIterator[AsyncConnection]:
    if isinstance(bind, AsyncEngine):
        async with (reading(bind) if read else bind).begin() as connection:
            translation.connected = True
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


def _create_database_file(url: URL, mode: int) -> None:
    """Create the (empty) SQLite database file of ``url`` with ``mode``, unless it exists.

    An empty file is an empty database to SQLite. In-memory databases and URI filenames
    (``?uri=true``, which say how to open the file themselves) are left alone; a file
    that exists keeps its mode. Two processes creating it at once agree (O_EXCL); a
    path that cannot be created is left for SQLite to report when it opens it.
    """
    path = url.database
    if not path or path == ":memory:" or url.query.get("uri"):
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError:  # it exists, or SQLite will say what is wrong with the path
        return
    os.close(descriptor)


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
        options = connection.get_execution_options()
        if options.get(_NO_BEGIN):
            return
        mode = options.get(SQLITE_BEGIN, "IMMEDIATE")
        if mode not in _BEGIN_MODES:
            raise ValueError(f"{SQLITE_BEGIN} must be one of {sorted(_BEGIN_MODES)}, not {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")

    def on_reset(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
        # A connection goes back to the pool rolled back, as SQLAlchemy's default reset
        # does, but only when a transaction is open: aiosqlite runs each rollback on
        # its thread, a hop that costs as much as a one-row statement, and a
        # connection in autocommit mode is usually outside any transaction.
        driver = record.driver_connection
        if not state.terminate_only and driver is not None and driver.in_transaction:
            dbapi_connection.rollback()

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    event.listen(engine.sync_engine, "reset", on_reset)


def _check_at_checkout(engine: AsyncEngine, idle_ping: float | None) -> None:
    """Refuse a pooled connection at checkout that asyncpg knows is closed, and ping one
    that sat unused longer than ``idle_ping`` seconds (None: never).

    A dead one is replaced: DisconnectionError from a checkout listener makes the pool
    discard the connection and check out another (SQLAlchemy's "pessimistic" recipe).
    Its subclass InvalidatePoolError also recycles the connections pooled before it:
    what closed one (a restart, an administrator) closed them too.
    """
    dialect = engine.dialect
    flagged = dialect.driver == "asyncpg"
    if not flagged and idle_ping is None:
        return

    def on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        driver = record.driver_connection
        if flagged and driver is not None and driver.is_closed():
            raise InvalidatePoolError("a pooled connection was closed while it sat idle")
        if idle_ping is None or since is None or time.monotonic() - since < idle_ping:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise InvalidatePoolError("a pooled connection did not answer a ping")

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


def _discard_on_refusal(engine: AsyncEngine) -> None:
    """Treat an error whose SQLSTATE is in :data:`DISCARDING` as a disconnect.

    SQLAlchemy then invalidates the connection, and the pool with it, instead of pooling
    it again: a server that stopped accepting writes refuses every later write of its
    sessions, while a new connection may find the primary.
    """

    def on_error(context: ExceptionContext) -> None:
        if getattr(context.original_exception, "sqlstate", None) in DISCARDING:
            context.is_disconnect = True

    event.listen(engine.sync_engine, "handle_error", on_error)

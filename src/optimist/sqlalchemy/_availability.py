"""A database that cannot serve a statement: tell it apart, log it once, answer 503.

A database that goes away (a restart, a failover, a network partition, a full pool, a
lock held too long) is no fault of the request: the client should hear that it may try
again later (:class:`~optimist.errors.ServiceUnavailable`, 503 with ``Retry-After``),
never a 500. :func:`failure` recognises such a failure of the driver or the pool:

=============================================  ====================================
the failure                                    reason
=============================================  ====================================
an ``OSError`` while connecting (refused,      cannot connect / connect timed out
unreachable, DNS), or its timeout
SQLAlchemy's pool ``TimeoutError``             no free connection in the pool
SQLSTATE class 08, a connection SQLAlchemy     connection lost
found gone, asyncpg's "connection is closed"
57P01, 57P02, 57P05 (the server ended the      the server ended the session
session: shutdown, crash, idle timeout)
57P03, 53300, class 53                         the server is starting or shutting
                                               down / too many connections / out
                                               of resources
57014, 55P03                                   statement timeout / lock timeout
40001, 40P01 (the server rolled the            serialization failure / deadlock
transaction back to break a conflict with      detected
another; nothing of it was applied)
25006 (read-only SQL transaction: the server   the server accepts no writes
accepts no writes, a primary made read-only
or a standby)
asyncpg's ``TargetServerAttributeNotMatched``  no host in the wanted role
(no host of a multi-host URL is in the role
``target_session_attrs`` asks for: no
primary during a failover)
SQLite's SQLITE_BUSY, SQLITE_LOCKED            database is locked
=============================================  ====================================

Anything else stays what it is: a value the database refuses is
:mod:`optimist.sqlalchemy._integrity`'s to translate, a programming error an error.
Each engine has a ``retry_after`` (``create_engine(retry_after=...)``, default
:data:`DEFAULT_RETRY_AFTER` seconds) that its 503s carry.

A failure also says whether the statement may run again on a fresh connection
(:class:`Failure`): a read may whenever its connection died; a write only when it
certainly never reached the server (asyncpg raises "connection is closed" before it
sends a byte), because a write the server received may have committed. A connection
whose server accepts no writes (25006) counts as lost: it is discarded with the pool
(:data:`DISCARDING`), so that the next connection looks for the primary again.

An outage fails every request while it lasts; its log must not grow with them. The
failures of one engine (and of the engines derived from it, which share its dialect)
form an *episode*: the first logs one WARNING on the ``optimist.sqlalchemy`` logger,
naming the database (password hidden) and the cause; the others log at DEBUG; the
first success after them logs one INFO, "available again after N s", and ends it.
While every database is up, the check a success makes is one test of an empty mapping.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeAlias

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optimist.errors import OptimistError, ServiceUnavailable
from optimist.problem import shorten

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "DISCARDING",
    "Failure",
    "Translation",
    "configure",
    "failure",
    "report",
    "succeeded",
    "unavailable",
]

#: Seconds a 503 asks the client to wait when the engine names no other.
DEFAULT_RETRY_AFTER: Final = 1

_LOG: Final = logging.getLogger("optimist.sqlalchemy")

_Bind: TypeAlias = AsyncEngine | AsyncConnection

_LOST: Final = "connection lost"
_SQLSTATES: Final = {
    "57P01": "the server ended the session",
    "57P02": "the server ended the session",
    "57P05": "the server ended the session",
    "57P03": "the server is starting or shutting down",
    "53300": "too many connections",
    "57014": "statement timeout",
    "55P03": "lock timeout",
    "25006": "the server accepts no writes",
    "40001": "serialization failure",
    "40P01": "deadlock detected",
}
#: SQLSTATEs after which a connection is of no more use although it may still be open: a
#: server that accepts no writes (read_only_sql_transaction) will not accept them on this
#: session again, while a new connection may find the primary (``target_session_attrs``).
DISCARDING: Final = frozenset({"25006"})
# SQLSTATEs after which the connection is gone, or of no more use.
_ENDED: Final = frozenset({"57P01", "57P02", "57P05", *DISCARDING})
# SQLite's primary result codes for a lock it could not take in time.
_SQLITE_BUSY: Final = frozenset({5, 6})
# How deep a chain of causes is followed (a DBAPIError, the adapter's error, the driver's).
_DEPTH: Final = 6


@dataclass(frozen=True, slots=True)
class Failure:
    """A database failure: its ``reason``, and whether its statement may run again.

    ``lost``: the connection died, so a read may run again on a fresh one. ``unsent``:
    the statement never left this process, so even a write may.
    """

    reason: str
    lost: bool = False
    unsent: bool = False


@dataclass(slots=True)
class _Episode:
    since: float


# Per dialect (an engine and the engines derived from it share one): its Retry-After.
_RETRY_AFTER: weakref.WeakKeyDictionary[Dialect, int] = weakref.WeakKeyDictionary()
# The dialects whose database is unavailable now; empty while every database is up.
_DOWN: weakref.WeakKeyDictionary[Dialect, _Episode] = weakref.WeakKeyDictionary()


def configure(engine: AsyncEngine, retry_after: int) -> None:
    """Give ``engine``'s 503s a ``Retry-After`` of ``retry_after`` seconds."""
    if retry_after < 0:
        raise ValueError(f"retry_after cannot be negative, not {retry_after}")
    _RETRY_AFTER[engine.sync_engine.dialect] = retry_after


def failure(error: BaseException, *, connecting: bool = False) -> Failure | None:
    """The database failure ``error`` is, or None when it is something else.

    ``connecting``: ``error`` was raised while a connection was being obtained, where an
    ``OSError`` can only be the network's (later it could be the caller's own).
    """
    if isinstance(error, OptimistError) or not isinstance(error, Exception):
        return None
    wrapped = False
    current: BaseException | None = error
    for _ in range(_DEPTH):
        if current is None:
            break
        found = _one(current, connecting=connecting, wrapped=wrapped)
        if found is not None:
            return found
        wrapped = wrapped or isinstance(current, DBAPIError)
        current = current.orig if isinstance(current, DBAPIError) else current.__cause__
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return Failure(_LOST, lost=True)
    return None


def _one(error: BaseException, *, connecting: bool, wrapped: bool) -> Failure | None:
    """What one link of a chain of causes says, if anything; ``wrapped``: under a DBAPIError."""
    if isinstance(error, PoolTimeout):
        return Failure("no free connection in the pool")
    if isinstance(error, DisconnectionError):
        return Failure(_LOST, lost=True)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _postgres(sqlstate)
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if (isinstance(code, int) and code & 0xFF in _SQLITE_BUSY) or "is locked" in str(error):
            return Failure("database is locked")
        return None
    if _closed_before_sending(error):
        return Failure(_LOST, lost=True, unsent=True)
    if _no_host_in_role(error):
        return Failure("no host in the wanted role")
    if isinstance(error, OSError):
        if connecting:
            timed_out = isinstance(error, TimeoutError)
            return Failure("connect timed out" if timed_out else "cannot connect")
        if wrapped:
            # The socket failed beneath the driver, in the middle of a statement.
            return Failure(_LOST, lost=True)
    return None


def _postgres(sqlstate: str) -> Failure | None:
    if sqlstate.startswith("08"):
        return Failure(_LOST, lost=True)
    reason = _SQLSTATES.get(sqlstate)
    if reason is not None:
        return Failure(reason, lost=sqlstate in _ENDED)
    if sqlstate.startswith("53"):
        return Failure("the server is out of resources")
    return None


def _closed_before_sending(error: BaseException) -> bool:
    """asyncpg's refusal to use a connection it knows is closed: nothing was sent."""
    interface = _asyncpg_error("InterfaceError")
    return (
        interface is not None
        and isinstance(error, interface)
        and str(error).endswith("connection is closed")
    )


def _no_host_in_role(error: BaseException) -> bool:
    """asyncpg's refusal of every host of a multi-host URL: each one it reached is in
    another role than ``target_session_attrs`` asks for (a standby for ``read-write``)."""
    unmatched = _asyncpg_error("TargetServerAttributeNotMatched")
    return unmatched is not None and isinstance(error, unmatched)


@functools.cache
def _asyncpg_error(name: str) -> type[Exception] | None:
    """asyncpg's exception class ``name``, or None without asyncpg."""
    try:
        # Imported on first use: asyncpg is optional (the postgres extra).
        import asyncpg.exceptions  # noqa: PLC0415
    except ImportError:  # pragma: no cover - asyncpg is the postgres extra
        return None
    found: type[Exception] = getattr(asyncpg.exceptions, name)
    return found


def report(engine: Engine, found: Failure, error: BaseException) -> ServiceUnavailable:
    """The 503 for ``found`` on ``engine``, logged as this module's docstring says."""
    dialect = engine.dialect
    episode = _DOWN.get(dialect)
    cause = _cause(error)
    if episode is None:
        _DOWN[dialect] = _Episode(time.monotonic())
        _LOG.warning(
            "database %s is unavailable (%s): %s; answering 503 until it is back",
            engine.url.render_as_string(hide_password=True),
            found.reason,
            cause,
        )
    else:
        _LOG.debug("database still unavailable (%s): %s", found.reason, cause)
    retry_after = _RETRY_AFTER.get(dialect, DEFAULT_RETRY_AFTER)
    return ServiceUnavailable(found.reason, retry_after=retry_after)


def succeeded(engine: Engine) -> None:
    """Note that a statement on ``engine`` succeeded: the end of an episode, if any."""
    if _DOWN:
        episode = _DOWN.pop(engine.dialect, None)
        if episode is not None:
            _LOG.info(
                "database %s is available again after %.1f s",
                engine.url.render_as_string(hide_password=True),
                time.monotonic() - episode.since,
            )


def _cause(error: BaseException) -> str:
    """The driver's error under ``error``, in one short line: no statement, no parameters."""
    current = error
    for _ in range(_DEPTH):
        below = current.orig if isinstance(current, DBAPIError) else current.__cause__
        if below is None:
            break
        current = below
    lines = str(current).strip().splitlines()
    return f"{type(current).__name__}: {shorten(lines[0] if lines else '', 200)}"


def unavailable(error: BaseException, bind: _Bind | None = None) -> ServiceUnavailable | None:
    """The :class:`~optimist.errors.ServiceUnavailable` ``error`` stands for, or None.

    For statements of an application's own: None means ``error`` is no database
    failure (re-raise it). An ``OSError`` counts as a failure to connect. Given the
    ``bind`` the statement ran on, the 503 carries that engine's ``retry_after`` and the
    failure joins its episode (see this module's docstring); without one it carries
    :data:`DEFAULT_RETRY_AFTER` and nothing is logged.
    """
    found = failure(error, connecting=True)
    if found is None:
        return None
    if bind is None:
        return ServiceUnavailable(found.reason, retry_after=DEFAULT_RETRY_AFTER)
    return report(bind.sync_engine, found, error)


class Translation:
    """Turns the database failures raised in a ``with`` block into ServiceUnavailable.

    The block sets ``connected`` once it holds a connection: before that an ``OSError``
    is a failure to connect, after it the caller's own. A block that ends without an
    error is a success of ``bind``'s database. :meth:`resend` is for a block that runs
    one statement and may run it again.
    """

    __slots__ = ("bind", "connected", "resent")

    def __init__(self, bind: _Bind) -> None:
        self.bind = bind
        self.connected = not isinstance(bind, AsyncEngine)
        self.resent = False

    def __enter__(self) -> Translation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            if _DOWN:
                succeeded(self.bind.sync_engine)
            return
        found = failure(error, connecting=not self.connected)
        if found is not None:
            raise report(self.bind.sync_engine, found, error) from error

    def resend(self, error: BaseException, *, write: bool) -> bool:
        """Whether the statement that raised ``error`` may run once more, on a new connection.

        Once per block, given an engine (a caller's connection is the caller's
        transaction): a read after its connection died, a write only when it was
        never sent.
        """
        if self.resent or not isinstance(self.bind, AsyncEngine):
            return False
        found = failure(error, connecting=not self.connected)
        if found is None or not (found.unsent if write else found.lost):
            return False
        self.resent = True
        self.connected = False
        return True

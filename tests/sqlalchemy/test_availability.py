"""Telling a database that cannot serve from other failures, and logging each outage once
(optimist.sqlalchemy._availability, optimist.sqlalchemy.unavailable)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.errors import PreconditionFailed, ServiceUnavailable
from optimist.sqlalchemy import DEFAULT_RETRY_AFTER, create, create_engine, get, unavailable, update
from optimist.sqlalchemy._availability import Failure, failure
from tests.support.stores import Store, declare

pytestmark = pytest.mark.anyio

LOST = Failure("connection lost", lost=True)
ENDED = Failure("the server ended the session", lost=True)


def wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    """``orig`` as SQLAlchemy raises it from a statement."""
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


FAILURES: list[tuple[BaseException, bool, Failure | None]] = [
    (ConnectionRefusedError(111, "Connect call failed"), True, Failure("cannot connect")),
    (TimeoutError(), True, Failure("connect timed out")),
    (ConnectionRefusedError(111, "a service of the caller's"), False, None),
    (PoolTimeout("QueuePool limit reached"), True, Failure("no free connection in the pool")),
    (asyncpg.TooManyConnectionsError("sorry"), True, Failure("too many connections")),
    (
        asyncpg.CannotConnectNowError("starting up"),
        True,
        Failure("the server is starting or shutting down"),
    ),
    (asyncpg.AdminShutdownError("administrator command"), False, ENDED),
    (asyncpg.ConnectionDoesNotExistError("closed mid-operation"), False, LOST),
    (
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        False,
        Failure("connection lost", lost=True, unsent=True),
    ),
    (asyncpg.QueryCanceledError("statement timeout"), False, Failure("statement timeout")),
    (asyncpg.LockNotAvailableError("lock timeout"), False, Failure("lock timeout")),
    (asyncpg.SerializationError("could not serialize"), False, Failure("serialization failure")),
    (asyncpg.DeadlockDetectedError("deadlock detected"), False, Failure("deadlock detected")),
    (asyncpg.DiskFullError("no space"), False, Failure("the server is out of resources")),
    (sqlite3.OperationalError("database is locked"), False, Failure("database is locked")),
    (wrapped(asyncpg.AdminShutdownError("administrator command")), False, ENDED),
    (wrapped(ConnectionResetError(104, "reset")), False, LOST),
    (wrapped(ValueError("gone"), invalidated=True), False, LOST),
    (wrapped(asyncpg.UniqueViolationError("duplicate key")), False, None),
    (wrapped(sqlite3.IntegrityError("UNIQUE constraint failed: items.id")), False, None),
    (asyncpg.InterfaceError("another operation is in progress"), False, None),
    (ValueError("a bug"), True, None),
    (ServiceUnavailable("already translated"), True, None),
    (PreconditionFailed(None), False, None),
]
IDS = [
    "refused-at-connect",
    "connect-timeout",
    "oserror-after-connecting",
    "pool-exhausted",
    "too-many-connections",
    "cannot-connect-now",
    "admin-shutdown",
    "connection-does-not-exist",
    "closed-before-sending",
    "statement-timeout",
    "lock-timeout",
    "serialization-failure",
    "deadlock",
    "out-of-resources",
    "sqlite-locked",
    "wrapped-admin-shutdown",
    "wrapped-socket-error",
    "sqlalchemy-saw-a-disconnect",
    "unique-violation",
    "sqlite-integrity",
    "interface-misuse",
    "programming-error",
    "already-translated",
    "precondition-failed",
]


@pytest.mark.parametrize(("error", "connecting", "expected"), FAILURES, ids=IDS)
def test_failures_are_told_apart(
    error: BaseException, connecting: bool, expected: Failure | None
) -> None:
    """Each failure of the database is recognised with its reason; anything else is not."""
    assert failure(error, connecting=connecting) == expected


def test_unavailable_leaves_other_errors_alone() -> None:
    """A refused value is no outage: None, for the caller to re-raise."""
    assert unavailable(wrapped(asyncpg.UniqueViolationError("duplicate key"))) is None


def test_unavailable_without_an_engine_asks_for_the_default_wait() -> None:
    """Without the engine, the 503 carries DEFAULT_RETRY_AFTER; an OSError is a failed connect."""
    translated = unavailable(ConnectionRefusedError(111, "refused"))
    assert translated is not None
    assert (translated.reason, translated.retry_after) == ("cannot connect", DEFAULT_RETRY_AFTER)


async def test_unavailable_with_an_engine_asks_for_its_wait(tmp_path: Path) -> None:
    """Given the engine the statement ran on, the 503 carries that engine's retry_after."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", retry_after=9)
    try:
        translated = unavailable(sqlite3.OperationalError("database is locked"), engine)
        assert translated is not None
        assert translated.retry_after == 9
    finally:
        await engine.dispose()


def test_a_negative_retry_after_is_refused() -> None:
    """An engine cannot ask clients to wait a negative time."""
    with pytest.raises(ValueError, match="negative"):
        create_engine("sqlite+aiosqlite://", retry_after=-1)


# -- one log per outage --------------------------------------------------------------------------


@dataclass
class Locked:
    """A store on a SQLite file, and the connection that holds its write lock."""

    store: Store
    holder: sqlite3.Connection

    def release(self) -> None:
        self.holder.rollback()


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[Locked]:
    """A row on a SQLite file whose write lock another connection holds."""
    file = tmp_path / "outage.db"
    items, weak_items = declare()
    engine = create_engine(f"sqlite+aiosqlite:///{file}", busy_timeout=0.05)
    async with engine.begin() as connection:
        await connection.run_sync(items.table.metadata.create_all)
    await create(engine, items, {"id": "a"})
    holder = sqlite3.connect(file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield Locked(Store(str(file), engine, items, weak_items), holder)
    finally:
        holder.close()
        await engine.dispose()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the ``optimist.sqlalchemy`` logger."""
    caplog.set_level(logging.DEBUG, logger="optimist.sqlalchemy")
    return caplog


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The records of ``optimist.sqlalchemy`` at ``level``."""
    return [r for r in caplog.records if r.name == "optimist.sqlalchemy" and r.levelno == level]


async def fail_writes(store: Store, count: int) -> None:
    """``count`` writes that each raise ServiceUnavailable."""
    for _ in range(count):
        with pytest.raises(ServiceUnavailable):
            await update(store.engine, store.items, "a", {"name": "x"})


async def test_an_outage_warns_once(locked: Locked, logged: pytest.LogCaptureFixture) -> None:
    """Three failures of one outage: one WARNING that names the cause, the rest at DEBUG."""
    await fail_writes(locked.store, 3)
    (warning,) = records(logged, logging.WARNING)
    assert "database is locked" in warning.getMessage()
    assert len(records(logged, logging.DEBUG)) == 2


async def test_the_end_of_an_outage_is_logged_once(
    locked: Locked, logged: pytest.LogCaptureFixture
) -> None:
    """The first success after an outage logs one INFO; later successes log nothing."""
    await fail_writes(locked.store, 2)
    locked.release()
    for _ in range(3):
        await update(locked.store.engine, locked.store.items, "a", {"name": "y"})
    (info,) = records(logged, logging.INFO)
    assert "available again after" in info.getMessage()


async def test_a_new_outage_warns_again(locked: Locked, logged: pytest.LogCaptureFixture) -> None:
    """An outage after a recovery is a new one: it warns again."""
    await fail_writes(locked.store, 1)
    locked.release()
    await get(locked.store.engine, locked.store.items, "a")
    await update(locked.store.engine, locked.store.items, "a", {"name": "y"})
    locked.holder.execute("BEGIN IMMEDIATE")
    await fail_writes(locked.store, 1)
    assert len(records(logged, logging.WARNING)) == 2


async def test_the_warning_hides_the_password(logged: pytest.LogCaptureFixture) -> None:
    """The database is named without its password."""
    items, _ = declare()
    engine: AsyncEngine = create_engine("postgresql+asyncpg://root:s3cret@127.0.0.1:1/db")
    try:
        with pytest.raises(ServiceUnavailable):
            await get(engine, items, "a")
    finally:
        await engine.dispose()
    (warning,) = records(logged, logging.WARNING)
    assert "s3cret" not in warning.getMessage()
    assert "root:***@127.0.0.1:1/db" in warning.getMessage()

"""What every request of the service shares: settings, engines, signer, cursor codec.

Built once per worker process in the application's lifespan. The secret is the
deployment's (``OPTIMIST_SECRET_KEY``, or one generated once and kept in the
database), so a cursor or CSRF token issued by one worker verifies in every other.

CSRF tokens are signed (:class:`~optimist.tokens.TokenSigner`): they carry nothing but
their audience and age. Cursors are sealed (:class:`~optimist.cryptography.TokenSealer`,
AES-GCM): a signed cursor would show its keyset position and its snapshot's watermark,
a count of the creates of every tenant, to whoever holds it. Sealed, a cursor is still
bound to its listing (route, tenant, filters: another's is a 400), refused when
changed (400) and expired with its snapshot (410). Both keys are derived from the one
secret, each for its own use.

With ``read_database_url``, a second engine reaches the database's streaming replica;
:mod:`optimist.service.reads` decides which reads it serves. Only the primary is
migrated and holds the secret: the replica is read-only, and receives both by
replication.

The engine's 503s ask a client to wait :data:`RETRY_AFTER` seconds. A worker that starts
while the database is unavailable (a restart during an outage, a SQLite write lock held
beyond the busy timeout) waits for it, trying again every :data:`RETRY_AFTER` seconds
and logging the wait once: it serves no request before its runtime exists, while the
other workers answer theirs, and a worker that failed its start instead would make
uvicorn stop the whole deployment. :func:`prepare`, which ``optimist migrate`` and the
start of ``optimist serve`` run once, does not wait: an unavailable database is a
:class:`~optimist.errors.ServiceUnavailable` saying why.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as token_secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final, TypeVar

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.cryptography import TokenSealer
from optimist.cursor import CursorCodec
from optimist.errors import ServiceUnavailable
from optimist.service import demo
from optimist.service.episodes import Episode
from optimist.service.migrate import upgrade
from optimist.service.schema import secrets
from optimist.service.settings import Settings
from optimist.sqlalchemy import create_engine, transaction, unavailable
from optimist.sqlalchemy.idempotency import purge
from optimist.tokens import TokenSigner

__all__ = ["RETRY_AFTER", "Runtime", "RuntimeDep", "prepare", "runtime", "signing_key", "start"]

#: Seconds a 503 for an unavailable database asks the client to wait: a terminated
#: session or a restarted server is usually behind the pool by then, and a client that
#: comes back too early only gets another 503.
RETRY_AFTER: Final = 1

_SIGNING_KEY = "signing_key"
_LOGGER: Final = logging.getLogger("uvicorn.error")
_T = TypeVar("_T")
_LOCAL_FILES: Final = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The per-process services a request handler may use.

    ``engine`` is the primary's: every write, and every read that decides one. ``replica``
    is the read database's engine, None without ``read_database_url``.
    """

    settings: Settings
    engine: AsyncEngine
    signer: TokenSigner
    cursors: CursorCodec
    replica: AsyncEngine | None = None

    @property
    def node_id(self) -> str:
        """This node's name in vector clocks."""
        return self.settings.node_id

    @property
    def read_engine(self) -> AsyncEngine:
        """Where plain reads go: the replica, or the primary when there is none."""
        return self.replica or self.engine

    async def dispose(self) -> None:
        """Close the pooled connections of both engines."""
        try:
            await self.engine.dispose()
        finally:
            if self.replica is not None:
                await self.replica.dispose()


def _engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """The engine of ``url`` (default: the database of ``settings``) with their busy
    timeout, and :data:`RETRY_AFTER`."""
    return create_engine(
        url or settings.database_url, busy_timeout=settings.busy_timeout, retry_after=RETRY_AFTER
    )


async def signing_key(engine: AsyncEngine, settings: Settings) -> str:
    """The deployment's signing key: configured, or generated once and kept in the database.

    Concurrent first starts race on an insert that does nothing on conflict, then all
    read the one value that won.
    """
    if settings.secret_key:
        return settings.secret_key
    async with transaction(engine) as connection:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        await connection.execute(
            dialect.insert(secrets)
            .values(name=_SIGNING_KEY, value=token_secrets.token_urlsafe(32))
            .on_conflict_do_nothing(index_elements=[secrets.c.name])
        )
        key = await connection.scalar(select(secrets.c.value).where(secrets.c.name == _SIGNING_KEY))
    assert key is not None  # inserted above, or by whoever won the race
    return str(key)


async def prepare(settings: Settings, engine: AsyncEngine | None = None) -> bool:
    """Migrate the database (and fill a fresh one with the demo data); True if it was fresh.

    Raises ServiceUnavailable when the database cannot serve the work.
    """
    own = engine is None
    engine = engine or _engine(settings)
    try:
        fresh, _ = await _prepared(settings, engine)
    finally:
        if own:
            await engine.dispose()
    return fresh


async def _prepared(settings: Settings, engine: AsyncEngine) -> tuple[bool, str]:
    """Migrate, load the demo data into a fresh database, delete a batch of expired
    Idempotency-Key records, read the signing key: whether the database was fresh, and
    the key. An outage is a ServiceUnavailable."""
    try:
        fresh = await upgrade(engine)
        if fresh and settings.demo_data:
            await demo.load(engine)
        # Expired records already count as absent; this only keeps the table small.
        await purge(engine)
        return fresh, await signing_key(engine, settings)
    except Exception as error:
        # Alembic and the demo data use the engine directly, untranslated. A file that
        # cannot be read (a migration script) is no outage: it stays what it is.
        down = None if isinstance(error, _LOCAL_FILES) else unavailable(error, engine)
        if down is None:
            raise
        raise down from error


async def _when_available(work: Callable[[], Awaitable[_T]]) -> _T:
    """``work()``, run again while it fails with ServiceUnavailable (see the module's
    docstring); the wait is logged when it begins and when it ends."""
    waiting = Episode(
        _LOGGER,
        begins="Start waits for the database (%s), trying again every %d s",
        ends="Database available: starting, after %d failed attempts",
    )
    while True:
        try:
            done = await work()
        except ServiceUnavailable as error:
            waiting.occurred(error.reason, RETRY_AFTER)
        else:
            waiting.over()
            return done
        await asyncio.sleep(RETRY_AFTER)


async def start(settings: Settings) -> Runtime:
    """Migrate if needed and build this process's runtime, once the database serves."""
    engine = _engine(settings)
    _, secret = await _when_available(lambda: _prepared(settings, engine))
    read_url = settings.read_database_url
    return Runtime(
        settings=settings,
        engine=engine,
        signer=TokenSigner([secret]),
        cursors=CursorCodec(TokenSealer([secret]), max_age=settings.cursor_max_age),
        replica=None if read_url is None else _engine(settings, read_url),
    )


def runtime(request: Request) -> Runtime:
    """The dependency that gives a route the process's :class:`Runtime`."""
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]

"""What every request of the service shares: settings, engine, signer, cursor codec.

Built once per worker process in the application's lifespan. The signing key is the
deployment's (``OPTIMIST_SECRET_KEY``, or one generated once and kept in the
database), so a cursor or CSRF token issued by one worker verifies in every other.
"""

from __future__ import annotations

import secrets as token_secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.cursor import CursorCodec
from optimist.service import demo
from optimist.service.migrate import upgrade
from optimist.service.schema import secrets
from optimist.service.settings import Settings
from optimist.sqlalchemy import create_engine
from optimist.tokens import TokenSigner

__all__ = ["Runtime", "RuntimeDep", "prepare", "runtime", "signing_key"]

_SIGNING_KEY = "signing_key"


@dataclass(frozen=True, slots=True)
class Runtime:
    """The per-process services a request handler may use."""

    settings: Settings
    engine: AsyncEngine
    signer: TokenSigner
    cursors: CursorCodec

    @property
    def node_id(self) -> str:
        """This node's name in vector clocks."""
        return self.settings.node_id


async def signing_key(engine: AsyncEngine, settings: Settings) -> str:
    """The deployment's signing key: configured, or generated once and kept in the database.

    Concurrent first starts race on an insert that does nothing on conflict, then all
    read the one value that won.
    """
    if settings.secret_key:
        return settings.secret_key
    async with engine.begin() as connection:
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
    """Migrate the database (and fill a fresh one with the demo data); True if it was fresh."""
    own = engine is None
    engine = engine or create_engine(settings.database_url)
    try:
        fresh = await upgrade(engine)
        if fresh and settings.demo_data:
            await demo.load(engine)
        await signing_key(engine, settings)
    finally:
        if own:
            await engine.dispose()
    return fresh


async def start(settings: Settings) -> Runtime:
    """Migrate if needed and build this process's runtime."""
    engine = create_engine(settings.database_url)
    await prepare(settings, engine)
    signer = TokenSigner([await signing_key(engine, settings)])
    return Runtime(
        settings=settings,
        engine=engine,
        signer=signer,
        cursors=CursorCodec(signer, max_age=settings.cursor_max_age),
    )


def runtime(request: Request) -> Runtime:
    """The dependency that gives a route the process's :class:`Runtime`."""
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]

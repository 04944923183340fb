"""Schema migrations (Alembic), applied on start and by ``optimist migrate``.

Servers that start at the same time against one PostgreSQL take turns on an advisory
lock, so the schema and the demo data are created exactly once. The lock is the
transaction's (``pg_advisory_xact_lock``), released when the migration commits or rolls
back: behind a pooler in transaction mode (PgBouncer, docs/scaling.md) a session-level
lock would be taken on one server connection and outlive the migration there.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "upgrade"]

# Any constant works; it only has to be the same for every server of a deployment.
_MIGRATION_LOCK = 0x6F7074696D6973  # "optimis"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", "optimist.service:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(
    engine: AsyncEngine, on_fresh: Callable[[Connection], None] | None = None
) -> bool:
    """Bring the schema to the newest revision; True if the database was empty before.

    ``on_fresh`` runs in the same transaction when the database was empty (the demo data).
    """

    def _upgrade(connection: Connection) -> bool:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        fresh = MigrationContext.configure(connection).get_current_revision() is None
        command.upgrade(alembic_config(connection), "head")
        if fresh and on_fresh is not None:
            on_fresh(connection)
        return fresh

    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade)

"""Alembic environment of the reference service.

Migrations run only through :func:`optimist.service.migrate.upgrade`, which hands over
an open connection inside the transaction (and lock) it holds.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from optimist.service.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise SystemExit("run migrations with `optimist migrate`")
run(_connection)

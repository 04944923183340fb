"""The databases under the servers: a SQLite file and a scratch PostgreSQL database.

The harness creates both, fills them once and drops the PostgreSQL one at the end.
Every server reads and writes the same ``items`` table (the optimist app's schema),
so the comparison is between code paths, not between tables. ``items`` holds
``rows`` items numbered 1..rows in the list's order: rows 1..1000 are the ones the
write scenarios spread over, and :data:`RACE_ROW` and :data:`CONTENTION_ROW` belong
to the races.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from optimist.sqlalchemy import create_engine

from bench.apps.optimist_app import items, metadata

__all__ = [
    "CONTENTION_ROW",
    "HOT_ROWS",
    "POSTGRES_ADMIN",
    "RACE_ROW",
    "connection_limit",
    "counter_of",
    "fill",
    "maintain",
    "reset_row",
    "scratch_postgres",
    "sqlite_url",
]

#: The server every PostgreSQL database of the benchmark lives on (role root, trust).
POSTGRES_ADMIN: Final = "postgresql://root@127.0.0.1:5432/postgres"
HOT_ROWS: Final = 1000
RACE_ROW: Final = 1001
CONTENTION_ROW: Final = 1002
_TEXT: Final = "an item of the benchmark, long enough to look like a real description"


@asynccontextmanager
async def scratch_postgres(name: str) -> AsyncIterator[str]:
    """A fresh database ``name`` on 127.0.0.1:5432, dropped afterwards; yields its URL."""
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def connection_limit() -> int:
    """The PostgreSQL server's ``max_connections``: every user's connections together."""
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        return int(await admin.fetchval("SHOW max_connections"))
    finally:
        await admin.close()


def sqlite_url(directory: Path) -> str:
    """A new SQLite file in ``directory`` (any old one removed)."""
    path = directory / "bench.db"
    for stale in directory.glob("bench.db*"):
        stale.unlink()
    return f"sqlite+aiosqlite:///{path}"


async def fill(url: str, rows: int) -> None:
    """Create the schema and ``rows`` items in one statement, numbered as creates would be."""
    engine = create_engine(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    # Each row a random 16-hex-digit tag and one fixed time, as optimist's recipe gives.
    if sqlite:
        source = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
            "SELECT i, 0, :text || ' ' || i, lower(hex(randomblob(8))), "
            "'2026-01-01 00:00:00.000000', i FROM n"
        )
    else:
        source = (
            "SELECT i, 0, :text || ' ' || i, substr(md5(random()::text || i), 1, 16), "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00', i FROM generate_series(1, :rows) AS i"
        )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                text(
                    "INSERT INTO items (id, counter, text, etag, updated_at, created_seq) " + source
                ),
                {"rows": rows, "text": _TEXT},
            )
            await connection.execute(
                text("INSERT INTO optimist_sequences (name, value) VALUES (:name, :rows)"),
                {"name": items.sequence_name, "rows": rows},
            )
        await maintain(url)
    finally:
        await engine.dispose()


async def reset_row(url: str, key: int) -> None:
    """Set the counter of row ``key`` back to 0, with a new tag."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE items SET counter = 0, etag = :tag WHERE id = :key"),
                {"key": key, "tag": secrets.token_hex(8)},
            )
    finally:
        await engine.dispose()


async def counter_of(url: str, key: int) -> int:
    """The stored counter of row ``key``."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                text("SELECT counter FROM items WHERE id = :key"), {"key": key}
            )
    finally:
        await engine.dispose()
    return int(value)


async def maintain(url: str) -> None:
    """Tidy up between servers: VACUUM ANALYZE (PostgreSQL), a WAL checkpoint (SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(parsed.database), timeout=30)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("ANALYZE")
        return
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def _plain(url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

"""The databases storage tests run on: a SQLite file, and a scratch PostgreSQL database.

The fixtures are imported by the conftest of each test package that needs them (the
root conftest imports no driver, so the core tests run without one). PostgreSQL tests
use ``OPTIMIST_TEST_POSTGRES_URL`` (default: the local server). Where no server answers
they are skipped with the reason, except under CI, where a missing PostgreSQL is a
failure: the race tests must really run there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "database_url",
    "execute",
    "postgres_server_url",
    "postgres_url",
    "scratch_database",
    "terminate_backends",
]

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"


def _dsn(url: str) -> str:
    """A SQLAlchemy URL as the plain DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def execute(url: str, *statements: str) -> None:
    """Run ``statements`` on the PostgreSQL database at ``url``, on a connection of their own."""
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def terminate_backends(url: str, where: str = "true") -> list[int]:
    """End every other session on the database at ``url`` (``where``: a condition on
    ``pg_stat_activity`` narrowing them) as an administrator would, and wait until
    they are gone; their process ids.
    """
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    others = (
        "FROM pg_stat_activity WHERE datname = current_database() "
        f"AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND ({where})"
    )
    try:
        pids: list[int] = [row["pid"] for row in await connection.fetch(f"SELECT pid {others}")]
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids
        )
        # pg_terminate_backend only signals; a backend leaves when it has ended.
        async with asyncio.timeout(30):
            while await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            ):
                await asyncio.sleep(0.01)
    finally:
        await connection.close()
    return pids


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A PostgreSQL server URL that answers, or a skip (a failure under CI) saying why."""
    url = os.environ.get("OPTIMIST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        asyncio.run(execute(url, "SELECT 1"))
    except Exception as error:  # any failure means "not reachable"
        reason = f"PostgreSQL not reachable at {url} ({type(error).__name__}: {error})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(f"{reason}; set OPTIMIST_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create a database of its own on the server, yield its URL, drop it at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A scratch database of its own for this test session, dropped at the end."""
    yield from scratch_database(postgres_server_url, "optimist_test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, or a reset PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(execute(url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"))
    return url

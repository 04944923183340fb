"""Shared fixtures: the async backend and the databases every storage test runs on.

PostgreSQL tests use ``OPTIMIST_TEST_POSTGRES_URL`` (default: the local server). Where
no server answers they are skipped with the reason, except under CI, where a missing
PostgreSQL is a failure: the race tests must really run there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from optimist.service import demo
from optimist.service.runtime import prepare
from optimist.service.schema import metadata
from optimist.sqlalchemy import create_engine

from support_service import Service, running, settings_for

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"

# Properties are about behaviour, not speed: a loaded machine must not fail them.
settings.register_profile("optimist", deadline=None, print_blob=True)
settings.load_profile("optimist")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and asyncpg use."""
    return "asyncio"


def _dsn(url: str) -> str:
    """A SQLAlchemy URL as the plain DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A PostgreSQL server URL that answers, or a skip (a failure under CI) saying why."""
    url = os.environ.get("OPTIMIST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        asyncio.run(_execute(url, "SELECT 1"))
    except Exception as error:  # any failure means "not reachable"
        reason = f"PostgreSQL not reachable at {url} ({type(error).__name__}: {error})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(f"{reason}; set OPTIMIST_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A scratch database of its own for this test session, dropped at the end."""
    name = f"optimist_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(postgres_server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, or a reset PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_execute(url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"))
    return url


@pytest.fixture(scope="session")
def service_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once, with the demo data, that service tests copy."""
    path = tmp_path_factory.mktemp("service") / "template.db"
    asyncio.run(prepare(settings_for(f"sqlite+aiosqlite:///{path}")))
    return path


@pytest.fixture(scope="session")
def postgres_service_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own for service tests, migrated once."""
    name = f"optimist_service_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(postgres_server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(prepare(settings_for(url, demo_data=False)))
        yield url
    finally:
        asyncio.run(_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _reset_service_data(url: str) -> None:
    """Empty every service table and load the demo data again, as on a fresh start."""
    engine = create_engine(url)
    try:
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables}"))
        await demo.load(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, service_template: Path
) -> str:
    """A migrated service database with only the demo data, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "service.db"
        shutil.copyfile(service_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_service_url")
    asyncio.run(_reset_service_data(url))
    return url


@pytest.fixture
async def service(service_database_url: str) -> AsyncIterator[Service]:
    """The reference service on a database with only the demo data, on each backend."""
    async with running(settings_for(service_database_url)) as started:
        yield started

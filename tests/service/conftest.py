"""The reference service on a database with only the demo data, on each backend: a
SQLite file and PostgreSQL; for the modules of :data:`THROUGH_PGBOUNCER`, also
PostgreSQL through PgBouncer in transaction pooling mode (the same database, reached
with ``?pooler=transaction``: tests/support/pgbouncer.py).

Every service test through PgBouncer as well would cost as much again as the whole
PostgreSQL backend; the modules chosen are the seeds' examples verbatim, every route of
the three APIs with its conditional requests, and the races through each API.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import pytest

from optimist.service import demo
from optimist.service.runtime import prepare
from optimist.service.schema import metadata
from optimist.sqlalchemy import create_engine
from tests.support.databases import (
    database_url,
    postgres_server_url,
    postgres_url,
    scratch_database,
)
from tests.support.pgbouncer import Bouncer, pgbouncer
from tests.support.service import Service, running, settings_for

__all__ = [
    "THROUGH_PGBOUNCER",
    "database_url",
    "pgbouncer",
    "postgres_server_url",
    "postgres_service_url",
    "postgres_url",
    "service",
    "service_database_url",
    "service_template",
]


@pytest.fixture(scope="session")
def service_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once, with the demo data, that service tests copy."""
    path = tmp_path_factory.mktemp("service") / "template.db"
    asyncio.run(prepare(settings_for(f"sqlite+aiosqlite:///{path}")))
    return path


@pytest.fixture(scope="session")
def postgres_service_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own for service tests, migrated once."""
    for url in scratch_database(postgres_server_url, "optimist_service"):
        asyncio.run(prepare(settings_for(url, demo_data=False)))
        yield url


async def _reset_service_data(url: str) -> None:
    """Empty every service table and load the demo data again, as on a fresh start."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # DELETE, not TRUNCATE: on tables of a few rows it takes a third of the time
            # (TRUNCATE makes each table a new file).
            for table in reversed(metadata.sorted_tables):
                await connection.execute(table.delete())
        await demo.load(engine)
    finally:
        await engine.dispose()


#: The test modules whose service also runs through PgBouncer (see the docstring).
THROUGH_PGBOUNCER: Final = frozenset(
    {
        "test_admin_seed",
        "test_admin_collection",
        "test_admin_races",
        "test_projects",
        "test_projects_races",
        "test_sessions",
        "test_sessions_races",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that takes ``service_database_url`` on every backend its module has."""
    if "service_database_url" not in metafunc.fixturenames:
        return
    backends = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    if metafunc.module.__name__.rpartition(".")[2] in THROUGH_PGBOUNCER:
        backends.append(pytest.param("pgbouncer", marks=pytest.mark.postgres))
    metafunc.parametrize("service_database_url", backends, indirect=True)


@pytest.fixture
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
    if request.param == "pgbouncer":
        bouncer: Bouncer = request.getfixturevalue("pgbouncer")
        return bouncer.url(url)
    return url


@pytest.fixture
async def service(service_database_url: str) -> AsyncIterator[Service]:
    """The reference service on a database with only the demo data, on each backend."""
    async with running(settings_for(service_database_url)) as started:
        yield started

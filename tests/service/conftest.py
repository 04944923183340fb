"""The reference service on a database with only the demo data, on each backend."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

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
from tests.support.service import Service, running, settings_for

__all__ = [
    "database_url",
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

"""The service as a whole: start-up, health, migrations, the shared signing key."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect

from optimist.service.runtime import prepare, signing_key
from optimist.service.schema import metadata
from optimist.sqlalchemy import create_engine
from tests.support.service import Service, settings_for

pytestmark = pytest.mark.anyio


async def test_healthz_answers_ok_with_the_node(service: Service) -> None:
    """GET /healthz says the process is alive and names the node and the worker."""
    response = await service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "node_id": "test-node", "worker": os.getpid()}


async def test_readyz_answers_ready_when_the_database_reads(service: Service) -> None:
    """GET /readyz reads the database and says ready, naming the node and the worker."""
    response = await service.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "node_id": "test-node", "worker": os.getpid()}


async def test_unknown_path_is_a_problem(service: Service) -> None:
    """A path no route serves is a 404 problem+json."""
    response = await service.client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_migrations_create_exactly_the_declared_tables(database_url: str) -> None:
    """The migrated schema has every table and column the metadata declares."""
    settings = settings_for(database_url, demo_data=False)
    assert await prepare(settings) is True
    assert await prepare(settings) is False
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: {
                    table: {column["name"] for column in inspect(sync).get_columns(table)}
                    for table in inspect(sync).get_table_names()
                }
            )
    finally:
        await engine.dispose()
    declared = {table.name: set(table.c.keys()) for table in metadata.sorted_tables}
    assert {name: found[name] for name in declared} == declared


async def test_generated_signing_key_is_kept_and_shared(database_url: str) -> None:
    """Without OPTIMIST_SECRET_KEY, every process of a deployment reads one generated key."""
    settings = settings_for(database_url, secret_key=None, demo_data=False)
    await prepare(settings)
    first, second = create_engine(database_url), create_engine(database_url)
    try:
        key = await signing_key(first, settings)
        assert len(key) >= 32
        assert await signing_key(second, settings) == key
    finally:
        await first.dispose()
        await second.dispose()

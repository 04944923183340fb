"""/healthz (liveness, no database) and /readyz (one read, bounded): real processes, real locks.

SQLite's write lock is held by another process, as a second ``optimist serve`` or a
migration would hold it; PostgreSQL's by a session that locks the table /readyz reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from optimist.cursor import CursorCodec
from optimist.service.app import create_app
from optimist.service.runtime import Runtime
from optimist.sqlalchemy import create_engine
from optimist.tokens import TokenSigner
from tests.support.locks import write_lock
from tests.support.servers import Server, free_port, optimist_serving
from tests.support.service import problem_of, settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on a SQLite file of its own."""
    with optimist_serving(tmp_path_factory.mktemp("health")) as server:
        yield server


@pytest.fixture
def write_locked(sqlite_server: Server) -> Iterator[None]:
    """Another process holds the server's SQLite write lock (BEGIN IMMEDIATE) meanwhile."""
    with write_lock(sqlite_server.log.parent / "optimist.db"):
        yield


@pytest.mark.slow
async def test_healthz_answers_while_another_process_holds_the_sqlite_write_lock(
    sqlite_server: Server, write_locked: None
) -> None:
    """Liveness needs no database: 200 while the write lock is taken elsewhere."""
    async with httpx.AsyncClient(base_url=sqlite_server.url, timeout=60) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.slow
async def test_readyz_answers_while_another_process_holds_the_sqlite_write_lock(
    sqlite_server: Server, write_locked: None
) -> None:
    """Readiness only reads: 200 while the write lock is taken elsewhere."""
    async with httpx.AsyncClient(base_url=sqlite_server.url, timeout=60) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    """The app, its runtime on a PostgreSQL URL whose port nothing listens on."""
    url = f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/absent"
    settings = settings_for(url)
    app = create_app(settings)
    signer = TokenSigner(["test-secret"])
    engine = create_engine(url)
    app.state.runtime = Runtime(settings, engine, signer, CursorCodec(signer))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await engine.dispose()


async def test_healthz_answers_when_the_database_is_unreachable(
    unreachable: httpx.AsyncClient,
) -> None:
    """Liveness does not ask the database at all."""
    response = await unreachable.get("/healthz")
    assert response.status_code == 200


async def test_readyz_is_503_with_retry_after_when_the_database_is_unreachable(
    unreachable: httpx.AsyncClient,
) -> None:
    """A refused database connection makes /readyz a 503 problem with Retry-After."""
    response = await unreachable.get("/readyz")
    problem = problem_of(response, 503)
    assert "cannot be reached" in problem["detail"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.fixture
def postgres_server(postgres_service_url: str, tmp_path: Path) -> Iterator[Server]:
    """``optimist serve`` on the PostgreSQL service database, /readyz patient for 1 s."""
    with optimist_serving(
        tmp_path, "--database-url", postgres_service_url, "--ready-timeout", "1"
    ) as server:
        yield server


@pytest.mark.slow
@pytest.mark.postgres
async def test_readyz_is_503_while_the_database_does_not_answer_in_time(
    postgres_server: Server, postgres_service_url: str
) -> None:
    """A read blocked behind a lock makes /readyz a 503 once its timeout passes."""
    dsn = make_url(postgres_service_url).set(drivername="postgresql")
    locker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE service_secrets IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=postgres_server.url, timeout=60) as client:
                response = await client.get("/readyz")
        problem = problem_of(response, 503)
        assert "did not answer" in problem["detail"]
        assert int(response.headers["Retry-After"]) > 0
    finally:
        await locker.close()


@pytest.mark.slow
@pytest.mark.postgres
async def test_readyz_is_200_again_once_the_database_answers(
    postgres_server: Server, postgres_service_url: str
) -> None:
    """After a lock that made it 503 is released, /readyz answers 200 again."""
    dsn = make_url(postgres_service_url).set(drivername="postgresql")
    locker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    async with httpx.AsyncClient(base_url=postgres_server.url, timeout=60) as client:
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE service_secrets IN ACCESS EXCLUSIVE MODE")
                assert (await client.get("/readyz")).status_code == 503
        finally:
            await locker.close()
        for _ in range(600):
            if (await client.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.1)
    pytest.fail("/readyz stayed 503 after the lock was released")

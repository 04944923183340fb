"""No lost update over real HTTP: uvicorn processes, many clients, read-modify-write.

16 clients × 12 increments of one item's counter, each a GET then a PATCH with
If-Match, retried on 412. Every acknowledged increment must be in the final value:
on SQLite with one server of two worker processes, and on PostgreSQL with two
separate servers.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from optimist.sqlalchemy import create, create_engine
from tests.support.counter_app import items, metadata
from tests.support.servers import Server, free_port, serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CLIENTS = 16
INCREMENTS = 12
HOT = "/items/1"


@contextmanager
def counter_app(database_url: str, workers: int, log: Path) -> Iterator[Server]:
    """The counter app under uvicorn with ``workers`` processes.

    Idle connections are kept for a minute: a client must never have a write's answer
    lost to the server closing its connection, or it could not count what it wrote.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.support.counter_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "60",
    ]  # fmt: skip
    env = {"BENCH_DATABASE_URL": database_url, "BENCH_SECRET": "race-cursors"}
    with serving(command, port=port, log=log, ready=HOT, env=env) as server:
        yield server


@dataclass
class Tally:
    """What the clients saw."""

    acknowledged: int = 0
    retries: int = 0
    unexpected: list[int] = field(default_factory=list)


async def _client(urls: list[str], index: int, tally: Tally) -> None:
    base = urls[index % len(urls)]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(INCREMENTS):
            for _attempt in range(1000):
                read = await client.get(HOT)
                if read.status_code != 200:
                    tally.unexpected.append(read.status_code)
                    return
                etag = read.headers["ETag"]
                value = read.json()["counter"]
                write = await client.patch(
                    HOT, json={"counter": value + 1}, headers={"If-Match": etag}
                )
                if write.status_code == 200:
                    tally.acknowledged += 1
                    break
                if write.status_code != 412:
                    tally.unexpected.append(write.status_code)
                    return
                tally.retries += 1


async def _prepare(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await create(engine, items, {"id": 1, "counter": 0, "text": ""})
    finally:
        await engine.dispose()


async def test_no_lost_update_over_http(database_url: str, tmp_path: Path) -> None:
    """16 clients × 25 If-Match increments: acknowledged == final, no 5xx, never locked."""
    await _prepare(database_url)
    sqlite = make_url(database_url).get_backend_name() == "sqlite"
    # SQLite: one server, two worker processes on one file. PostgreSQL: two servers.
    topology = [2] if sqlite else [1, 1]
    with (
        counter_app(database_url, topology[0], tmp_path / "server-0.log") as first,
        counter_app(database_url, topology[-1], tmp_path / "server-1.log")
        if len(topology) > 1
        else _same(first) as second,
    ):
        servers = [first] if second is first else [first, second]
        tally = Tally()
        await asyncio.gather(
            *(_client([s.url for s in servers], index, tally) for index in range(CLIENTS))
        )
        async with httpx.AsyncClient(base_url=first.url) as client:
            final = (await client.get(HOT)).json()["counter"]
    logs = "".join(server.output() for server in servers)
    assert tally.unexpected == []
    assert tally.acknowledged == CLIENTS * INCREMENTS
    assert final == tally.acknowledged
    assert "database is locked" not in logs
    assert tally.retries > 0, "the clients never collided: the race proved nothing"


@contextmanager
def _same(server: Server) -> Iterator[Server]:
    yield server

"""Racing real writers (optimist.sqlalchemy.writes): exactly one conditional write wins.

Every test runs on a SQLite file and on PostgreSQL. Writers hold connections of their
own and start together; the multi-process variants (``slow``) run several processes,
each with its own engine, against one database. Each of these tests fails if the
conditional write is replaced by a read, a comparison in Python and a write.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from optimist.conditions import TagIn
from optimist.errors import PreconditionFailed, ResourceNotFound
from optimist.sqlalchemy import Record, create, delete, get
from tests.support.stores import (
    as_text,
    create_if_absent,
    increment,
    open_store,
    process_create_worker,
    process_increment_worker,
    process_update_worker,
    race,
    read_row,
    run_processes,
    update_if_match,
    writers,
)

pytestmark = pytest.mark.anyio


async def seeded(url: str, key: str = "hot") -> Record:
    """A fresh schema with one row to fight over."""
    async with open_store(url) as store:
        return await create(store.engine, store.items, {"id": key, "name": "seed"})


async def schema(url: str) -> None:
    """A fresh, empty schema."""
    async with open_store(url):
        pass


def assert_one_winner(outcomes: list[str]) -> str:
    """Exactly one ``won:<tag>``; every other outcome a 412 that names the winner's tag."""
    kinds = Counter(outcome.split(":", 1)[0] for outcome in outcomes)
    assert kinds == {"won": 1, "412": len(outcomes) - 1}, kinds
    (winner,) = [o.split(":", 1)[1] for o in outcomes if o.startswith("won:")]
    assert {o.split(":", 1)[1] for o in outcomes if o.startswith("412:")} <= {winner}
    return winner


@pytest.mark.parametrize("writers_count", [2, 8, 32], ids=lambda n: f"{n}-writers")
async def test_exactly_one_if_match_writer_wins(database_url: str, writers_count: int) -> None:
    """N concurrent updates with the same If-Match: one writes, the rest get 412."""
    seed = await seeded(database_url)
    async with writers(database_url, writers_count) as (items, connections):
        outcomes = await race(
            connections,
            lambda i, c: update_if_match(c, items, "hot", seed.etag.opaque, f"writer-{i}"),
        )
        winner = assert_one_winner(outcomes)
        final = await get(connections[0], items, "hot")
    assert final.etag.opaque == winner


async def test_exactly_one_if_match_delete_wins(database_url: str) -> None:
    """Eight concurrent deletes with the same If-Match: one deletes, none of the rest does."""
    seed = await seeded(database_url)
    async with writers(database_url, 8) as (items, connections):

        async def attempt(_index: int, connection: AsyncConnection) -> str:
            try:
                await delete(connection, items, "hot", condition=TagIn((seed.etag,)))
            except PreconditionFailed:
                return "412"
            except ResourceNotFound:
                return "404"
            return "won"

        outcomes = Counter(await race(connections, attempt))
    assert outcomes["won"] == 1, outcomes
    assert outcomes["404"] + outcomes["412"] == 7


async def test_exactly_one_create_if_absent_wins(database_url: str) -> None:
    """Sixteen concurrent creates of one key with If-None-Match: *: one creates, 15 get 412."""
    await schema(database_url)
    async with writers(database_url, 16) as (items, connections):
        outcomes = await race(
            connections, lambda i, c: create_if_absent(c, items, "fresh", f"creator-{i}")
        )
        winner = assert_one_winner(outcomes)
        final = await get(connections[0], items, "fresh")
    assert final.etag.opaque == winner


async def test_concurrent_increments_lose_nothing(database_url: str) -> None:
    """Eight writers of 10 read-modify-write increments: the total is every acknowledged one."""
    await seeded(database_url)
    async with writers(database_url, 8) as (items, connections):
        counts = await race(connections, lambda _i, c: as_text(increment(c, items, "hot", 10)))
        final = await get(connections[0], items, "hot")
    acknowledged = sum(int(count) for count in counts)
    assert acknowledged == 80
    assert final["counter"] == acknowledged


@pytest.mark.slow
def test_exactly_one_writer_wins_across_processes(database_url: str) -> None:
    """Four processes of four writers, same If-Match: exactly one of the 16 writes."""
    seed = asyncio.run(seeded(database_url))
    results = run_processes(
        process_update_worker,
        [(database_url, "hot", seed.etag.opaque, 4, worker) for worker in range(4)],
    )
    winner = assert_one_winner([outcome for outcomes in results for outcome in outcomes])
    assert asyncio.run(read_row(database_url, "hot")).etag.opaque == winner


@pytest.mark.slow
def test_exactly_one_create_if_absent_wins_across_processes(database_url: str) -> None:
    """Four processes of four creators of one key, If-None-Match: *: exactly one creates."""
    asyncio.run(schema(database_url))
    results = run_processes(
        process_create_worker, [(database_url, "fresh", 4, worker) for worker in range(4)]
    )
    winner = assert_one_winner([outcome for outcomes in results for outcome in outcomes])
    assert asyncio.run(read_row(database_url, "fresh")).etag.opaque == winner


@pytest.mark.slow
def test_increments_across_processes_lose_nothing(database_url: str) -> None:
    """Four processes of two writers of 10 increments: acknowledged == final, never "locked"."""
    asyncio.run(seeded(database_url))
    acknowledged = sum(run_processes(process_increment_worker, [(database_url, "hot", 2, 10)] * 4))
    assert acknowledged == 4 * 2 * 10
    assert asyncio.run(read_row(database_url, "hot"))["counter"] == acknowledged

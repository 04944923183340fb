"""The library behind PgBouncer in transaction pooling mode (``pooler="transaction"``).

Every test that talks to a database does so through a private PgBouncer
(tests/support/pgbouncer.py) whose pool holds two server connections per database, so
that statements of different clients, engines and connections land on the same server
connections. The first tests check what ``pooler`` accepts and refuses without any.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.conditions import TagIn
from optimist.cursor import CursorCodec
from optimist.errors import PreconditionFailed
from optimist.sqlalchemy import (
    Versioned,
    create,
    create_engine,
    get,
    list_page,
    transaction,
    update,
)
from optimist.sqlalchemy.engine import POOLERS
from optimist.tokens import TokenSigner
from tests.support.databases import scratch_database
from tests.support.pgbouncer import POOL_SIZE, TRACKED, Bouncer, pinned, private_bouncer
from tests.support.stores import Store, on_the_driver, open_store, run_processes

pytestmark = pytest.mark.anyio

POSTGRES = "postgresql+asyncpg://root@127.0.0.1:6432/db"
#: Concurrent clients, and the increments each makes: the race of the service's tests.
CLIENTS = 16
INCREMENTS = 25
#: Engines the clients are spread over: each has connections of its own.
ENGINES = 4


# -- what pooler= accepts -------------------------------------------------------------------


def test_transaction_is_the_one_pooling_mode() -> None:
    """Transaction pooling is the mode that needs settings; session pooling needs none."""
    assert frozenset({"transaction"}) == POOLERS


async def test_the_url_parameter_is_taken_out_before_connecting() -> None:
    """``?pooler=transaction`` names the mode and is not passed on to asyncpg."""
    engine = create_engine(f"{POSTGRES}?pooler=transaction&ssl=disable")
    try:
        assert dict(engine.url.query) == {"ssl": "disable"}
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        (f"{POSTGRES}?pooler=statement", {}),
        (f"{POSTGRES}?pooler=transaction&pooler=transaction", {}),
        (f"{POSTGRES}?pooler=transaction", {"pooler": "session"}),
        ("sqlite+aiosqlite:///:memory:?pooler=transaction", {}),
        ("postgresql+psycopg://root@127.0.0.1/db", {"pooler": "transaction"}),
        (f"{POSTGRES}?pooler=transaction&prepared_statement_cache_size=100", {}),
        (POSTGRES, {"pooler": "transaction", "connect_args": {"statement_cache_size": 100}}),
        (
            POSTGRES,
            {"pooler": "transaction", "connect_args": {"prepared_statement_name_func": str}},
        ),
    ],
    ids=[
        "unknown-mode",
        "named-twice",
        "contradicting-keyword",
        "sqlite",
        "another-driver",
        "sqlalchemy-cache-in-url",
        "asyncpg-cache-in-connect-args",
        "statement-names",
    ],
)
def test_a_pooler_setting_that_cannot_hold_is_refused(url: str, options: dict[str, Any]) -> None:
    """A mode, database or cache setting that contradicts transaction pooling is a ValueError."""
    with pytest.raises(ValueError, match="pooler"):
        create_engine(url, **options)


# -- through a transaction pooler -----------------------------------------------------------


@pytest.fixture(scope="module")
def bouncer(postgres_server_url: str) -> Iterator[Bouncer]:
    """A PgBouncer in transaction mode of this module's own."""
    with private_bouncer(postgres_server_url) as started:
        yield started


@pytest.fixture
def bounced_url(bouncer: Bouncer, postgres_server_url: str) -> Iterator[str]:
    """A fresh database of its own, reached through the bouncer with ``?pooler=transaction``:
    no other test's statements were ever on its server connections."""
    for url in scratch_database(postgres_server_url, "optimist_bounced"):
        yield bouncer.url(url)


@pytest.fixture
async def store(bounced_url: str) -> AsyncIterator[Store]:
    """The ``items`` table, and an engine on it through the bouncer."""
    async with open_store(bounced_url) as opened:
        yield opened


async def _work(engine: AsyncEngine, items: Versioned, key: str) -> None:
    """A read, a write and a page on the driver's fast path, and a transaction of
    several statements through SQLAlchemy, on the row at ``key``."""
    await create(engine, items, {"id": key, "counter": 0})
    read = await get(engine, items, key)
    written = await update(engine, items, key, {"counter": 1}, condition=TagIn((read.etag,)))
    cursors = CursorCodec(TokenSigner(["k"]), max_age=timedelta(hours=1))
    await list_page(engine, items, cursors, query="q", limit=5, cursor=None)
    async with transaction(engine) as connection:
        await update(connection, items, key, {"name": "n"}, condition=TagIn((written.etag,)))


@pytest.mark.postgres
async def test_reads_writes_and_pages_run_on_the_driver(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get, a conditional update and list_page take the driver's fast path, and succeed."""
    await create(store.engine, store.items, {"id": "a", "counter": 0})
    ran = on_the_driver(monkeypatch)
    read = await get(store.engine, store.items, "a")
    written = await update(
        store.engine, store.items, "a", {"counter": 5}, condition=TagIn((read.etag,))
    )
    cursors = CursorCodec(TokenSigner(["k"]), max_age=timedelta(hours=1))
    listing = await list_page(store.engine, store.items, cursors, query="q", limit=5, cursor=None)
    assert [record["counter"] for record in listing.records] == [written["counter"]] == [5]
    assert ran == [False, True, False]


@pytest.mark.postgres
async def test_a_transaction_of_several_statements_commits(store: Store) -> None:
    """A stale If-Match inside a transaction is refused, and the transaction's write stays."""
    created = await create(store.engine, store.items, {"id": "a", "counter": 0})
    async with transaction(store.engine) as connection:
        fresh = await update(
            connection, store.items, "a", {"counter": 1}, condition=TagIn((created.etag,))
        )
        with pytest.raises(PreconditionFailed):
            await update(
                connection, store.items, "a", {"counter": 9}, condition=TagIn((created.etag,))
            )
    assert (await get(store.engine, store.items, "a")).etag == fresh.etag


@pytest.mark.postgres
async def test_many_clients_on_two_server_connections_lose_no_update(store: Store) -> None:
    """16 clients on 4 engines × 25 read-modify-write increments of one row: all kept."""
    await create(store.engine, store.items, {"id": "a", "counter": 0})
    engines = [create_engine(store.url, pool_size=4) for _ in range(ENGINES)]

    async def client(index: int) -> None:
        engine = engines[index % ENGINES]
        current = await get(engine, store.items, "a")
        for _ in range(INCREMENTS):
            while True:
                try:
                    current = await update(
                        engine,
                        store.items,
                        "a",
                        {"counter": current["counter"] + 1},
                        condition=TagIn((current.etag,)),
                    )
                    break
                except PreconditionFailed as failed:
                    current = failed.current

    try:
        await asyncio.gather(*(client(index) for index in range(CLIENTS)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert (await get(store.engine, store.items, "a"))["counter"] == CLIENTS * INCREMENTS


@pytest.mark.postgres
async def test_no_server_connection_keeps_a_prepared_statement(store: Store) -> None:
    """After the work of several engines at once, no server connection holds a statement."""
    engines = [create_engine(store.url) for _ in range(ENGINES)]
    try:
        await asyncio.gather(
            *(_work(engine, store.items, f"k{index}") for index, engine in enumerate(engines))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    async with pinned(store.url) as clients:
        kept = [await client.fetch("SELECT name FROM pg_prepared_statements") for client in clients]
    assert kept == [[]] * len(clients)


@pytest.mark.postgres
async def test_no_server_connection_keeps_a_session_setting(store: Store) -> None:
    """After the library's work, every server connection has only PgBouncer's own settings."""
    await _work(store.engine, store.items, "a")
    query = "SELECT name FROM pg_settings WHERE source IN ('session', 'client')"
    async with pinned(store.url) as clients:
        changed = [{row["name"] for row in await client.fetch(query)} for client in clients]
    assert [names - TRACKED for names in changed] == [set()] * len(clients)


async def first_statement(url: str, barrier: Any) -> str:
    """In a process of its own: connect through ``url`` and run one statement; "ok" or the
    error. (asyncpg numbers the statements of all connections of a process together, so
    only statements of two processes can meet under one name.)"""
    await asyncio.to_thread(barrier.wait)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        return str(error.orig)
    finally:
        await engine.dispose()
    return "ok"


@pytest.mark.postgres
def test_without_the_setting_prepared_statements_collide(bounced_url: str) -> None:
    """Without ``pooler``, the named statements of three processes meet on two server
    connections: the failure the setting prevents."""
    url = make_url(bounced_url).difference_update_query(["pooler"])
    plain = url.render_as_string(hide_password=False)
    outcomes = run_processes(first_statement, [(plain,)] * (POOL_SIZE + 1))
    assert any("already exists" in outcome for outcome in outcomes), outcomes


@pytest.mark.postgres
def test_with_the_setting_the_statements_of_processes_never_meet(bounced_url: str) -> None:
    """With ``?pooler=transaction``, the same three processes all run their statement."""
    outcomes = run_processes(first_statement, [(bounced_url,)] * (POOL_SIZE + 1))
    assert outcomes == ["ok"] * (POOL_SIZE + 1)

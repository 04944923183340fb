"""A primary among several hosts: multi-host URLs, and servers that accept no writes
(optimist.sqlalchemy.engine, optimist.sqlalchemy._availability)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from optimist.errors import ServiceUnavailable
from optimist.sqlalchemy import autocommit, create, create_engine, get, update
from optimist.sqlalchemy._availability import Failure, failure
from tests.support.databases import execute
from tests.support.servers import free_port
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio

READ_ONLY = Failure("the server accepts no writes", lost=True)
NO_HOST = Failure("no host in the wanted role")


def wrapped(orig: BaseException) -> DBAPIError:
    """``orig`` as SQLAlchemy raises it."""
    return DBAPIError("SELECT 1", None, orig)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), READ_ONLY),
        (wrapped(asyncpg.ReadOnlySQLTransactionError("read-only transaction")), READ_ONLY),
        (asyncpg.TargetServerAttributeNotMatched("none of the hosts match"), NO_HOST),
        (wrapped(asyncpg.TargetServerAttributeNotMatched("none of the hosts match")), NO_HOST),
    ],
    ids=["read-only", "wrapped-read-only", "no-host-in-role", "wrapped-no-host-in-role"],
)
def test_servers_that_accept_no_writes_are_unavailable(
    error: BaseException, expected: Failure
) -> None:
    """A write refused as read-only, and a connect that finds no host in the wanted role,
    are failures of the database (a 503); the read-only connection counts as lost."""
    assert failure(error, connecting=True) == expected


def multihost(url: str, attributes: str, *, first: str | None = None) -> str:
    """``url``'s database on two hosts, ``first`` (by default one where nothing listens)
    then ``url``'s own, with ``target_session_attrs=attributes``."""
    parsed = make_url(url)
    own = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    hosts = (first or f"127.0.0.1:{free_port()}", own)
    return (
        parsed.set(host=None, port=None)
        .update_query_pairs([("host", host) for host in hosts])
        .update_query_dict({"target_session_attrs": attributes})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on PostgreSQL, one pooled connection, a row ``a``."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    async with open_store(postgres_url, pool_size=1) as opened:
        await create(opened.engine, opened.items, {"id": "a"})
        yield opened


async def backend(store: Store) -> int:
    """The process id of the session the pool hands out next."""
    async with autocommit(store.engine) as connection:
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


async def make_pooled_connection_read_only(store: Store) -> int:
    """Make the pooled connection's session refuse writes, as a primary made read-only
    would; its process id."""
    async with store.engine.begin() as connection:
        await connection.exec_driver_sql("SET SESSION default_transaction_read_only = on")
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


@pytest.mark.postgres
async def test_a_multihost_url_connects_to_the_host_that_accepts_writes(
    postgres_url: str, postgres_store: Store
) -> None:
    """With target_session_attrs=read-write, a host that cannot be reached is passed over
    and the writes go to the primary."""
    async with open_store(multihost(postgres_url, "read-write")) as store:
        await update(store.engine, store.items, "a", {"name": "written"})
        assert (await get(store.engine, store.items, "a"))["name"] == "written"


@pytest.mark.postgres
async def test_without_a_host_in_the_wanted_role_a_request_is_503(
    postgres_url: str, postgres_store: Store
) -> None:
    """When every host answers but none is in the role target_session_attrs asks for (no
    primary yet during a failover), a request is a ServiceUnavailable with the engine's
    Retry-After."""
    parsed = make_url(postgres_url)
    both = multihost(postgres_url, "standby", first=f"{parsed.host}:{parsed.port}")
    engine = create_engine(both, retry_after=7)
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await get(engine, postgres_store.items, "a")
    finally:
        await engine.dispose()
    assert (raised.value.reason, raised.value.retry_after) == (NO_HOST.reason, 7)


@pytest.mark.postgres
async def test_a_write_refused_as_read_only_is_503(postgres_store: Store) -> None:
    """A pooled connection whose server no longer accepts writes makes the write a
    ServiceUnavailable, not a 500."""
    await make_pooled_connection_read_only(postgres_store)
    with pytest.raises(ServiceUnavailable) as raised:
        await update(postgres_store.engine, postgres_store.items, "a", {"name": "x"})
    assert raised.value.reason == READ_ONLY.reason


@pytest.mark.postgres
async def test_a_connection_refused_as_read_only_is_discarded(postgres_store: Store) -> None:
    """After a write refused as read-only, the pool hands out a new connection, on which
    the next write succeeds."""
    refused = await make_pooled_connection_read_only(postgres_store)
    with pytest.raises(ServiceUnavailable):
        await update(postgres_store.engine, postgres_store.items, "a", {"name": "x"})
    assert await backend(postgres_store) != refused
    await update(postgres_store.engine, postgres_store.items, "a", {"name": "y"})


@pytest.mark.postgres
async def test_a_statement_refused_as_read_only_discards_its_connection(
    postgres_store: Store,
) -> None:
    """A statement of the application's own refused as read-only is a ServiceUnavailable
    too, and its connection is not pooled again."""
    refused = await make_pooled_connection_read_only(postgres_store)
    with pytest.raises(ServiceUnavailable):
        async with autocommit(postgres_store.engine) as connection:
            await connection.execute(text("UPDATE items SET name = 'x'"))
    assert await backend(postgres_store) != refused

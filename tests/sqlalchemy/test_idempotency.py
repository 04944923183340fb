"""Idempotency records written with the write (optimist.sqlalchemy.idempotency), both backends.

The record and the write are one transaction: proceed then replay byte for byte, reuse
refused, nothing kept without the write, expiry and purging, scopes, creates with ids
the database chose, and duplicates raced by tasks and by processes, which see one
effect and one answer. No test orders events by sleeping: a request is held open by
an event, and waiters are seen waiting in PostgreSQL's own view of its sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, Table, func, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.conditions import ABSENT, TagIn
from optimist.errors import (
    CorruptRecord,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PreconditionFailed,
    ResourceExists,
    ResourceNotFound,
)
from optimist.etag import EntityTag
from optimist.idempotency import DEFAULT_TTL, Fingerprint, IdempotencyKey, StoredResponse
from optimist.sqlalchemy import (
    Versioned,
    create,
    create_engine,
    delete,
    get,
    update,
    versioned_table,
)
from optimist.sqlalchemy.idempotency import (
    IDEMPOTENCY_TABLE,
    KeyScope,
    idempotency_records,
    idempotent,
    purge,
)
from tests.support.databases import execute
from tests.support.stores import declare, run_processes

pytestmark = pytest.mark.anyio

KEY = IdempotencyKey("8e03978e-40d5-43e8-bc93-6894a57f9324")
SCOPE: KeyScope = ("tenant-1", "editor")
INCREMENT = Fingerprint.of("POST", "/items/hot/increment")
# Not UTF-8, a NUL, CR LF at the end: kept and replayed as they are.
BODY = b'{"counter": 1}\x00\xff\xfe\r\n'
# Generous: only a stuck database reaches it.
DEADLINE = 60.0


@dataclass(frozen=True)
class Store:
    """An engine; ``items`` with the row ``hot`` at counter 0; ``notes``, whose ids the
    database chooses; and the table of records."""

    engine: AsyncEngine
    items: Versioned
    notes: Versioned
    records: Table


def declare_all() -> tuple[Versioned, Versioned, Table]:
    """``items``, ``notes`` and the records, in one metadata."""
    items, _ = declare()
    metadata = items.table.metadata
    notes = versioned_table(
        "notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(20))
    )
    return items, notes, idempotency_records(metadata)


@asynccontextmanager
async def open_store(url: str, **engine_kwargs: Any) -> AsyncIterator[Store]:
    """The tables on ``url`` (created unless they exist) and an engine, disposed at the end."""
    items, notes, records = declare_all()
    engine = create_engine(url, **engine_kwargs)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(items.table.metadata.create_all)
        yield Store(engine, items, notes, records)
    finally:
        await engine.dispose()


async def seed(url: str) -> None:
    """A fresh schema with the row ``hot``."""
    async with open_store(url) as store:
        await create(store.engine, store.items, {"id": "hot"})


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh schema on each backend, ``hot`` at counter 0."""
    await seed(database_url)
    async with open_store(database_url) as opened:
        yield opened


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    """The same on PostgreSQL alone, for what only PostgreSQL shows (waiting on a claim)."""
    await execute(postgres_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
    await seed(postgres_url)
    async with open_store(postgres_url) as opened:
        yield opened


async def increment(
    engine: AsyncEngine,
    items: Versioned,
    *,
    scope: KeyScope = SCOPE,
    key: IdempotencyKey = KEY,
    fingerprint: Fingerprint = INCREMENT,
    held: tuple[asyncio.Event, asyncio.Event] | None = None,
    **options: Any,
) -> tuple[str, StoredResponse]:
    """One increment of ``hot`` with an Idempotency-Key: ``("proceed", kept)`` or
    ``("replay", stored)``. ``held``: (set once written, wait for it before keeping)."""
    async with idempotent(
        engine, scope=scope, key=key, fingerprint=fingerprint, **options
    ) as attempt:
        if attempt.replay is not None:
            return "replay", attempt.replay
        # Condition ALWAYS: the counter is read and incremented inside the statement.
        record = await update(
            attempt.connection, items, "hot", {"counter": items.table.c.counter + 1}
        )
        if held is not None:
            written, release = held
            written.set()
            await release.wait()
        kept = await attempt.keep(
            200,
            [("ETag", str(record.etag)), ("Content-Type", "application/json")],
            b'{"counter": %d}' % record["counter"],
        )
        assert kept is not None
        return "proceed", kept


async def counter(store: Store) -> int:
    """The counter of ``hot`` now."""
    return int((await get(store.engine, store.items, "hot"))["counter"])


async def stored(store: Store) -> list[dict[str, Any]]:
    """Every record, ordered by key."""
    async with store.engine.connect() as connection:
        result = await connection.execute(select(store.records).order_by(store.records.c.key))
        return [dict(row) for row in result.mappings()]


async def age(store: Store, keys: Iterable[str] | None = None) -> None:
    """Make the records of ``keys`` (all: None) expired a second ago."""
    statement = sql_update(store.records).values(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    if keys is not None:
        statement = statement.where(store.records.c.key.in_(list(keys)))
    async with store.engine.begin() as connection:
        await connection.execute(statement)


async def keep_status(
    store: Store, status: int, key: IdempotencyKey = KEY
) -> StoredResponse | None:
    """A request that writes nothing and answers ``status``; what was kept."""
    async with idempotent(store.engine, scope=SCOPE, key=key, fingerprint=INCREMENT) as attempt:
        return await attempt.keep(status, [], b"")


def test_records_table_is_declared_once_per_metadata() -> None:
    """The table is declared on first use and reused after, keyed by scope and key."""
    items, _, records = declare_all()
    assert records.name == IDEMPOTENCY_TABLE
    assert idempotency_records(items.table.metadata) is records
    assert [column.name for column in records.primary_key.columns] == ["scope", "key"]


async def test_resend_replays_the_kept_response_byte_for_byte(store: Store) -> None:
    """The resend gets the status, the replayed fields and the body exactly as kept."""
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        assert attempt.replay is None
        await update(attempt.connection, store.items, "hot", {"counter": 1})
        kept = await attempt.keep(
            200, [("ETag", '"a1"'), ("Content-Type", "application/json"), ("Date", "x")], BODY
        )
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        replay = attempt.replay
    assert (
        replay
        == kept
        == StoredResponse(200, (("etag", '"a1"'), ("content-type", "application/json")), BODY)
    )


async def test_resend_is_applied_once(store: Store) -> None:
    """A request sent three times with one key increments once."""
    outcomes = [(await increment(store.engine, store.items))[0] for _ in range(3)]
    assert outcomes == ["proceed", "replay", "replay"]
    assert await counter(store) == 1


async def test_key_reused_for_another_request_is_422(store: Store) -> None:
    """The same key with another body is IdempotencyKeyReused naming the body."""
    await increment(store.engine, store.items)
    other = Fingerprint.of("POST", "/items/hot/increment", body=b"{}")
    with pytest.raises(IdempotencyKeyReused) as raised:
        await increment(store.engine, store.items, fingerprint=other)
    assert raised.value.differences == ("body",)
    assert await counter(store) == 1


async def write_keep_then_fail(store: Store) -> None:
    """A request that writes, keeps its response, then fails before the commit."""
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        await update(attempt.connection, store.items, "hot", {"counter": 5})
        await attempt.keep(200, [], BODY)
        raise ZeroDivisionError


async def test_block_that_raises_leaves_neither_write_nor_record(store: Store) -> None:
    """An error after the write and the keep rolls back both."""
    with pytest.raises(ZeroDivisionError):
        await write_keep_then_fail(store)
    assert await counter(store) == 0
    assert await stored(store) == []


async def test_key_proceeds_again_after_a_rolled_back_attempt(store: Store) -> None:
    """A claim that rolled back leaves the key free: the resend proceeds."""
    with pytest.raises(ZeroDivisionError):
        await write_keep_then_fail(store)
    assert (await increment(store.engine, store.items))[0] == "proceed"


@pytest.mark.parametrize("status", [400, 422, 428, 500, 503], ids=str)
async def test_unstorable_response_leaves_no_record(store: Store, status: int) -> None:
    """A 5xx or an input error deletes the claim: no record, the resend proceeds."""
    assert await keep_status(store, status) is None
    assert await stored(store) == []
    assert (await increment(store.engine, store.items))[0] == "proceed"


@pytest.mark.parametrize("status", [200, 201, 204, 404, 409, 410, 412], ids=str)
async def test_storable_response_is_recorded(store: Store, status: int) -> None:
    """A 2xx and the client errors of the resource's state are kept and replayed."""
    kept = await keep_status(store, status)
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        assert attempt.replay == kept == StoredResponse(status)


async def test_write_refused_by_its_precondition_replays_412(store: Store) -> None:
    """A 412 of a stale If-Match is kept, and the resend gets it again."""
    stale = TagIn((EntityTag("stale"),))
    fingerprint = Fingerprint.of("PATCH", "/items/hot", if_match='"stale"')
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=fingerprint) as attempt:
        with pytest.raises(PreconditionFailed) as failed:
            await update(attempt.connection, store.items, "hot", {"name": "x"}, condition=stale)
        kept = await attempt.keep(412, [("ETag", str(failed.value.current_etag))])
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=fingerprint) as attempt:
        assert attempt.replay == kept
    assert kept is not None
    assert kept.status == 412


async def test_delete_resent_replays_204_not_404(store: Store) -> None:
    """A delete resent after it committed gets its 204 again, and deletes nothing more."""
    fingerprint = Fingerprint.of("DELETE", "/items/hot")
    answers = []
    for _ in range(2):
        async with idempotent(
            store.engine, scope=SCOPE, key=KEY, fingerprint=fingerprint
        ) as attempt:
            if attempt.replay is None:
                await delete(attempt.connection, store.items, "hot")
                await attempt.keep(204)
            answers.append(attempt.replay)
    assert answers == [None, StoredResponse(204)]
    with pytest.raises(ResourceNotFound):
        await get(store.engine, store.items, "hot")


async def test_create_with_a_server_assigned_id_replays_its_location(store: Store) -> None:
    """A POST whose id the database chose is created once; the resend gets its Location."""
    fingerprint = Fingerprint.of("POST", "/notes", body=b'{"text": "a"}')
    locations = []
    for _ in range(2):
        async with idempotent(
            store.engine, scope=SCOPE, key=KEY, fingerprint=fingerprint
        ) as attempt:
            response = attempt.replay
            if response is None:
                note = await create(attempt.connection, store.notes, {"text": "a"})
                response = await attempt.keep(201, [("Location", f"/notes/{note['id']}")], b"")
            assert response is not None
            locations.append(dict(response.headers)["location"])
    async with store.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(store.notes.table))
    assert count == 1
    assert locations[0] == locations[1]


async def test_create_if_absent_resent_replays_201_not_412(store: Store) -> None:
    """A PUT with If-None-Match: * resent after it committed gets its 201, not a 412."""
    fingerprint = Fingerprint.of("PUT", "/items/new", if_none_match="*")
    statuses = []
    for _ in range(2):
        async with idempotent(
            store.engine, scope=SCOPE, key=KEY, fingerprint=fingerprint
        ) as attempt:
            response = attempt.replay
            if response is None:
                await create(attempt.connection, store.items, {"id": "new"}, condition=ABSENT)
                response = await attempt.keep(201, [("Location", "/items/new")])
            assert response is not None
            statuses.append(response.status)
    assert statuses == [201, 201]


async def test_same_key_in_another_scope_proceeds(store: Store) -> None:
    """Scopes do not share keys: another tenant's request with the key is its own."""
    first = await increment(store.engine, store.items, scope=("tenant-1", "editor"))
    second = await increment(store.engine, store.items, scope=("tenant-2", "editor"))
    assert (first[0], second[0]) == ("proceed", "proceed")
    assert await counter(store) == 2


async def test_scope_parts_do_not_run_together(store: Store) -> None:
    """("a/b", "c") and ("a", "b/c") are two scopes, whatever their parts contain."""
    first = await increment(store.engine, store.items, scope=("a/b", "c"))
    second = await increment(store.engine, store.items, scope=("a", "b/c"))
    assert (first[0], second[0]) == ("proceed", "proceed")


async def test_record_answers_for_the_default_ttl(store: Store) -> None:
    """Without a ttl a record expires DEFAULT_TTL (24 hours) after its claim."""
    await increment(store.engine, store.items)
    (record,) = await stored(store)
    assert record["expires_at"] - record["created_at"] == DEFAULT_TTL


async def test_ttl_is_configurable(store: Store) -> None:
    """A ttl given to the attempt is the record's lifetime."""
    await increment(store.engine, store.items, ttl=timedelta(minutes=5))
    (record,) = await stored(store)
    assert record["expires_at"] - record["created_at"] == timedelta(minutes=5)


async def test_expired_record_counts_as_absent(store: Store) -> None:
    """After expiry the key starts afresh, even for another request: proceed, not 422."""
    await increment(store.engine, store.items)
    await age(store)
    other = Fingerprint.of("POST", "/items/hot/increment", body=b"{}")
    outcome, kept = await increment(store.engine, store.items, fingerprint=other)
    assert outcome == "proceed"
    (record,) = await stored(store)
    assert Fingerprint.from_text(record["fingerprint"]) == other
    assert StoredResponse.from_bytes(record["response"]) == kept
    assert await counter(store) == 2


async def test_purge_deletes_only_expired_records(store: Store) -> None:
    """Purging deletes the expired records and leaves the others."""
    for name in ("a", "b", "c"):
        await increment(store.engine, store.items, key=IdempotencyKey(name))
    await age(store, ["a", "c"])
    assert await purge(store.engine) == 2
    assert [record["key"] for record in await stored(store)] == ["b"]


async def test_purge_is_bounded_per_call(store: Store) -> None:
    """One call deletes at most ``limit`` records; the next calls delete the rest."""
    for name in ("a", "b", "c"):
        await increment(store.engine, store.items, key=IdempotencyKey(name))
    await age(store)
    assert [await purge(store.engine, limit=2) for _ in range(3)] == [2, 1, 0]


async def write_without_keeping(store: Store) -> None:
    """A request that writes and forgets to keep its response."""
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        await update(attempt.connection, store.items, "hot", {"counter": 5})


async def test_block_that_keeps_nothing_is_rolled_back(store: Store) -> None:
    """Forgetting keep is refused, and the write without its record does not commit."""
    with pytest.raises(RuntimeError, match="keep"):
        await write_without_keeping(store)
    assert (await counter(store), await stored(store)) == (0, [])


async def test_replay_keeps_nothing(store: Store) -> None:
    """keep on a replayed request is a programming error."""
    await increment(store.engine, store.items)
    async with idempotent(store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        with pytest.raises(RuntimeError, match="replayed"):
            await attempt.keep(200)


async def test_unreadable_record_is_a_corrupt_record(store: Store) -> None:
    """A record no version of optimist wrote is CorruptRecord (500), not a replay."""
    await increment(store.engine, store.items)
    async with store.engine.begin() as connection:
        await connection.execute(sql_update(store.records).values(fingerprint="{}"))
    with pytest.raises(CorruptRecord):
        await increment(store.engine, store.items)


@pytest.mark.parametrize("tasks", [2, 16], ids=lambda n: f"{n}-tasks")
async def test_concurrent_duplicates_apply_once_and_share_one_answer(
    database_url: str, tasks: int
) -> None:
    """N tasks send one request with one key at once: one increment, N equal answers."""
    await seed(database_url)
    async with open_store(database_url, pool_size=tasks + 1, max_overflow=0) as store:
        results = await asyncio.gather(
            *(increment(store.engine, store.items) for _ in range(tasks))
        )
        assert [kind for kind, _ in results].count("proceed") == 1
        assert len({response for _, response in results}) == 1
        assert await counter(store) == 1


async def test_one_process_s_keyed_writers_on_sqlite_take_turns(tmp_path: Path) -> None:
    """Keyed writers of one process queue for the engine instead of meeting SQLite's lock:
    with no busy wait at all, none is refused."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}"
    await seed(url)
    async with open_store(url, busy_timeout=0) as store:
        keys = [IdempotencyKey(f"key-{index}") for index in range(24)]
        results, _ = await asyncio.gather(
            asyncio.gather(*(increment(store.engine, store.items, key=key) for key in keys)),
            asyncio.gather(
                *(update(store.engine, store.items, "hot", {"name": "n"}) for _ in range(8))
            ),
        )
        assert [kind for kind, _ in results] == ["proceed"] * len(keys)
        assert await counter(store) == len(keys)


async def waiting(store: Store, count: int) -> None:
    """Return once ``count`` sessions wait on a lock in a statement on the records
    (PostgreSQL's own view of its sessions)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE '%optimist_idempotency%'"
    )
    async with asyncio.timeout(DEADLINE), store.engine.connect() as connection:
        while await connection.scalar(query) != count:
            await connection.rollback()
            await asyncio.sleep(0.01)


@asynccontextmanager
async def held_open(store: Store) -> AsyncIterator[asyncio.Task[tuple[str, StoredResponse]]]:
    """An increment that has claimed the key and written, held open until the ``with``
    ends (within DEADLINE: a block that waits for it fails instead of hanging); the task
    that finishes it."""
    written, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(increment(store.engine, store.items, held=(written, release)))
    await written.wait()
    try:
        async with asyncio.timeout(DEADLINE):
            yield first
    finally:
        release.set()
        await first


@pytest.mark.postgres
async def test_duplicates_wait_for_the_first_and_replay_it(pg_store: Store) -> None:
    """On PostgreSQL duplicates block on the first's claim, then replay its answer."""
    async with held_open(pg_store) as first:
        duplicates = [
            asyncio.create_task(increment(pg_store.engine, pg_store.items)) for _ in range(8)
        ]
        await waiting(pg_store, 8)
    kind, kept = await first
    assert kind == "proceed"
    assert await asyncio.gather(*duplicates) == [("replay", kept)] * 8
    assert await counter(pg_store) == 1


@pytest.mark.postgres
async def test_wait_for_the_first_is_bounded_by_409(pg_store: Store) -> None:
    """A duplicate that waited ``wait`` seconds for the first is IdempotencyKeyInFlight."""
    async with held_open(pg_store):
        with pytest.raises(IdempotencyKeyInFlight):
            await increment(pg_store.engine, pg_store.items, wait=0.2)
    assert await counter(pg_store) == 1


@pytest.mark.postgres
async def test_other_keys_do_not_wait(pg_store: Store) -> None:
    """A claim blocks only its own key: another key proceeds while the first is open."""
    async with (
        held_open(pg_store),
        idempotent(
            pg_store.engine, scope=SCOPE, key="other", fingerprint=INCREMENT, wait=5
        ) as attempt,
    ):
        assert attempt.replay is None
        await attempt.keep(204)


@pytest.mark.postgres
async def test_expired_key_is_taken_over_once(pg_store: Store) -> None:
    """After expiry one request takes the key over; a duplicate waits and replays it."""
    await increment(pg_store.engine, pg_store.items)
    await age(pg_store)
    async with held_open(pg_store) as first:
        duplicate = asyncio.create_task(increment(pg_store.engine, pg_store.items))
        await waiting(pg_store, 1)
    assert await duplicate == ("replay", (await first)[1])
    assert await counter(pg_store) == 2


@pytest.mark.postgres
async def test_purge_skips_a_record_being_taken_over(pg_store: Store) -> None:
    """Purging neither waits for nor deletes an expired record a request is taking over."""
    await increment(pg_store.engine, pg_store.items)
    await age(pg_store)
    async with held_open(pg_store):
        assert await purge(pg_store.engine) == 0
    assert len(await stored(pg_store)) == 1


@pytest.mark.postgres
async def test_refused_statement_keeps_nothing_on_postgres(pg_store: Store) -> None:
    """A value PostgreSQL refuses aborts the transaction: nothing is kept or committed."""
    await create(pg_store.engine, pg_store.items, {"id": "a", "email": "taken@example.com"})
    async with idempotent(pg_store.engine, scope=SCOPE, key=KEY, fingerprint=INCREMENT) as attempt:
        with pytest.raises(ResourceExists):
            await create(
                attempt.connection, pg_store.items, {"id": "b", "email": "taken@example.com"}
            )
        assert await attempt.keep(409) is None
    assert await stored(pg_store) == []
    assert (await increment(pg_store.engine, pg_store.items))[0] == "proceed"


@pytest.mark.postgres
async def test_writes_in_the_block_keep_the_callers_lock_timeout(pg_store: Store) -> None:
    """The claim's bounded wait is its own: the block runs under the caller's lock_timeout."""
    async with pg_store.engine.connect() as connection, connection.begin():
        await connection.execute(text("SET LOCAL lock_timeout = '7s'"))
        async with idempotent(
            connection, scope=SCOPE, key=KEY, fingerprint=INCREMENT, wait=0.5
        ) as attempt:
            setting = await attempt.connection.scalar(text("SHOW lock_timeout"))
            await attempt.keep(204)
    assert setting == "7s"


async def process_duplicates(url: str, tasks: int, barrier: Any) -> list[str]:
    """A process of ``tasks`` duplicates of one request, started with the others."""
    async with open_store(url, pool_size=tasks, max_overflow=0) as store:
        await asyncio.to_thread(barrier.wait)
        results = await asyncio.gather(
            *(increment(store.engine, store.items) for _ in range(tasks))
        )
    return [f"{kind}:{response.to_bytes().hex()}" for kind, response in results]


@pytest.mark.slow
def test_duplicates_across_processes_apply_once(database_url: str) -> None:
    """Two processes of four tasks send one request with one key: one increment, one answer."""
    asyncio.run(seed(database_url))
    results = run_processes(process_duplicates, [(database_url, 4)] * 2)
    outcomes = [outcome for outcomes in results for outcome in outcomes]
    assert [outcome.split(":")[0] for outcome in outcomes].count("proceed") == 1
    assert len({outcome.split(":")[1] for outcome in outcomes}) == 1

    async def final() -> int:
        async with open_store(database_url) as store:
            return await counter(store)

    assert asyncio.run(final()) == 1

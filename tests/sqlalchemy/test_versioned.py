"""Versioned tables, timestamps and ETag recipes (optimist.sqlalchemy.versioned)."""

from __future__ import annotations

import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, select

from optimist.conditions import ResourceState
from optimist.etag import EntityTag
from optimist.sqlalchemy import (
    SEQUENCES_TABLE,
    Record,
    UTCDateTime,
    Versioned,
    create,
    create_engine,
    get,
    sha256_tag,
    update,
    versioned_table,
)
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


def test_versioned_table_adds_the_version_columns() -> None:
    """versioned_table declares an indexed etag, updated_at and a unique created_seq."""
    versioned = versioned_table("things", MetaData(), Column("id", Integer, primary_key=True))
    columns = versioned.table.c
    assert not columns.etag.nullable
    assert any(index.columns.contains_column(columns.etag) for index in versioned.table.indexes)
    assert isinstance(columns.updated_at.type, UTCDateTime)
    assert isinstance(columns.created_seq.type, BigInteger)
    assert columns.created_seq.unique
    assert versioned.clock is None


def test_versioned_table_declares_the_counter_table() -> None:
    """The write-sequence counter table joins the same metadata."""
    metadata = MetaData()
    versioned_table("things", metadata, Column("id", Integer, primary_key=True))
    assert SEQUENCES_TABLE in metadata.tables


def test_scope_columns_lead_the_page_index() -> None:
    """A scoped table gets an index on (scope…, created_seq) for deep tenant pages."""
    versioned = versioned_table(
        "things",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("tenant", Integer),
        scope=("tenant",),
    )
    (index,) = [i for i in versioned.table.indexes if i.name == "ix_things_scope_created_seq"]
    assert [c.name for c in index.columns] == ["tenant", "created_seq"]


def test_clock_tables_get_a_vector_clock_column() -> None:
    """clock=True adds the column that holds the canonical clock."""
    versioned = versioned_table(
        "s", MetaData(), Column("id", Integer, primary_key=True), clock=True
    )
    assert versioned.clock is versioned.table.c.vector_clock


def test_versioned_wraps_an_applications_own_table() -> None:
    """Any table with version columns (named as it likes) can be described."""
    table = Table(
        "legacy",
        MetaData(),
        Column("pk", String(10), primary_key=True),
        Column("version", String(64)),
        Column("modified", UTCDateTime()),
        Column("seq", BigInteger),
    )
    versioned = Versioned(
        table,
        etag_column="version",
        updated_at_column="modified",
        created_seq_column="seq",
        resource="legacy things",
    )
    assert versioned.etag is table.c.version
    assert versioned.updated_at is table.c.modified
    assert versioned.created_seq is table.c.seq
    assert versioned.key == (table.c.pk,)
    assert versioned.resource == "legacy things"


def test_versioned_refuses_a_table_without_version_columns() -> None:
    """A missing version column is named at declaration time."""
    table = Table("bare", MetaData(), Column("id", Integer, primary_key=True))
    with pytest.raises(ValueError, match="etag"):
        Versioned(table)


def test_versioned_refuses_a_table_without_primary_key() -> None:
    """Conditional writes target one row, so a key is required."""
    table = Table(
        "keyless",
        MetaData(),
        Column("etag", String(64)),
        Column("updated_at", UTCDateTime()),
        Column("created_seq", BigInteger),
    )
    with pytest.raises(ValueError, match="primary key"):
        Versioned(table)


def test_composite_keys_are_tuples() -> None:
    """A one-column key may be a scalar; a composite key is a tuple of the right length."""
    versioned = versioned_table(
        "pairs",
        MetaData(),
        Column("a", Integer, primary_key=True),
        Column("b", Integer, primary_key=True),
    )
    assert versioned.key_of((1, 2)) == (1, 2)
    with pytest.raises(ValueError, match="2 parts"):
        versioned.key_of(1)


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
def test_table_decides_the_weakness_of_its_tags(weak: bool) -> None:
    """A stored opaque-tag becomes a strong or weak EntityTag by table."""
    versioned = versioned_table("t", MetaData(), Column("id", Integer, primary_key=True), weak=weak)
    assert versioned.tag("abc") == EntityTag("abc", weak=weak)


def test_record_state_describes_an_existing_resource() -> None:
    """Record.state is what evaluate() needs: exists, tag, modification time."""
    moment = datetime(2025, 1, 15, tzinfo=UTC)
    record = Record({"id": 1}, EntityTag("x"), moment)
    assert record.state == ResourceState(exists=True, etag=EntityTag("x"), last_modified=moment)
    assert record["id"] == 1


def test_default_recipe_gives_16_hex_digits() -> None:
    """The default recipe is 16 hex digits of SHA-256, as the projects API stores them."""
    tag = sha256_tag()(("proj_1",), datetime(2025, 1, 15, tzinfo=UTC))
    assert len(tag) == 16
    assert set(tag) <= set(string.hexdigits.lower())


@given(
    length=st.integers(min_value=8, max_value=64),
    key=st.tuples(st.one_of(st.integers(), st.text(max_size=20))),
)
def test_recipe_tags_are_fresh_hex_of_the_asked_length(length: int, key: tuple[object]) -> None:
    """Law: any key gives a tag of ``length`` hex digits, different on every call."""
    recipe = sha256_tag(length)
    moment = datetime(2025, 1, 15, tzinfo=UTC)
    first, second = recipe(key, moment), recipe(key, moment)
    assert len(first) == length
    assert set(first) <= set(string.hexdigits.lower())
    assert first != second
    EntityTag(first)  # always a valid opaque-tag


def test_two_versions_in_one_microsecond_get_different_tags() -> None:
    """The nonce makes tags unique even for the same key and timestamp."""
    recipe = sha256_tag()
    moment = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
    assert len({recipe(("a",), moment) for _ in range(1000)}) == 1000


@pytest.mark.parametrize("length", [7, 65], ids=["too-short", "too-long"])
def test_recipe_length_is_bounded(length: int) -> None:
    """Fewer than 8 digits would collide; SHA-256 has only 64."""
    with pytest.raises(ValueError, match="length"):
        sha256_tag(length)


def test_custom_recipe_names_the_versions() -> None:
    """A table may bring its own recipe (e.g. the admin API's weak tags)."""
    calls: list[tuple[object, ...]] = []

    def recipe(key: tuple[object, ...], updated_at: datetime) -> str:
        calls.append(key)
        return f"v{len(calls)}"

    versioned = versioned_table(
        "t", MetaData(), Column("id", Integer, primary_key=True), weak=True, recipe=recipe
    )
    assert versioned.recipe(("k",), datetime.now(UTC)) == "v1"


async def test_custom_recipe_is_used_by_writes(store: Store) -> None:
    """create and update name each version with the table's recipe."""
    counter = iter(range(100))
    metadata = MetaData()
    custom = versioned_table(
        "custom",
        metadata,
        Column("id", Integer, primary_key=True),
        recipe=lambda key, at: f"{key[0]}-{next(counter)}",
    )
    async with store.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    assert (await create(store.engine, custom, {"id": 7})).etag == EntityTag("7-0")
    assert (await update(store.engine, custom, 7, {})).etag == EntityTag("7-1")


@pytest.mark.parametrize(
    "written",
    [
        datetime(2025, 1, 15, 10, 30, 0, 123_456, tzinfo=UTC),
        datetime(2025, 1, 15, 12, 30, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 1, 15, 10, 30, 0, 123_456),
    ],
    ids=["utc", "offset", "naive-is-utc"],
)
async def test_timestamps_round_trip_aware_with_microseconds(
    database_url: str, written: datetime
) -> None:
    """updated_at comes back in UTC, to the microsecond, on both backends."""
    metadata = MetaData()
    table = Table(
        "moments", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(table.insert().values(id=1, at=written))
            read = await connection.scalar(select(table.c.at))
    finally:
        await engine.dispose()
    expected = written.replace(tzinfo=UTC) if written.tzinfo is None else written
    assert read == expected
    assert read.tzinfo is UTC
    assert read.microsecond == 123_456


async def test_timestamps_compare_in_time_order(database_url: str) -> None:
    """Stored times compare as instants, whatever zone they were written in."""
    metadata = MetaData()
    table = Table(
        "moments", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    early = datetime(2025, 1, 15, 11, 0, tzinfo=timezone(timedelta(hours=2)))  # 09:00 UTC
    late = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                table.insert(), [{"id": 1, "at": early}, {"id": 2, "at": late}]
            )
            first = await connection.scalar(select(table.c.id).order_by(table.c.at).limit(1))
            before = await connection.scalar(
                select(table.c.id).where(table.c.at < datetime(2025, 1, 15, 9, 30, tzinfo=UTC))
            )
    finally:
        await engine.dispose()
    assert first == 1
    assert before == 1


async def test_written_rows_carry_an_aware_updated_at(store: Store) -> None:
    """Writes stamp updated_at in UTC, never earlier than the previous write."""
    created = await create(store.engine, store.items, {"id": "a"})
    updated = await update(store.engine, store.items, "a", {"name": "x"})
    assert created.updated_at.tzinfo is UTC
    assert updated.updated_at >= created.updated_at
    assert (await get(store.engine, store.items, "a")).updated_at == updated.updated_at


def test_utc_datetime_uses_a_zone_aware_column() -> None:
    """On PostgreSQL the column is TIMESTAMP WITH TIME ZONE."""
    assert isinstance(UTCDateTime().impl, DateTime)
    assert UTCDateTime().impl.timezone is True

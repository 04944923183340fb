"""The write sequence: a per-table counter that numbers creates in commit order.

Keyset pagination with a snapshot (:mod:`optimist.sqlalchemy.pages`) orders rows by an
immutable ``created_seq`` and, from the first page on, shows only rows numbered at or
below a *watermark* read when that page was served. That is only strict if no row can
later appear *below* the watermark: every number at or below it must already belong to
a committed row (or to none) when the watermark is read.

A PostgreSQL ``SEQUENCE`` (or ``SERIAL``) does not give that: numbers are handed out
when a statement runs, not when it commits, so a create that drew 10 can commit after
a reader saw 11 committed, and 10 would then appear inside a snapshot that began before
it existed. Instead each versioned table has a row in ``optimist_sequences``, and a
create increments it *in the same statement* that inserts the row::

    WITH s AS (INSERT INTO optimist_sequences (name, value) VALUES (:t, 1)
               ON CONFLICT (name) DO UPDATE SET value = optimist_sequences.value + 1
               RETURNING value)
    INSERT INTO t (…, created_seq) VALUES (…, (SELECT value FROM s))
      ON CONFLICT (pk) DO NOTHING RETURNING *

The upsert locks the counter row until the create commits, so creates of one table
take their numbers one after another in commit order, and a reader that sees the
counter at *w* sees every row numbered ≤ *w*: the counter and the row commit together,
and a create that rolls back rolls its number back too, before anyone could see it.
The price is that creates of one table are serialised for the length of their
transaction: one short statement in autocommit. A caller's transaction that creates
rows in several tables holds several counters: create in a fixed table order there, as
with any locks, or PostgreSQL breaks the deadlock by aborting one of two such
transactions.

On SQLite every write transaction holds the database's one write lock (``BEGIN
IMMEDIATE``, see :mod:`optimist.sqlalchemy.engine`) and SQLite has no DML in ``WITH``,
so there the upsert and the insert are two statements of one transaction.

Updates never touch ``created_seq``, so an update neither moves a row between pages
nor out of a snapshot. The counter only grows, so the number of a deleted row is never
handed out again; gaps (a create that conflicted) are harmless.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

__all__ = ["SEQUENCES_TABLE", "advance", "high_water", "sequences"]

#: The name of the counter table each metadata with a versioned table gets.
SEQUENCES_TABLE: Final = "optimist_sequences"


def sequences(metadata: MetaData) -> Table:
    """The counter table of ``metadata``, declared on first use (``create_all`` makes it)."""
    existing = metadata.tables.get(SEQUENCES_TABLE)
    if existing is not None:
        return existing
    return Table(
        SEQUENCES_TABLE,
        metadata,
        Column("name", String(255), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


def advance(counters: Table, name: str, dialect_name: str) -> ReturningInsert[tuple[Any]]:
    """The upsert that increments counter ``name`` (creating it at 1) and returns its value.

    On PostgreSQL use it as a CTE of the insert that consumes the number; on SQLite
    execute it first, in the same ``BEGIN IMMEDIATE`` transaction as that insert.
    """
    if dialect_name == "postgresql":
        pg = postgresql.insert(counters).values(name=name, value=1)
        return pg.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        ).returning(counters.c.value)
    lite = sqlite.insert(counters).values(name=name, value=1)
    return lite.on_conflict_do_update(
        index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
    ).returning(counters.c.value)


async def high_water(connection: AsyncConnection, counters: Table, name: str) -> int:
    """The highest number handed out to a committed create of ``name`` (0 before any)."""
    value = await connection.scalar(select(counters.c.value).where(counters.c.name == name))
    return int(value) if value is not None else 0

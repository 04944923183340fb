"""Keyset pages over a versioned table, bounded by a snapshot watermark.

A traversal is a sequence of :func:`page` calls. The first (``after=None,
watermark=None``) reads the table's write-sequence high-water mark and returns it as
the traversal's *watermark*; every later page passes it back (inside a signed cursor,
:mod:`optimist.cursor`) and sees only rows with ``created_seq <= watermark``. Rows are
ordered by ``created_seq``, which is immutable and unique (a unique index), so it is a
total order by itself and needs no tie-breaker; a page continues strictly after the
last position of the previous one (keyset, never OFFSET). Hence, whatever happens
between pages (SPEC §1, "Pagination is consistent"):

* no row appears twice: positions only grow, and an update never changes a position;
* a row created after the first page never appears: its number is above the
  watermark, and the numbering is commit-ordered on both backends
  (:mod:`optimist.sqlalchemy._sequence` explains why a plain SEQUENCE would not do);
* every row that existed at the first page and still exists at the end appears
  exactly once: deleting a row removes only that row, it shifts nothing, because a
  page starts at a position, not at a count of rows before it.

``filters`` narrow the traversal; filter only on columns that do not change during
it (a tenant, a parent), or a row can leave or join it between pages. A deep page
costs what the first costs: an index range scan from the position (``created_seq``'s
unique index, or the ``(scope…, created_seq)`` index :func:`versioned_table` declares).
Expiring old snapshots (410) is the cursor codec's job, not this module's;
:func:`optimist.sqlalchemy.listing.list_page` puts a page and its signed cursor together.

Pages may be read from a streaming replica of the database (a PostgreSQL standby, which
replays the primary's write-ahead log in commit order), given as ``bind`` with its
``primary``. A first page read there is a consistent snapshot as of the replica's
replay point, and its watermark is the counter *that* statement saw, so the snapshot
is what the replica held: every row numbered at or below it is there. A later page
needs every row numbered at or below the watermark, and a replica (this one lagging
more than it did, or another one behind the same address) may not have replayed them
yet. The counter tells, with no clock and no log position: the replica's counter is at
or above the watermark exactly when it has replayed the commit that took the
watermark's number, hence (creates commit in number order) every create numbered
below it. So a later page first reads the replica's counter and then the page, in one
read-only transaction on one connection (one server, whose replay only moves
forward); a counter below the watermark sends that page to ``primary``, which holds
every committed row. A row deleted on the primary but not yet on the replica may be
served once more, as it would have been by a page read before the delete; an update
never moves a row. So no page repeats a row or misses one of the snapshot, whichever
server each page was read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select

from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._rows import Scope
from optimist.sqlalchemy._sequence import high_water
from optimist.sqlalchemy._statements import MARK, Prepared, page_of
from optimist.sqlalchemy.engine import Bind, autocommit, transaction
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = ["Page", "page"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a traversal.

    ``next_position`` is where the next page starts (None after the last page);
    ``watermark`` bounds the whole traversal and goes into the next cursor with it.
    """

    records: tuple[Record, ...]
    next_position: int | None
    watermark: int


async def page(
    bind: Bind,
    versioned: Versioned,
    *,
    limit: int,
    after: int | None = None,
    watermark: int | None = None,
    scope: Scope | None = None,
    filters: Sequence[ColumnElement[bool]] = (),
    descending: bool = False,
    primary: Bind | None = None,
) -> Page:
    """Up to ``limit`` rows after position ``after``, within the snapshot ``watermark``.

    Without a ``watermark`` this is a first page and the current high-water mark
    becomes the snapshot. ``descending`` lists the newest rows first; the snapshot
    bound is the same. With a ``primary``, ``bind`` is a replica of it, and a page
    whose watermark the replica has not reached is read from ``primary`` (see the
    module's docstring).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    # One row more than asked says whether another page follows.
    prepared = page_of(
        versioned,
        scope or {},
        limit=limit + 1,
        after=after,
        watermark=watermark,
        descending=descending,
    )
    # The snapshot is the watermark, not a transaction: every row numbered at or below
    # it was committed when it was read, so the page's statement sees all of them.
    if watermark is not None and primary is not None:
        rows = await _replicated(
            bind, primary, versioned, prepared, filters=filters, watermark=watermark
        )
    else:
        rows = await _rows(bind, prepared, filters)
    if watermark is not None:
        mark = watermark
    elif rows:
        mark = int(rows[0][MARK])
        for row in rows:  # the rows fetch made, this call's own
            del row[MARK]
    else:
        # No row at all: the mark still starts the traversal.
        async with autocommit(bind, read=True) as connection:
            mark = await high_water(connection, versioned.counters, versioned.sequence_name)
    records = tuple(versioned._record(row) for row in rows[:limit])
    following = len(rows) > limit
    next_position = int(records[-1][versioned.created_seq_column]) if following else None
    return Page(records=records, next_position=next_position, watermark=mark)


async def _rows(
    bind: Bind, prepared: Prepared, filters: Sequence[ColumnElement[bool]]
) -> list[dict[str, Any]]:
    """The rows of the page statement ``prepared``, narrowed by ``filters``, on ``bind``."""
    if filters:
        # The caller's filters make a statement of this call's own.
        filtered = cast("Select[Any]", prepared.statement).where(*filters)
        return await fetch(bind, filtered, prepared.parameters)
    return await fetch(bind, prepared)


async def _replicated(
    replica: Bind,
    primary: Bind,
    versioned: Versioned,
    prepared: Prepared,
    *,
    filters: Sequence[ColumnElement[bool]],
    watermark: int,
) -> list[dict[str, Any]]:
    """The page's rows from ``replica`` if it has every row of the snapshot ``watermark``,
    else from ``primary``."""
    async with transaction(replica, read=True) as connection:
        replayed = await high_water(connection, versioned.counters, versioned.sequence_name)
        if replayed >= watermark:
            return await _rows(connection, prepared, filters)
    return await _rows(primary, prepared, filters)

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select

from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._rows import Scope
from optimist.sqlalchemy._sequence import high_water
from optimist.sqlalchemy._statements import MARK, page_of
from optimist.sqlalchemy.engine import Bind, autocommit
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
) -> Page:
    """Up to ``limit`` rows after position ``after``, within the snapshot ``watermark``.

    Without a ``watermark`` this is a first page and the current high-water mark
    becomes the snapshot. ``descending`` lists the newest rows first; the snapshot
    bound is the same.
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
    if filters:
        # The caller's filters make a statement of this call's own.
        filtered = cast("Select[Any]", prepared.statement).where(*filters)
        rows = await fetch(bind, filtered, prepared.parameters)
    else:
        rows = await fetch(bind, prepared)
    if watermark is not None:
        mark = watermark
    elif rows:
        mark = int(rows[0][MARK])
        rows = [{k: v for k, v in row.items() if k != MARK} for row in rows]
    else:
        # No row at all: the mark still starts the traversal.
        async with autocommit(bind, read=True) as connection:
            mark = await high_water(connection, versioned.counters, versioned.sequence_name)
    records = tuple(versioned.record(row) for row in rows[:limit])
    following = len(rows) > limit
    next_position = int(records[-1][versioned.created_seq_column]) if following else None
    return Page(records=records, next_position=next_position, watermark=mark)

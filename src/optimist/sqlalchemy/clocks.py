"""Writes of vector-clock resources: the stored clock is the compare-and-set key.

A clock-versioned table (``versioned_table(..., clock=True)``) keeps each row's
:class:`~optimist.vclock.VectorClock` as canonical JSON in ``vector_clock``, and its
entity tag (``clock.to_etag()``) in ``etag``. A client sends back the clock it last saw;
the write is one statement that succeeds only if that is still the stored clock::

    UPDATE t SET …, vector_clock = :sent.increment(node), etag = …, updated_at = :now
      WHERE pk = :pk AND <scope> AND vector_clock = :sent_canonical RETURNING *

Equal clocks have exactly one canonical JSON text, so comparing texts is comparing
clocks, and the new clock strictly follows the stored one: every write has a new tag.
When no row comes back, one read tells a missing row (:class:`ResourceNotFound`) from
a conflict: :class:`VersionConflict` with the current tag and clock, and the ordering
of the sent clock against it (``BEFORE`` → the client is *stale*, it missed writes;
anything else → *concurrent*: it claims writes the store never saw).

A write without a clock (no If-Match, or ``If-Match: *``) must still increment the
stored clock without losing a concurrent increment: it holds the row (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the database) for
the read and the compare-and-set, in one transaction.

A write may also carry preconditions the clock cannot decide, If-None-Match and
If-Unmodified-Since (``condition``, e.g. ``Preconditions.write_condition()``). Such a
write holds the row too, decides the sent clock first (RFC 9110 §13.2.2 step 1: a
:class:`VersionConflict`), then evaluates ``condition`` on the held row (false: a
:class:`PreconditionFailed` carrying it), and writes in the same transaction, so
nothing changes between the evaluation and the write. It costs a read before the
write; a write whose only precondition is the clock is the one statement above.

``node`` names the server writing (``--node-id``). The generic
:func:`~optimist.sqlalchemy.writes.update` and :func:`~optimist.sqlalchemy.writes.create`
refuse clocked tables, so clock and tag never drift apart;
:func:`~optimist.sqlalchemy.writes.get`, :func:`~optimist.sqlalchemy.writes.delete` (by
tag) and :func:`~optimist.sqlalchemy.pages.page` work as on any versioned table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncConnection

from optimist.conditions import ALWAYS, Always, Condition
from optimist.errors import PreconditionFailed, ResourceNotFound, VersionConflict
from optimist.sqlalchemy._create import create_stamped
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._rows import Scope, check_columns, find, locate
from optimist.sqlalchemy.engine import Bind, transaction
from optimist.sqlalchemy.versioned import Record, Versioned
from optimist.vclock import VectorClock

__all__ = ["clock_of", "create_clocked", "delete_clocked", "update_clocked"]


def clock_of(versioned: Versioned, record: Record) -> VectorClock:
    """The vector clock stored in ``record``."""
    return VectorClock.from_json(record[_clock_column(versioned).name])


async def create_clocked(
    bind: Bind,
    versioned: Versioned,
    values: Mapping[str, Any],
    *,
    node: str,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Create a row whose clock is ``{node: 1}``; otherwise exactly like ``create``."""
    column = _clock_column(versioned)
    clock = VectorClock().increment(node)
    stamped = {column.name: clock.to_json(), versioned.etag_column: clock.to_etag().opaque}
    return await create_stamped(
        bind, versioned, values, lambda _parts, _now: stamped, condition=condition, scope=scope
    )


async def update_clocked(
    bind: Bind,
    versioned: Versioned,
    key: object,
    values: Mapping[str, Any],
    *,
    node: str,
    sent: VectorClock | None,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Write ``values`` if the stored clock is ``sent``, and advance it on ``node``.

    With ``sent=None`` the write is unconditional but still increments the stored
    clock atomically. A ``condition`` other than ``ALWAYS`` is evaluated on the held
    row (see the module's docstring). Raises :class:`ResourceNotFound`,
    :class:`VersionConflict`, or :class:`PreconditionFailed` when ``condition`` is false.
    """
    column = _clock_column(versioned)
    parts = versioned.key_of(key)
    check_columns(versioned, values, allow_key=False)
    located = locate(versioned, parts, scope)
    async with transaction(bind) as connection:
        if sent is None or not isinstance(condition, Always):
            held = await _hold(connection, versioned, key, located, sent=sent, condition=condition)
            base = clock_of(versioned, held)
        else:
            base = sent
        clock = base.increment(node)
        now = datetime.now(UTC)
        statement = (
            sql_update(versioned.table)
            .where(located, column == base.to_json())
            .values(
                {
                    **values,
                    column.name: clock.to_json(),
                    versioned.etag_column: clock.to_etag().opaque,
                    versioned.updated_at_column: now,
                }
            )
            .returning(*versioned.table.c)
        )
        rows = await fetch(connection, statement, writes=versioned, values=values)
        if rows:
            return versioned.record(rows[0])
        current = await find(connection, versioned, parts, scope=scope)
    raise _conflict(versioned, key, base, current)


async def delete_clocked(
    bind: Bind,
    versioned: Versioned,
    key: object,
    *,
    sent: VectorClock | None,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Delete the row if its stored clock is ``sent`` (any clock if None); returns it.

    A ``condition`` other than ``ALWAYS`` is evaluated on the held row, as in
    :func:`update_clocked`.
    """
    column = _clock_column(versioned)
    parts = versioned.key_of(key)
    located = locate(versioned, parts, scope)
    async with transaction(bind) as connection:
        if not isinstance(condition, Always):
            held = await _hold(connection, versioned, key, located, sent=sent, condition=condition)
            sent = clock_of(versioned, held)
        statement = sql_delete(versioned.table).where(located)
        if sent is not None:
            statement = statement.where(column == sent.to_json())
        returning = statement.returning(*versioned.table.c)
        rows = await fetch(connection, returning, writes=versioned, values={})
        if rows:
            return versioned.record(rows[0])
        current = await find(connection, versioned, parts, scope=scope)
    raise _conflict(versioned, key, sent or VectorClock(), current)


async def _hold(
    connection: AsyncConnection,
    versioned: Versioned,
    key: object,
    located: ColumnElement[bool],
    *,
    sent: VectorClock | None,
    condition: Condition,
) -> Record:
    """The row, held until the transaction ends, once ``sent`` and ``condition`` hold of it."""
    # FOR UPDATE holds the row on PostgreSQL until the transaction ends; SQLite
    # renders nothing, its BEGIN IMMEDIATE already holds the whole database.
    held = select(versioned.table).where(located).with_for_update()
    rows = await fetch(connection, held)
    if not rows:
        raise ResourceNotFound(versioned.resource, key)
    current = versioned.record(rows[0])
    # RFC 9110 §13.2.2 step 1: If-Match (the clock) is decided before the rest.
    if sent is not None and sent != clock_of(versioned, current):
        raise _conflict(versioned, key, sent, current)
    # Steps 2 and 3: If-Unmodified-Since, If-None-Match, on the row as it is held.
    if not condition.holds(current.state):
        raise PreconditionFailed(current.etag, current=current)
    return current


def _conflict(
    versioned: Versioned, key: object, sent: VectorClock, current: Record | None
) -> ResourceNotFound | VersionConflict:
    if current is None:
        return ResourceNotFound(versioned.resource, key)
    stored = clock_of(versioned, current)
    conflict = VersionConflict(current.etag, sent.compare(stored), stored)
    conflict.current = current
    return conflict


def _clock_column(versioned: Versioned) -> Column[Any]:
    column = versioned.clock
    if column is None:
        raise ValueError(f"{versioned.resource} is not versioned by vector clocks")
    return column

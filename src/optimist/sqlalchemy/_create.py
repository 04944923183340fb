"""Creating a row: one INSERT that never overwrites, numbered in the write sequence.

A create is the one write whose precondition is about an *absent* row, so it is not a
WHERE clause but the insert's conflict clause::

    INSERT INTO t (…, etag, updated_at, created_seq) VALUES (…)
      ON CONFLICT (pk) DO NOTHING RETURNING *

No row back means the key is taken, and one read of it says which error that is: with
``If-None-Match: *`` (``ABSENT``) or a matching If-None-Match tag a
:class:`PreconditionFailed` carrying the current row (RFC 9110 §13.1.2), otherwise a
:class:`ResourceExists`. A condition that no absent resource meets (If-Match, RFC 9110
§13.1.1) inserts nothing at all. A key the caller leaves out is the database's to
choose (a default or an identity column); then there is no conflict clause.

The row's number in its table's write sequence is taken in the same statement on
PostgreSQL (a CTE that upserts the counter) and in the same ``BEGIN IMMEDIATE``
transaction on SQLite (:mod:`optimist.sqlalchemy._sequence` says why the order of
commits matters), so a create runs in a transaction of its own given an engine.

The version columns come from a :data:`Stamp`: an entity tag from the table's recipe
for :func:`~optimist.sqlalchemy.writes.create`, a first vector clock for
:func:`~optimist.sqlalchemy.clocks.create_clocked`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnDefault, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.schema import CallableColumnDefault

from optimist.conditions import ALWAYS, Condition, ResourceState
from optimist.errors import PreconditionFailed, ResourceExists
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._rows import Scope, check_columns, find
from optimist.sqlalchemy._sequence import advance
from optimist.sqlalchemy.engine import Bind, transaction
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = ["Stamp", "create_stamped"]

#: The version columns of a new row (``etag``, a clock…) from its key and write time.
Stamp: TypeAlias = Callable[[tuple[Any, ...], datetime], Mapping[str, Any]]


async def create_stamped(
    bind: Bind,
    versioned: Versioned,
    values: Mapping[str, Any],
    stamp: Stamp,
    *,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Insert a row of ``values`` and ``scope``, its version columns from ``stamp``."""
    row_values = {**values, **_scope_values(values, scope)}
    check_columns(versioned, row_values, allow_key=True)
    keyed = all(column.name in row_values for column in versioned.key)
    parts = tuple(row_values.get(column.name) for column in versioned.key)
    shown: object = parts[0] if len(parts) == 1 else parts
    async with transaction(bind) as connection:
        if not condition.holds(ResourceState.missing()):
            # RFC 9110 §13.1.1: If-Match ("*" or tags) is false without a current
            # representation; nothing to create, only the reason to find.
            current = await find(connection, versioned, parts, scope=scope) if keyed else None
            raise PreconditionFailed(None if current is None else current.etag, current=current)
        now = datetime.now(UTC)
        row_values.update(stamp(parts, now))
        row_values[versioned.updated_at_column] = now
        statement = await _insert(connection, versioned, row_values, keyed)
        rows = await fetch(connection, statement, writes=versioned, values=row_values)
        if rows:
            return versioned.record(rows[0])
        current = await find(connection, versioned, parts, scope=scope)
    if current is not None and not condition.holds(current.state):
        # RFC 9110 §13.1.2: If-None-Match "*" (or a matching tag) is false now.
        raise PreconditionFailed(current.etag, current=current)
    raise ResourceExists(versioned.resource, shown)


async def _insert(
    connection: AsyncConnection, versioned: Versioned, row_values: Mapping[str, Any], keyed: bool
) -> ReturningInsert[Any]:
    table, counters = versioned.table, versioned.counters
    key = list(versioned.key)
    name = connection.dialect.name
    if name == "postgresql":
        # One statement: the counter upsert is a CTE whose row lock orders creates
        # by commit (see optimist.sqlalchemy._sequence).
        seq = advance(counters, versioned.sequence_name, name).cte("optimist_seq")
        number = select(seq.c.value).scalar_subquery()
        pg = (
            postgresql.insert(table)
            .add_cte(seq)
            .values({**_python_defaults(table, row_values), versioned.created_seq_column: number})
        )
        if keyed:
            pg = pg.on_conflict_do_nothing(index_elements=key)
        return pg.returning(*table.c)
    number = await connection.scalar(advance(counters, versioned.sequence_name, name))
    lite = sqlite.insert(table).values({**row_values, versioned.created_seq_column: number})
    if keyed:
        lite = lite.on_conflict_do_nothing(index_elements=key)
    return lite.returning(*table.c)


def _python_defaults(table: Table, row_values: Mapping[str, Any]) -> dict[str, Any]:
    """``row_values`` plus the Python-side column defaults it leaves out.

    SQLAlchemy leaves these unset (NULL) in an INSERT that carries a DML CTE, so
    the PostgreSQL create fills them in itself.
    """
    filled = dict(row_values)
    for column in table.c:
        default = column.default
        if column.name in filled or not isinstance(default, ColumnDefault):
            continue
        if isinstance(default, CallableColumnDefault):
            # SQLAlchemy wraps a zero-argument default to take the execution context.
            filled[column.name] = default.arg(None)  # type: ignore[arg-type]
        else:
            filled[column.name] = default.arg
    return filled


def _scope_values(values: Mapping[str, Any], scope: Scope | None) -> dict[str, Any]:
    scope = scope or {}
    for name, value in scope.items():
        if name in values and values[name] != value:
            raise ValueError(f"{name}={values[name]!r} contradicts the scope {name}={value!r}")
    return dict(scope)

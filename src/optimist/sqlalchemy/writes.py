"""Conditional reads and writes of one row, with the precondition inside the statement.

Each write is one statement whose WHERE clause (or ON CONFLICT clause) is the request's
precondition, so a concurrent writer can never change the row between the check and
the write (SPEC §1, "No lost update")::

    update  UPDATE t SET …, etag = :new, updated_at = :now
              WHERE pk = :pk AND <scope> AND <condition> RETURNING *
    delete  DELETE FROM t WHERE pk = :pk AND <scope> AND <condition> RETURNING *
    create  INSERT INTO t (…) … ON CONFLICT (pk) DO NOTHING RETURNING *

On success that is the only round trip: given an engine, the one-statement reads and
writes (all but create) run without BEGIN and COMMIT
(:func:`~optimist.sqlalchemy.engine.autocommit`). Only when no row comes back does a
write read the row once more, to tell the caller *why*: no row in scope →
:class:`ResourceNotFound` (404), a row → :class:`PreconditionFailed` (412) whose
``current_etag`` and ``current`` (a :class:`Record`) describe it. That read decides the
error, never whether to write; it sees the row as it is by then, which is what the
caller needs to retry.

An update may also carry a ``guard``: values the stored row itself must hold, a rule
of the application that depends on the current state (a status a transition may
leave). It is part of the same WHERE clause (``… AND status IN ('submitted')``), so the
rule and the write are atomic too; a row that fails only the guard is a
:class:`GuardFailed`, decided after the precondition (RFC 9110 §13.2.1: preconditions
come before the rules that depend on the state).
A condition that no existing row can meet (``NEVER``, a malformed If-Match) skips the
statement and goes straight to that read.

``scope`` adds equality filters (``{"tenant_id": 7}``) to every statement, so that
another tenant's row is a 404 for every operation, and fills them in on create.

Every function takes a :data:`~optimist.sqlalchemy.engine.Bind`: given an engine it
runs on a connection of its own (create in a transaction of its own, the rest
statement by statement); given a connection already in a transaction it
joins it and leaves the commit to the caller (see
:func:`~optimist.sqlalchemy.engine.transaction`). A value the database refuses (a
unique email, a CHECK) is raised as a typed error (:mod:`optimist.sqlalchemy.integrity`);
on PostgreSQL that also aborts a caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnDefault, ColumnElement, Table, and_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.schema import CallableColumnDefault

from optimist.conditions import ALWAYS, Condition, ResourceState, TagIn
from optimist.errors import GuardFailed, PreconditionFailed, ResourceExists, ResourceNotFound
from optimist.sqlalchemy.compiler import where
from optimist.sqlalchemy.direct import INDIRECT, Indirect, one_row
from optimist.sqlalchemy.engine import Bind, autocommit, transaction
from optimist.sqlalchemy.integrity import translate
from optimist.sqlalchemy.sequence import advance
from optimist.sqlalchemy.statements import read_one, update_one
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = [
    "Guard",
    "Scope",
    "Stamp",
    "check_columns",
    "create",
    "create_stamped",
    "delete",
    "find",
    "get",
    "locate",
    "refusal",
    "update",
    "write_one",
]

#: Equality filters every statement of a request carries, e.g. ``{"tenant_id": 7}``.
Scope: TypeAlias = Mapping[str, Any]

#: Values the stored row must hold for an update to apply, column by column, e.g.
#: ``{"status": ("submitted", "accepted")}`` → ``… AND status IN ('submitted', 'accepted')``.
Guard: TypeAlias = Mapping[str, Collection[Any]]

# Rounds of an update whose guard failed in the statement but holds of the row read
# after it (the row changed in between, under READ COMMITTED); each round is rare.
_GUARD_ROUNDS = 3

#: The version columns of a new row (``etag``, a clock…) from its key and write time.
Stamp: TypeAlias = Callable[[tuple[Any, ...], datetime], Mapping[str, Any]]


async def get(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> Record:
    """The row at ``key`` in one query, or :class:`ResourceNotFound`."""
    record = await find(bind, versioned, key, scope=scope)
    if record is None:
        raise ResourceNotFound(versioned.resource, key)
    return record


async def find(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> Record | None:
    """The row at ``key`` in one query, or None."""
    statement, parameters = read_one(versioned, versioned.key_of(key), scope or {})
    found: dict[str, Any] | Indirect | None = INDIRECT
    if isinstance(bind, AsyncEngine):
        found = await one_row(bind, statement, parameters)
    if found is INDIRECT:
        async with autocommit(bind, read=True) as connection:
            row = (await connection.execute(statement, parameters)).mappings().first()
        found = None if row is None else dict(row)
    return None if found is None else versioned.record(found)


async def update(
    bind: Bind,
    versioned: Versioned,
    key: object,
    values: Mapping[str, Any],
    *,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
    guard: Guard | None = None,
) -> Record:
    """Write ``values`` to the row at ``key`` if ``condition`` and ``guard`` hold.

    ``values`` maps column names to values or SQL expressions (``t.c.n + 1``). Every
    successful update gives the row a new ETag and ``updated_at``, even with no
    ``values``. ``guard`` (see :data:`Guard`) is checked in the same statement. Raises
    :class:`ResourceNotFound`, :class:`PreconditionFailed`, or :class:`GuardFailed`
    when the precondition holds but the guard does not.
    """
    _refuse_clocked(versioned, "update")
    parts = versioned.key_of(key)
    check_columns(versioned, values, allow_key=False)
    guards = _guard_clauses(versioned, guard or {})
    # A single tag to expect goes into the prepared statement; anything else is compiled.
    expected = None if guards else _single_tag(versioned, condition)
    clause = True if expected is not None else where(versioned, condition)
    current: Record | None = None
    if isinstance(bind, AsyncEngine) and not guards and clause is True:
        prepared = update_one(
            versioned, parts, scope or {}, _stamped(versioned, parts, values), expected
        )
        found = INDIRECT if prepared is None else await one_row(bind, *prepared, write=True)
        if found is not INDIRECT:
            if found is not None:
                return versioned.record(found)
            current = await find(bind, versioned, parts, scope=scope)
            raise refusal(versioned, key, current, condition=condition)
    async with autocommit(bind) as connection:
        for _ in range(_GUARD_ROUNDS):
            if clause is not False:
                assignments = _stamped(versioned, parts, values)
                prepared = None
                if not guards and clause is True:
                    prepared = update_one(versioned, parts, scope or {}, assignments, expected)
                if prepared is None:
                    statement = (
                        sql_update(versioned.table)
                        .where(locate(versioned, parts, scope), *guards)
                        .values(assignments)
                        .returning(*versioned.table.c)
                    )
                    if expected is not None:
                        statement = statement.where(versioned.etag == expected)
                    elif clause is not True:
                        statement = statement.where(clause)
                    prepared = (statement, {})
                row = await write_one(connection, prepared[0], versioned, values, prepared[1])
                if row is not None:
                    return versioned.record(row)
            current = await find(connection, versioned, parts, scope=scope)
            # Without a guard, or with a row that now fails it or the precondition,
            # the read says why; a row that now meets both changed after the
            # statement ran, so the statement runs again against it.
            if not guard or not _meets(current, condition, guard):
                break
    raise refusal(versioned, key, current, condition=condition, guard=guard)


async def delete(
    bind: Bind,
    versioned: Versioned,
    key: object,
    *,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Delete the row at ``key`` if ``condition`` holds; returns the row as it was."""
    parts = versioned.key_of(key)
    clause = where(versioned, condition)
    async with autocommit(bind) as connection:
        if clause is not False:
            statement = (
                sql_delete(versioned.table)
                .where(locate(versioned, parts, scope))
                .returning(*versioned.table.c)
            )
            if clause is not True:
                statement = statement.where(clause)
            row = await write_one(connection, statement, versioned, {})
            if row is not None:
                return versioned.record(row)
        current = await find(connection, versioned, parts, scope=scope)
    raise refusal(versioned, key, current)


async def create(
    bind: Bind,
    versioned: Versioned,
    values: Mapping[str, Any],
    *,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """Insert a row of ``values`` (and ``scope``) unless its key is taken; never overwrites.

    ``condition`` is the request's precondition; a create happens only where it holds
    of an absent resource. With ``ABSENT`` (``If-None-Match: *``) a taken key is a
    :class:`PreconditionFailed` carrying the current row (RFC 9110 §13.1.2); without
    a precondition it is a :class:`ResourceExists`. A key the caller leaves out is the
    database's to choose (a default or an identity column). A taken key outside
    ``scope`` is a :class:`ResourceExists` without details: put the scope columns in
    the primary key to make keys per tenant.
    """
    _refuse_clocked(versioned, "create")
    recipe, etag = versioned.recipe, versioned.etag_column
    return await create_stamped(
        bind,
        versioned,
        values,
        lambda parts, now: {etag: recipe(parts, now)},
        condition=condition,
        scope=scope,
    )


async def create_stamped(
    bind: Bind,
    versioned: Versioned,
    values: Mapping[str, Any],
    stamp: Stamp,
    *,
    condition: Condition = ALWAYS,
    scope: Scope | None = None,
) -> Record:
    """:func:`create`, with the version columns computed by ``stamp`` (clocked tables)."""
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
        row = await write_one(connection, statement, versioned, row_values)
        if row is not None:
            return versioned.record(row)
        current = await find(connection, versioned, parts, scope=scope)
    if current is not None and not condition.holds(current.state):
        # RFC 9110 §13.1.2: If-None-Match "*" (or a matching tag) is false now.
        raise PreconditionFailed(current.etag, current=current)
    raise ResourceExists(versioned.resource, shown)


def locate(
    versioned: Versioned, parts: tuple[Any, ...], scope: Scope | None
) -> ColumnElement[bool]:
    """The clause that selects the row with key ``parts`` within ``scope``."""
    clauses = [column == value for column, value in zip(versioned.key, parts, strict=True)]
    for name, value in (scope or {}).items():
        clauses.append(versioned.table.c[name] == value)
    return and_(*clauses)


def refusal(
    versioned: Versioned,
    key: object,
    current: Record | None,
    *,
    condition: Condition = ALWAYS,
    guard: Guard | None = None,
) -> ResourceNotFound | PreconditionFailed | GuardFailed:
    """Why a conditional write wrote nothing, given the row as it is now.

    A row that meets ``condition`` but not ``guard`` is a :class:`GuardFailed`;
    any other row a :class:`PreconditionFailed`.
    """
    if current is None:
        return ResourceNotFound(versioned.resource, key)
    # RFC 9110 §13.2.1: the precondition is decided before a rule about the state.
    if guard and condition.holds(current.state) and not _guard_holds(current, guard):
        return GuardFailed(versioned.resource, key, current)
    return PreconditionFailed(current.etag, current=current)


def _stamped(
    versioned: Versioned, parts: tuple[Any, ...], values: Mapping[str, Any]
) -> dict[str, Any]:
    """``values`` with the row's new version: an ETag and ``updated_at`` of now."""
    now = datetime.now(UTC)
    return {
        **values,
        versioned.etag_column: versioned.recipe(parts, now),
        versioned.updated_at_column: now,
    }


def _guard_clauses(versioned: Versioned, guard: Guard) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``guard`` (``column IN (values)``), refusing unknown columns."""
    clauses: list[ColumnElement[bool]] = []
    for name, allowed in guard.items():
        if name not in versioned.table.c:
            raise ValueError(f"{versioned.table.name!r} has no column {name!r}")
        if isinstance(allowed, str | bytes):
            raise TypeError(f"the guard of {name!r} is a collection of values, not {allowed!r}")
        clauses.append(versioned.table.c[name].in_(list(allowed)))
    return clauses


def _single_tag(versioned: Versioned, condition: Condition) -> str | None:
    """The one stored opaque-tag ``condition`` accepts, when that is all it asks."""
    if not isinstance(condition, TagIn):
        return None
    candidates = condition.candidates(versioned.weak)
    return next(iter(candidates)) if len(candidates) == 1 else None


def _guard_holds(current: Record, guard: Guard) -> bool:
    return all(current[name] in allowed for name, allowed in guard.items())


def _meets(current: Record | None, condition: Condition, guard: Guard) -> bool:
    return current is not None and condition.holds(current.state) and _guard_holds(current, guard)


async def write_one(
    connection: AsyncConnection,
    statement: Any,
    versioned: Versioned,
    values: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    """Execute a one-row write with RETURNING: the row, None, or a typed refusal of a value."""
    try:
        result = await connection.execute(statement, parameters)
    except DBAPIError as error:
        translated = translate(error, versioned, values)
        if translated is None:
            raise
        raise translated from error
    row = result.mappings().first()
    return None if row is None else dict(row)


async def _insert(
    connection: AsyncConnection, versioned: Versioned, row_values: Mapping[str, Any], keyed: bool
) -> ReturningInsert[Any]:
    table, counters = versioned.table, versioned.counters
    key = list(versioned.key)
    name = connection.dialect.name
    if name == "postgresql":
        # One statement: the counter upsert is a CTE whose row lock orders creates
        # by commit (see optimist.sqlalchemy.sequence).
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


def _refuse_clocked(versioned: Versioned, operation: str) -> None:
    if versioned.clock_column is not None:
        raise ValueError(
            f"{versioned.resource} is versioned by vector clocks: "
            f"{operation} it with optimist.sqlalchemy.clocks"
        )


def check_columns(versioned: Versioned, values: Mapping[str, Any], *, allow_key: bool) -> None:
    """Refuse unknown columns, and the columns optimist writes itself, before any statement."""
    managed = {versioned.etag_column, versioned.updated_at_column, versioned.created_seq_column}
    if versioned.clock_column is not None:
        managed.add(versioned.clock_column)
    if not allow_key:
        managed.update(column.name for column in versioned.key)
    for name in values:
        if name not in versioned.table.c:
            raise ValueError(f"{versioned.table.name!r} has no column {name!r}")
        if name in managed:
            raise ValueError(f"{name!r} is written by optimist, not by the caller")

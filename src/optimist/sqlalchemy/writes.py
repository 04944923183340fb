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

An update's statement follows from its condition, guard and values
(:func:`~optimist.sqlalchemy._where.predicate`): with no condition, or one strong tag to
expect, no guard and plain values, it is a statement built once per shape whose tag and
values are bind parameters (:mod:`optimist.sqlalchemy._statements`), which an engine
runs on the driver's own connection; anything else is built for the call. Either runs
through :func:`~optimist.sqlalchemy._fetch.fetch`.

``scope`` adds equality filters (``{"tenant_id": 7}``) to every statement, so that
another tenant's row is a 404 for every operation, and fills them in on create.

Every function takes a :data:`~optimist.sqlalchemy.engine.Bind`: given an engine it
runs on a connection of its own (create in a transaction of its own, the rest
statement by statement); given a connection already in a transaction it
joins it and leaves the commit to the caller (see
:func:`~optimist.sqlalchemy.engine.transaction`). A value the database refuses (a
unique email, a CHECK) is raised as a typed error (:mod:`optimist.sqlalchemy._integrity`);
on PostgreSQL that also aborts a caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Executable
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from optimist.conditions import ALWAYS, Condition, ResourceState
from optimist.errors import ResourceNotFound
from optimist.sqlalchemy._create import create_stamped
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._rows import (
    Scope,
    check_columns,
    find,
    find_state,
    locate,
    meets,
    refusal,
)
from optimist.sqlalchemy._statements import Prepared, update_one
from optimist.sqlalchemy._where import Form, Guard, Predicate, predicate
from optimist.sqlalchemy.engine import Bind
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = ["Guard", "Scope", "create", "delete", "find", "get", "update", "validators"]

# Rounds of an update whose guard failed in the statement but holds of the row read
# after it (the row changed in between, under READ COMMITTED); each round is rare.
_GUARD_ROUNDS: Final = 3


async def get(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> Record:
    """The row at ``key`` in one query, or :class:`ResourceNotFound`."""
    record = await find(bind, versioned, key, scope=scope)
    if record is None:
        raise ResourceNotFound(versioned.resource, key)
    return record


async def validators(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> ResourceState:
    """The ETag and modification time of the row at ``key``, or :class:`ResourceNotFound`.

    What a revalidation needs (RFC 9110 §13.2.2: If-None-Match, If-Modified-Since) and
    nothing else: one query that reads two columns, so that a 304 costs less than the
    GET it saves. A route that then answers 200 reads the row with :func:`get`.
    """
    state = await find_state(bind, versioned, key, scope=scope)
    if not state.exists:
        raise ResourceNotFound(versioned.resource, key)
    return state


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
    test = predicate(versioned, condition, guard)
    current: Record | None = None
    for _ in range(_GUARD_ROUNDS):
        if test.form is not Form.NEVER:
            statement = _update_statement(versioned, parts, values, test, scope)
            rows = await fetch(bind, statement, writes=versioned, values=values)
            if rows:
                return versioned._record(rows[0])
        current = await find(bind, versioned, parts, scope=scope)
        # Without a guard, or with a row that now fails it or the precondition,
        # the read says why; a row that now meets both changed after the
        # statement ran, so the statement runs again against it.
        if not guard or not meets(current, condition, guard):
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
    test = predicate(versioned, condition)
    if test.form is not Form.NEVER:
        statement = (
            sql_delete(versioned.table)
            .where(locate(versioned, parts, scope))
            .returning(*versioned.table.c)
        )
        clause = test.sql(versioned)
        if clause is not None:
            statement = statement.where(clause)
        rows = await fetch(bind, statement, writes=versioned, values={})
        if rows:
            return versioned._record(rows[0])
    current = await find(bind, versioned, parts, scope=scope)
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


def _update_statement(
    versioned: Versioned,
    parts: tuple[Any, ...],
    values: Mapping[str, Any],
    test: Predicate,
    scope: Scope | None,
) -> Prepared | Executable:
    """The UPDATE of ``values`` with a new version: the prepared shape when one fits."""
    now = datetime.now(UTC)
    assignments = {
        **values,
        versioned.etag_column: versioned.recipe(parts, now),
        versioned.updated_at_column: now,
    }
    if test.prepared:
        # None when a value is SQL (``counter + 1``): that statement is built below.
        prepared = update_one(versioned, parts, scope or {}, assignments, test.tag)
        if prepared is not None:
            return prepared
    statement = (
        sql_update(versioned.table)
        .where(locate(versioned, parts, scope))
        .values(assignments)
        .returning(*versioned.table.c)
    )
    clause = test.sql(versioned)
    return statement if clause is None else statement.where(clause)


def _refuse_clocked(versioned: Versioned, operation: str) -> None:
    if versioned.clock_column is not None:
        raise ValueError(
            f"{versioned.resource} is versioned by vector clocks: "
            f"{operation} it with optimist.sqlalchemy.clocks"
        )

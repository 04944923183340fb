"""One row of a versioned table: where it is, how it is read, and why a write refused it.

What every one-row operation (:mod:`~optimist.sqlalchemy.writes`,
:mod:`~optimist.sqlalchemy.clocks`, :mod:`~optimist.sqlalchemy._create`) shares:

* the row is named by its key *within a scope*: equality filters
  (``{"tenant_id": 7}``) every statement of a request carries, so that another
  tenant's row is a 404 for every operation (:func:`locate`);
* it is read in one query, the prepared ``SELECT`` on the driver's connection when it
  can be (:func:`find`); a revalidation reads its validators alone (:func:`find_state`);
* a write sets only the caller's columns: the version columns are optimist's to write,
  and an unknown column is a programming error refused before any statement
  (:func:`check_columns`);
* a conditional write that wrote nothing reads the row once more to tell the caller
  *why*: no row in scope is a :class:`ResourceNotFound` (404), a row a
  :class:`PreconditionFailed` (412) or a :class:`GuardFailed` (:func:`refusal`). That
  read decides the error, never whether to write; it sees the row as it is by then,
  which is what the caller needs to retry. Only a guarded update asks it one more
  thing (:func:`meets`): whether the row it reads meets the condition and the guard
  after all, having changed since the statement ran, so that the statement runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, and_

from optimist.conditions import ALWAYS, Condition, ResourceState
from optimist.errors import GuardFailed, PreconditionFailed, ResourceNotFound
from optimist.sqlalchemy._fetch import fetch
from optimist.sqlalchemy._statements import read_one, read_validators
from optimist.sqlalchemy._where import Guard, guard_holds
from optimist.sqlalchemy.engine import Bind
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = ["Scope", "check_columns", "find", "find_state", "locate", "meets", "refusal"]

#: Equality filters every statement of a request carries, e.g. ``{"tenant_id": 7}``.
Scope: TypeAlias = Mapping[str, Any]


async def find(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> Record | None:
    """The row at ``key`` in one query, or None."""
    rows = await fetch(bind, read_one(versioned, versioned.key_of(key), scope or {}))
    return versioned._record(rows[0]) if rows else None


async def find_state(
    bind: Bind, versioned: Versioned, key: object, *, scope: Scope | None = None
) -> ResourceState:
    """The validators of the row at ``key`` in one query: no other column is read."""
    prepared = read_validators(versioned, versioned.key_of(key), scope or {})
    rows = await fetch(bind, prepared)
    if not rows:
        return ResourceState.missing()
    row = rows[0]
    return ResourceState(
        exists=True,
        etag=versioned.tag(row[versioned.etag_column]),
        last_modified=row[versioned.updated_at_column],
    )


def locate(
    versioned: Versioned, parts: tuple[Any, ...], scope: Scope | None
) -> ColumnElement[bool]:
    """The clause that selects the row with key ``parts`` within ``scope``."""
    clauses = [column == value for column, value in zip(versioned.key, parts, strict=True)]
    for name, value in (scope or {}).items():
        clauses.append(versioned.table.c[name] == value)
    return and_(*clauses)


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
    if guard and condition.holds(current.state) and not guard_holds(current, guard):
        return GuardFailed(versioned.resource, key, current)
    return PreconditionFailed(current.etag, current=current)


def meets(current: Record | None, condition: Condition, guard: Guard) -> bool:
    """Whether the row ``current`` exists and meets both ``condition`` and ``guard``."""
    return current is not None and condition.holds(current.state) and guard_holds(current, guard)

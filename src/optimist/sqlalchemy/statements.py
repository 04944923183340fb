"""One-row statements built once per table and shape, then executed with parameters.

Building a SQLAlchemy statement and its cache key costs more Python than running the
compiled form: about a quarter of the CPU of a conditional PATCH in ``bench/``. The
statements of the common shapes are therefore built once per table and shape, with
bind parameters where the values go; SQLAlchemy memoises the cache key of a statement
object, so every later execution finds its compiled form at once:

* read the row at a key within a scope: ``SELECT … WHERE pk = :k AND scope = :s``;
* write given columns of that row, unconditionally or only while it holds one given
  entity-tag: ``UPDATE … SET c = :v, … WHERE pk = :k [AND etag = :expected]
  RETURNING …`` (a single strong If-Match, the usual precondition).

Any other shape (a SQL expression as a value, a guard, several candidate tags, a date
condition) is built per call by the caller, as before. A table keeps at most
:data:`SHAPES` shapes, so a caller that writes ever new sets of columns cannot grow
the cache without bound; further shapes are simply built each time.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from sqlalchemy import Executable, bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.sql.elements import ClauseElement

from optimist.sqlalchemy.versioned import Versioned

__all__ = ["SHAPES", "Prepared", "read_one", "update_one"]

#: The most statement shapes kept per table.
SHAPES: Final = 256

#: A statement and the parameters to execute it with.
Prepared: TypeAlias = tuple[Executable, dict[str, Any]]

_Shape: TypeAlias = tuple[Any, ...]
_BUILT: weakref.WeakKeyDictionary[Versioned, dict[_Shape, Executable]] = weakref.WeakKeyDictionary()


def _cached(versioned: Versioned, shape: _Shape, build: Callable[[], Executable]) -> Executable:
    built = _BUILT.get(versioned)
    if built is None:
        built = _BUILT[versioned] = {}
    statement = built.get(shape)
    if statement is None:
        statement = build()
        if len(built) < SHAPES:
            built[shape] = statement
    return statement


def _locating(
    versioned: Versioned, parts: Sequence[Any], scope: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The WHERE clauses selecting one row by key and scope, and their parameters."""
    table = versioned.table
    clauses: list[Any] = []
    parameters: dict[str, Any] = {}
    for index, column in enumerate(versioned.key):
        name = f"optimist_key_{index}"
        clauses.append(column == bindparam(name, type_=column.type))
        parameters[name] = parts[index]
    for index, (column_name, value) in enumerate(scope.items()):
        column = table.c[column_name]
        name = f"optimist_scope_{index}"
        clauses.append(column == bindparam(name, type_=column.type))
        parameters[name] = value
    return clauses, parameters


def read_one(versioned: Versioned, parts: Sequence[Any], scope: Mapping[str, Any]) -> Prepared:
    """``SELECT`` the row at key ``parts`` within ``scope``."""
    clauses, parameters = _locating(versioned, parts, scope)
    shape = ("read", tuple(scope))
    return _cached(versioned, shape, lambda: select(versioned.table).where(*clauses)), parameters


def update_one(
    versioned: Versioned,
    parts: Sequence[Any],
    scope: Mapping[str, Any],
    assignments: Mapping[str, Any],
    expected: str | None,
) -> Prepared | None:
    """``UPDATE`` the row at ``parts`` with ``assignments`` if its tag is ``expected``.

    ``expected`` None writes unconditionally. None when an assignment is a SQL
    expression: that statement is the caller's to build.
    """
    if any(isinstance(value, ClauseElement) for value in assignments.values()):
        return None
    table = versioned.table
    clauses, parameters = _locating(versioned, parts, scope)
    names = tuple(assignments)
    values: dict[str, Any] = {}
    for index, (column_name, value) in enumerate(assignments.items()):
        name = f"optimist_value_{index}"
        values[column_name] = bindparam(name, type_=table.c[column_name].type)
        parameters[name] = value
    if expected is not None:
        clauses.append(versioned.etag == bindparam("optimist_expected", type_=versioned.etag.type))
        parameters["optimist_expected"] = expected

    def build() -> Executable:
        return sql_update(table).where(*clauses).values(values).returning(*table.c)

    shape = ("update", tuple(scope), names, expected is not None)
    return _cached(versioned, shape, build), parameters

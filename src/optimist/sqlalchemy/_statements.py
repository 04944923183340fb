"""One-row statements built once per table and shape, then executed with parameters.

Building a SQLAlchemy statement and its cache key costs more Python than running the
compiled form: about a quarter of the CPU of a conditional PATCH in ``bench/``. The
statements of the common shapes are therefore built once per table and shape, with
bind parameters where the values go; SQLAlchemy memoises the cache key of a statement
object, so every later execution finds its compiled form at once:

* read the row at a key within a scope: ``SELECT … WHERE pk = :k AND scope = :s``;
* read only its validators, for a revalidation: ``SELECT etag, updated_at WHERE …``;
* write given columns of that row, unconditionally or only while it holds one given
  entity-tag: ``UPDATE … SET c = :v, … WHERE pk = :k [AND etag = :expected]
  RETURNING …`` (a single strong If-Match, the usual precondition);
* one page of a traversal (:mod:`optimist.sqlalchemy.pages`) without extra filters:
  ``SELECT … WHERE created_seq <= :watermark [AND created_seq > :after] [AND scope = :s]
  ORDER BY created_seq LIMIT :n``, a first page reading the watermark in a subquery.

Any other shape (a SQL expression as a value, a guard, several candidate tags, a date
condition, a page's extra filters) is built per call by its caller. A table keeps at
most :data:`SHAPES` shapes, so a caller that writes ever new sets of columns cannot grow
the cache without bound; further shapes are simply built each time.

What these functions return is a :class:`Prepared`, and only a :class:`Prepared` may
run on the driver's own connection (:func:`optimist.sqlalchemy._fetch.fetch`): the fast
path compiles a statement once per engine and keeps the plan beside the statement
object, which pays off for these statements and would only fill the plan cache with
one-off ones.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeAlias

from sqlalchemy import BigInteger, Executable, Integer, String, bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.sql.elements import ClauseElement

from optimist.sqlalchemy.versioned import Versioned

__all__ = ["MARK", "SHAPES", "Prepared", "page_of", "read_one", "read_validators", "update_one"]

#: The most statement shapes kept per table.
SHAPES: Final = 256

#: The label of the watermark column a first page's rows carry.
MARK: Final = "optimist_watermark"


class Prepared(NamedTuple):
    """A statement of one of this module's shapes and the parameters of one execution."""

    statement: Executable
    parameters: dict[str, Any]


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


def _locating(versioned: Versioned, scope: Sequence[str]) -> list[Any]:
    """The WHERE clauses selecting one row by key and scope, as bind parameters."""
    table = versioned.table
    clauses = [
        column == bindparam(f"optimist_key_{index}", type_=column.type)
        for index, column in enumerate(versioned.key)
    ]
    for index, name in enumerate(scope):
        column = table.c[name]
        clauses.append(column == bindparam(f"optimist_scope_{index}", type_=column.type))
    return clauses


def _located(parts: Sequence[Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`_locating`'s clauses."""
    parameters = {f"optimist_key_{index}": part for index, part in enumerate(parts)}
    for index, value in enumerate(scope.values()):
        parameters[f"optimist_scope_{index}"] = value
    return parameters


def read_one(versioned: Versioned, parts: Sequence[Any], scope: Mapping[str, Any]) -> Prepared:
    """``SELECT`` the row at key ``parts`` within ``scope``."""
    names = tuple(scope)

    def build() -> Executable:
        return select(versioned.table).where(*_locating(versioned, names))

    return Prepared(_cached(versioned, ("read", names), build), _located(parts, scope))


def read_validators(
    versioned: Versioned, parts: Sequence[Any], scope: Mapping[str, Any]
) -> Prepared:
    """``SELECT`` only the entity-tag and modification time of the row at ``parts``."""
    names = tuple(scope)

    def build() -> Executable:
        where = _locating(versioned, names)
        return select(versioned.etag, versioned.updated_at).where(*where)

    return Prepared(_cached(versioned, ("validators", names), build), _located(parts, scope))


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
    names, columns = tuple(scope), tuple(assignments)
    parameters = _located(parts, scope)
    for index, value in enumerate(assignments.values()):
        parameters[f"optimist_value_{index}"] = value
    if expected is not None:
        parameters["optimist_expected"] = expected

    def build() -> Executable:
        table = versioned.table
        clauses = _locating(versioned, names)
        if expected is not None:
            etag = versioned.etag
            clauses.append(etag == bindparam("optimist_expected", type_=etag.type))
        values = {
            column: bindparam(f"optimist_value_{index}", type_=table.c[column].type)
            for index, column in enumerate(columns)
        }
        return sql_update(table).where(*clauses).values(values).returning(*table.c)

    shape = ("update", names, columns, expected is not None)
    return Prepared(_cached(versioned, shape, build), parameters)


def page_of(
    versioned: Versioned,
    scope: Mapping[str, Any],
    *,
    limit: int,
    after: int | None,
    watermark: int | None,
    descending: bool,
) -> Prepared:
    """``SELECT`` up to ``limit`` rows after position ``after`` within ``watermark``.

    Without a ``watermark`` (a first page) each row carries the current high-water
    mark as :data:`MARK`.
    """
    names = tuple(scope)
    first = watermark is None
    parameters = _located((), scope)
    parameters["optimist_limit"] = limit
    if first:
        parameters["optimist_sequence"] = versioned.sequence_name
    else:
        parameters["optimist_watermark"] = watermark
    if after is not None:
        parameters["optimist_after"] = after

    def build() -> Executable:
        table, order, counters = versioned.table, versioned.created_seq, versioned.counters
        columns: list[Any] = [table]
        bound: Any
        if first:
            bound = (
                select(counters.c.value)
                .where(counters.c.name == bindparam("optimist_sequence", type_=String()))
                .scalar_subquery()
            )
            columns.append(bound.label(MARK))
        else:
            bound = bindparam("optimist_watermark", type_=BigInteger())
        statement = select(*columns).where(order <= bound)
        for index, name in enumerate(names):
            column = table.c[name]
            statement = statement.where(
                column == bindparam(f"optimist_scope_{index}", type_=column.type)
            )
        if after is not None:
            position = bindparam("optimist_after", type_=BigInteger())
            statement = statement.where(order < position if descending else order > position)
        return statement.order_by(order.desc() if descending else order.asc()).limit(
            bindparam("optimist_limit", type_=Integer())
        )

    shape = ("page", names, first, after is not None, descending)
    return Prepared(_cached(versioned, shape, build), parameters)

"""Translate a write's :class:`~optimist.conditions.Condition` (and guard) into SQL.

The clause is added to the ``UPDATE`` or ``DELETE`` that targets one row by its key, so
the database checks the precondition and writes in one statement: a row that no longer
matches is simply not written, and no other writer can slip in between. The clause is
about a row that the key *has* selected, which fixes the meaning of the existence
conditions: ``EXISTS`` is true of it, ``ABSENT`` false (creates compile ``ABSENT`` into
``INSERT … ON CONFLICT DO NOTHING`` instead, see :mod:`optimist.sqlalchemy._create`).

:func:`where` folds the result: ``True`` when the condition holds of any existing row
(no clause needed) and ``False`` when it holds of none, such as a malformed If-Match
(``NEVER``) or a strong If-Match against a table of weak tags. For every stored row and
every condition the clause is true exactly when :meth:`Condition.holds` is; the tests
hold the two to that. It is public (``optimist.sqlalchemy.where``) for applications
that put a request's precondition into statements of their own.

A write needs one more distinction to pick its statement, and :func:`predicate` makes
it: a condition that asks only that the stored opaque-tag be one given value (a single
strong If-Match, the usual precondition) is a :attr:`Form.TAG`, a bind parameter of a
statement built once (:mod:`optimist.sqlalchemy._statements`), rather than a clause
built for the call. A *guard* (values the stored row must hold, ``{"status":
("submitted",)}``) joins the same WHERE clause as ``status IN (…)``; :func:`guard_holds`
is its meaning in Python, which the read after a refused write uses to say whether the
guard or the precondition refused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeAlias

from sqlalchemy import ColumnElement, and_, false, not_

from optimist.conditions import (
    Absent,
    AllOf,
    Always,
    Condition,
    Exists,
    Never,
    Not,
    TagIn,
    UnmodifiedSince,
)
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = [
    "Clause",
    "Form",
    "Guard",
    "Predicate",
    "guard_holds",
    "predicate",
    "where",
]

#: A compiled condition: a SQL boolean, or a constant when no SQL is needed.
Clause: TypeAlias = ColumnElement[bool] | bool

#: Values the stored row must hold for an update to apply, column by column, e.g.
#: ``{"status": ("submitted", "accepted")}`` → ``… AND status IN ('submitted', 'accepted')``.
Guard: TypeAlias = Mapping[str, Collection[Any]]


class Form(Enum):
    """How a write's statement carries its predicate."""

    #: Any row at the key qualifies: the statement adds nothing.
    ALWAYS = "always"
    #: No row can qualify: the write skips its statement and only reads why.
    NEVER = "never"
    #: The stored opaque-tag must be :attr:`Predicate.tag`: a bind parameter.
    TAG = "tag"
    #: :attr:`Predicate.clause`, added to a statement built for the call.
    CLAUSE = "clause"


@dataclass(frozen=True, slots=True)
class Predicate:
    """A write's condition and guard in the form that picks the write's statement."""

    form: Form
    tag: str | None = None
    clause: ColumnElement[bool] | None = None

    @property
    def prepared(self) -> bool:
        """Whether a statement built once per shape can carry it."""
        return self.form is Form.ALWAYS or self.form is Form.TAG

    def sql(self, versioned: Versioned) -> ColumnElement[bool] | None:
        """The clause a statement built for the call adds (None: nothing to add)."""
        if self.form is Form.TAG:
            return versioned.etag == self.tag
        if self.form is Form.NEVER:
            return false()
        return self.clause


_ALWAYS: Final = Predicate(Form.ALWAYS)
_NEVER: Final = Predicate(Form.NEVER)


def where(versioned: Versioned, condition: Condition) -> Clause:
    """The clause over ``versioned``'s columns that is true where ``condition`` holds."""
    match condition:
        case Always():
            return True
        case Never():
            # RFC 9110 §13.1.1: a malformed If-Match matches no representation.
            return False
        case Exists():
            # RFC 9110 §13.1.1: "*" is true if a current representation exists.
            return True
        case Absent():
            # RFC 9110 §13.1.2: "*" is false if a current representation exists.
            return False
        case TagIn():
            # RFC 9110 §8.8.3.2: the comparison function decides which stored
            # opaque-tags match; a strong comparison never matches a weak tag.
            candidates = condition.candidates(versioned.weak)
            if not candidates:
                return False
            return versioned.etag.in_(sorted(candidates))
        case UnmodifiedSince():
            # RFC 9110 §13.1.4: one-second resolution, compared as an exclusive bound
            # on the full-precision column (the column is never NULL, so the field is
            # never ignored here). No bound: the date is past every storable time.
            before = condition.before
            return True if before is None else versioned.updated_at < before
        case Not(condition=inner):
            compiled = where(versioned, inner)
            return not compiled if isinstance(compiled, bool) else not_(compiled)
        case AllOf(conditions=parts):
            clauses: list[ColumnElement[Any]] = []
            for part in parts:
                compiled = where(versioned, part)
                if compiled is False:
                    return False
                if compiled is not True:
                    clauses.append(compiled)
            return and_(*clauses) if clauses else True
    raise TypeError(f"cannot compile condition {condition!r}")


def predicate(versioned: Versioned, condition: Condition, guard: Guard | None = None) -> Predicate:
    """``condition`` and ``guard`` as one :class:`Predicate` over ``versioned``'s row.

    Refuses a guard on an unknown column, or one whose values are a string rather
    than a collection, before any statement runs.
    """
    guards = _guard_clauses(versioned, guard or {})
    if not guards and isinstance(condition, TagIn):
        candidates = condition.candidates(versioned.weak)
        if len(candidates) == 1:
            return Predicate(Form.TAG, tag=next(iter(candidates)))
    compiled = where(versioned, condition)
    if compiled is False:
        return _NEVER
    clauses = guards if compiled is True else [compiled, *guards]
    if not clauses:
        return _ALWAYS
    return Predicate(Form.CLAUSE, clause=clauses[0] if len(clauses) == 1 else and_(*clauses))


def guard_holds(current: Record, guard: Guard) -> bool:
    """Whether the row ``current`` meets ``guard``: what its SQL clause says, in Python."""
    return all(current[name] in allowed for name, allowed in guard.items())


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

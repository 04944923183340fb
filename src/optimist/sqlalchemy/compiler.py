"""Compile a write :class:`~optimist.conditions.Condition` into a SQL WHERE clause.

The clause is added to the ``UPDATE`` or ``DELETE`` that targets one row by its key, so
the database checks the precondition and writes in one statement: a row that no longer
matches is simply not written, and no other writer can slip in between. The clause is
about a row that the key *has* selected, which fixes the meaning of the existence
conditions: ``EXISTS`` is true of it, ``ABSENT`` false (creates compile ``ABSENT`` into
``INSERT … ON CONFLICT DO NOTHING`` instead, see :mod:`optimist.sqlalchemy.writes`).

The result is folded: ``True`` when the condition holds of any existing row (no clause
needed) and ``False`` when it holds of none, such as a malformed If-Match (``NEVER``)
or a strong If-Match against a table of weak tags; a write then skips its statement
and only reads, to say why it refused. For every stored row and every condition the
clause is true exactly when :meth:`Condition.holds` is; the tests hold the two to that.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, and_, not_

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
from optimist.sqlalchemy.versioned import Versioned

__all__ = ["Clause", "where"]

#: A compiled condition: a SQL boolean, or a constant when no SQL is needed.
Clause: TypeAlias = ColumnElement[bool] | bool


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
            # never ignored here).
            return versioned.updated_at < condition.before
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

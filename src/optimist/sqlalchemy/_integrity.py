"""Turn a database's refusal of a value into a typed error, so it never becomes a 5xx.

A write that breaks a constraint the request could not know about (a unique email, a
CHECK on a percentage, a foreign key) fails inside the database. :func:`translate`
maps the driver's error to the error of :mod:`optimist.errors` a client can act on:

===========================================  ===========================================
database error                               optimist error
===========================================  ===========================================
unique violation (23505, ``UNIQUE …``)       :class:`ResourceExists` (409), ``key`` the
                                             colliding columns and values
not-null, check, foreign key (23502, 23514,  :class:`InvalidInput` (400), ``field`` the
23503; ``NOT NULL …``, ``CHECK …``,          column or constraint
``FOREIGN KEY …``)
data error (22xxx: too long, out of range)   :class:`InvalidInput` (400)
===========================================  ===========================================

It reads the SQLSTATE and the server's message (PostgreSQL through asyncpg) or the
message of the ``sqlite3`` error; nothing here imports a driver. Errors it does not
recognise are returned as ``None`` and the caller re-raises the original.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from optimist.errors import InvalidInput, OptimistError, ResourceExists
from optimist.sqlalchemy.versioned import Versioned

__all__ = ["translate"]

_PG_KEY: Final = re.compile(r"Key \((?P<columns>[^)]*)\)=")
_PG_COLUMN: Final = re.compile(r'column "(?P<name>[^"]+)"')
_PG_CONSTRAINT: Final = re.compile(r'constraint "(?P<name>[^"]+)"')
_SQLITE_FAILED: Final = re.compile(
    r"(?P<kind>UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?::\s*(?P<what>.*))?"
)


def translate(
    error: DBAPIError, versioned: Versioned, values: Mapping[str, Any]
) -> OptimistError | None:
    """The optimist error ``error`` stands for, given the ``values`` that were written."""
    orig = error.orig
    message = str(orig.args[0]) if orig is not None and orig.args else str(error)
    # asyncpg errors carry their SQLSTATE, whatever DB-API class they were mapped to
    # (a string too long for its column arrives as a bare DBAPIError).
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        detail = getattr(orig, "detail", None) or ""
        return _postgres(sqlstate, message, detail, versioned, values)
    if not isinstance(error, IntegrityError | DataError):
        return None
    return _sqlite(isinstance(error, DataError), message, versioned, values)


def _postgres(
    sqlstate: str, message: str, detail: str, versioned: Versioned, values: Mapping[str, Any]
) -> OptimistError | None:
    if sqlstate == "23505":
        key = _PG_KEY.search(detail)
        columns = [c.strip() for c in key["columns"].split(",")] if key else []
        return _exists(versioned, columns, values)
    if sqlstate == "23502":
        column = _PG_COLUMN.search(message)
        return _invalid(column["name"] if column else versioned.resource, values, "is required")
    if sqlstate in ("23514", "23503"):
        constraint = _PG_CONSTRAINT.search(message)
        reason = "is not an existing reference" if sqlstate == "23503" else "is out of range"
        name = constraint["name"] if constraint else versioned.resource
        return _invalid(name, values, reason, detail or message)
    if sqlstate.startswith("22"):
        return InvalidInput(versioned.resource, "", message.splitlines()[0])
    return None


def _sqlite(
    data: bool, message: str, versioned: Versioned, values: Mapping[str, Any]
) -> OptimistError | None:
    failed = _SQLITE_FAILED.search(message)
    if failed is None:
        return InvalidInput(versioned.resource, "", message) if data else None
    what = (failed["what"] or "").strip()
    kind = failed["kind"]
    if kind == "UNIQUE":
        columns = [part.strip().rsplit(".", 1)[-1] for part in what.split(",") if part.strip()]
        return _exists(versioned, columns, values)
    if kind == "NOT NULL":
        return _invalid(what.rsplit(".", 1)[-1], values, "is required")
    if kind == "CHECK":
        return _invalid(what or versioned.resource, values, "is out of range")
    return _invalid(versioned.resource, values, "is not an existing reference")


def _exists(versioned: Versioned, columns: list[str], values: Mapping[str, Any]) -> ResourceExists:
    if not columns:
        columns = [column.name for column in versioned.key]
    return ResourceExists(versioned.resource, {name: values.get(name) for name in columns})


def _invalid(
    field: str, values: Mapping[str, Any], reason: str, detail: str | None = None
) -> InvalidInput:
    value = values.get(field)
    shown = "" if value is None else str(value)
    return InvalidInput(field, shown, f"{reason} ({detail})" if detail else reason)

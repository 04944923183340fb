"""Run one statement where it costs least, and return its rows as plain dictionaries.

Every statement of this package that reads or writes rows of a versioned table runs
through :func:`fetch`, which hides two ways of running it:

* a :class:`~optimist.sqlalchemy._statements.Prepared` statement given an engine runs
  on the driver's own connection (:mod:`optimist.sqlalchemy._direct`), committing as it
  completes: a fraction of the cost of SQLAlchemy's execution layer. Given a connection
  in a transaction on PostgreSQL, it runs on the driver's connection under that
  transaction (:func:`~optimist.sqlalchemy._direct.transaction_rows`): an idempotent
  request's write, for one;
* anything else, and a prepared statement the fast path declines (an engine that logs
  or observes its statements, a value the database refuses), runs through SQLAlchemy:
  given an engine, on a connection of its own with each statement committed as it
  completes (:func:`~optimist.sqlalchemy.engine.autocommit`); given a connection, in
  the caller's transaction, or one of its own on that connection that ends with the
  statement.

Either way the caller gets the same rows, typed by the columns' result processors. A
statement that ``writes`` a versioned table may be refused by the database for a value
(a unique email, a CHECK): that refusal is raised as the typed error of
:mod:`optimist.sqlalchemy._integrity`, so it never becomes a 5xx. Given an engine, a
statement the fast path ran changed nothing, and running it again through SQLAlchemy
yields the refusal as SQLAlchemy's typed error to translate. In a caller's transaction
on PostgreSQL the refusal aborts the transaction, so nothing runs again: the fast path
raises it around the driver's error, which carries the same SQLSTATE and text, and it
is translated the same way. A SQLite write on the fast path first waits for this
process's other writers on the engine (see :func:`~optimist.sqlalchemy._direct.all_rows`).

A database that cannot serve the statement raises
:class:`~optimist.errors.ServiceUnavailable` (:mod:`optimist.sqlalchemy._availability`),
on either path. Given an engine, a statement whose pooled connection turns out dead
runs once more on a fresh connection where that is safe: a read always, a write only
when it never left this process. A write the server may have received is never sent
twice: it may have committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optimist.sqlalchemy._availability import Translation
from optimist.sqlalchemy._direct import INDIRECT, Indirect, all_rows, transaction_mappings
from optimist.sqlalchemy._integrity import translate
from optimist.sqlalchemy._statements import Prepared
from optimist.sqlalchemy.engine import Bind, committing
from optimist.sqlalchemy.versioned import Versioned

__all__ = ["fetch"]


async def fetch(
    bind: Bind,
    statement: Prepared | Executable,
    parameters: Mapping[str, Any] | None = None,
    *,
    writes: Versioned | None = None,
    values: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rows ``statement`` returns, run on ``bind`` as this module's docstring says.

    ``parameters`` go with a statement built for the call (a :class:`Prepared` carries
    its own). ``writes`` names the table a write changes, and ``values`` what it writes
    there, so that a value the database refuses is raised as a typed error about it.
    """
    if isinstance(statement, Prepared):
        statement, parameters = statement
        if isinstance(bind, AsyncEngine):
            rows = await all_rows(bind, statement, parameters, write=writes is not None)
        elif bind.in_transaction():
            rows = await _in_transaction(bind, statement, parameters, writes, values)
        else:
            rows = INDIRECT
        if rows is not INDIRECT:
            return rows
    with Translation(bind) as translation:
        while True:
            try:
                async with committing(bind, translation, read=writes is None) as connection:
                    try:
                        result = await connection.execute(statement, parameters)
                    except DBAPIError as error:
                        translated = (
                            None if writes is None else translate(error, writes, values or {})
                        )
                        if translated is None:
                            raise
                        raise translated from error
                    return [dict(row) for row in result.mappings()]
            except DBAPIError as error:
                if not translation.resend(error, write=writes is not None):
                    raise


async def _in_transaction(
    connection: AsyncConnection,
    statement: Executable,
    parameters: Mapping[str, Any],
    writes: Versioned | None,
    values: Mapping[str, Any] | None,
) -> list[dict[str, Any]] | Literal[Indirect.INDIRECT]:
    """:func:`~optimist.sqlalchemy._direct.transaction_mappings`, its refusals translated."""
    with Translation(connection):
        try:
            return await transaction_mappings(connection, statement, parameters)
        except DBAPIError as error:
            translated = None if writes is None else translate(error, writes, values or {})
            if translated is None:
                raise
            raise translated from error

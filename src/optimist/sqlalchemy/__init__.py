"""SQLAlchemy 2 (Core, asyncio) integration: preconditions enforced inside the write.

* :func:`create_engine`: an async engine for SQLite (WAL, busy timeout, BEGIN
  IMMEDIATE, a new database file created ``0600``) or PostgreSQL (asyncpg, a resilient
  pool; behind PgBouncer in transaction pooling mode, ``?pooler=transaction``);
* :func:`versioned_table` / :class:`Versioned`: a table whose rows carry an ETag, a
  modification time and a place in the write sequence;
* :func:`get`, :func:`update`, :func:`delete`, :func:`create`: one-row reads and
  writes whose precondition (an :class:`optimist.conditions.Condition`) is part of the
  statement, and an update's :data:`Guard` (a rule about the row's own values) too;
  :func:`validators`: the ETag and modification time alone, for a cheap 304;
* :func:`create_clocked`, :func:`update_clocked`, :func:`delete_clocked`: writes of
  vector-clock resources, the stored clock being the compare-and-set key; preconditions
  the clock cannot decide (If-None-Match, If-Unmodified-Since) are evaluated on the
  held row, in the write's transaction;
* :func:`page`: keyset pages with a snapshot watermark;
* :func:`list_page` / :class:`Listing`: a listing endpoint's step, from the request's
  signed cursor to the page and the next cursor;
* :func:`where` / :data:`Clause`: a condition as a SQL clause, for statements of the
  application's own;
* :func:`idempotent` / :class:`Attempt`: an Idempotency-Key's record
  (:func:`idempotency_records`, the table ``optimist_idempotency``) claimed and kept in
  the transaction of the write it answers for: a resend replays the kept response byte
  for byte, a reuse is a 422, a duplicate in flight waits (PostgreSQL, bounded: then
  409) and replays; :func:`purge` deletes expired records, a bounded number per call;
* :func:`unavailable`: a failure of a statement of the application's own as the
  :class:`~optimist.errors.ServiceUnavailable` (503) it stands for, if it is one.

A database that cannot serve an operation (it cannot be reached, it ended the
session, the pool has no free connection, a lock or busy timeout ran out) makes every
operation of this package raise :class:`~optimist.errors.ServiceUnavailable` with the
engine's ``retry_after`` (``create_engine(retry_after=...)``, :data:`DEFAULT_RETRY_AFTER`
seconds by default), never a driver's error; each outage is logged once, on the
``optimist.sqlalchemy`` logger. A read whose pooled connection turns out dead runs
again on a fresh one, and so does a write that never left the process; a write the
server may have received is never sent twice.

The public modules are :mod:`~optimist.sqlalchemy.engine`,
:mod:`~optimist.sqlalchemy.versioned`, :mod:`~optimist.sqlalchemy.writes`,
:mod:`~optimist.sqlalchemy.clocks`, :mod:`~optimist.sqlalchemy.pages`,
:mod:`~optimist.sqlalchemy.listing` and :mod:`~optimist.sqlalchemy.idempotency`; the
modules whose names start with an underscore are this package's own and may change
without notice.

Given an engine on asyncpg or aiosqlite, the one-row reads, the pages without extra
filters and the updates whose only precondition is one strong If-Match run their
prepared statement on the driver's own connection (:mod:`optimist.sqlalchemy._direct`),
unless the engine logs or observes its statements.
"""

from optimist.sqlalchemy._availability import DEFAULT_RETRY_AFTER, unavailable
from optimist.sqlalchemy._sequence import SEQUENCES_TABLE, sequences
from optimist.sqlalchemy._where import Clause, where
from optimist.sqlalchemy.clocks import clock_of, create_clocked, delete_clocked, update_clocked
from optimist.sqlalchemy.engine import (
    SQLITE_BEGIN,
    SQLITE_FILE_MODE,
    Bind,
    autocommit,
    create_engine,
    reading,
    transaction,
)
from optimist.sqlalchemy.idempotency import (
    DEFAULT_WAIT,
    IDEMPOTENCY_TABLE,
    MAX_SCOPE_LENGTH,
    PURGE_LIMIT,
    Attempt,
    KeyScope,
    idempotency_records,
    idempotent,
    purge,
)
from optimist.sqlalchemy.listing import Listing, list_page
from optimist.sqlalchemy.pages import Page, page
from optimist.sqlalchemy.versioned import (
    EtagRecipe,
    Record,
    UTCDateTime,
    Versioned,
    sha256_tag,
    versioned_table,
)
from optimist.sqlalchemy.writes import (
    Guard,
    Scope,
    create,
    delete,
    find,
    get,
    update,
    validators,
)

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "DEFAULT_WAIT",
    "IDEMPOTENCY_TABLE",
    "MAX_SCOPE_LENGTH",
    "PURGE_LIMIT",
    "SEQUENCES_TABLE",
    "SQLITE_BEGIN",
    "SQLITE_FILE_MODE",
    "Attempt",
    "Bind",
    "Clause",
    "EtagRecipe",
    "Guard",
    "KeyScope",
    "Listing",
    "Page",
    "Record",
    "Scope",
    "UTCDateTime",
    "Versioned",
    "autocommit",
    "clock_of",
    "create",
    "create_clocked",
    "create_engine",
    "delete",
    "delete_clocked",
    "find",
    "get",
    "idempotency_records",
    "idempotent",
    "list_page",
    "page",
    "purge",
    "reading",
    "sequences",
    "sha256_tag",
    "transaction",
    "unavailable",
    "update",
    "update_clocked",
    "validators",
    "versioned_table",
    "where",
]

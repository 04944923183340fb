"""Claiming an idempotency key in the transaction of the write it answers for.

:func:`claim` is the first thing :func:`optimist.sqlalchemy.idempotency.idempotent`
does in its transaction. It inserts the record without a response, the claim::

    INSERT INTO optimist_idempotency (scope, key, fingerprint, response, created_at,
                                      expires_at)
      VALUES (…, NULL, :now, :now + ttl)
      ON CONFLICT (scope, key) DO NOTHING RETURNING key

A row back: the key was free, the request proceeds, and the claim commits (with its
response) or rolls back together with the request's writes. No row: the key has a
record, which one read fetches for :func:`~optimist.idempotency.decide`.

Two requests with one key at once:

* PostgreSQL makes an insert that meets another transaction's uncommitted row of the
  same unique key wait until that transaction ends, then decides again: committed,
  ``DO NOTHING`` (the read then sees the record and replays it); rolled back, the row
  goes in. The wait is bounded by the transaction's ``lock_timeout``, set to ``wait``
  for the claim and restored after it, so that the request's own writes keep the
  session's; a wait that runs out (SQLSTATE 55P03) is :class:`Conflict` (409);
* SQLite runs one write transaction at a time (``BEGIN IMMEDIATE``,
  :mod:`optimist.sqlalchemy.engine`): the second claim begins once the first request's
  transaction has ended, and finds its record, or none.

A record past ``expires_at`` is taken over by an ``UPDATE … WHERE expires_at <= :now``
that starts it afresh. On PostgreSQL a duplicate meanwhile waits for the taker's
transaction (its insert meets the row being updated, or its own ``UPDATE`` the row's
lock, after which READ COMMITTED re-checks the condition on the new version and finds
it fresh), so one request proceeds and the others read what it left. A record that
vanishes between the insert and the read (purged, or a claim given up) is claimed
again; after :data:`ROUNDS` such rounds the request is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from optimist.idempotency import (
    Completed,
    Conflict,
    Decision,
    Fingerprint,
    InFlight,
    Proceed,
    Record,
    StoredResponse,
    decide,
)

__all__ = ["ABORTED", "ROUNDS", "Target", "claim", "sqlstate"]

#: Rounds of a claim whose record vanished or was taken over between two statements.
ROUNDS: Final = 3
#: PostgreSQL's in_failed_sql_transaction: an earlier statement failed, nothing commits.
ABORTED: Final = "25P02"
_LOCK_TIMEOUT: Final = "55P03"


@dataclass(frozen=True, slots=True)
class Target:
    """The record of ``key`` in ``scope`` (its stored text) in ``table``."""

    table: Table
    scope: str
    key: str

    def where(self) -> ColumnElement[bool]:
        """The clause that selects the record."""
        return and_(self.table.c.scope == self.scope, self.table.c.key == self.key)


async def claim(
    connection: AsyncConnection,
    target: Target,
    fingerprint: Fingerprint,
    ttl: timedelta,
    wait: float,
) -> Decision:
    """Claim ``target`` for a request with ``fingerprint``, waiting up to ``wait`` seconds
    (PostgreSQL) for a request in flight with the key: :class:`Proceed` with the claim
    inserted, or the decision on the record that is there.
    """
    previous = None
    if connection.dialect.name == "postgresql":
        previous = await _set_lock_timeout(connection, f"{max(1, round(wait * 1000))}ms")
    try:
        decision = await _rounds(connection, target, fingerprint, ttl)
    except DBAPIError as error:
        if sqlstate(error) == _LOCK_TIMEOUT:
            # The draft's "Error Handling": a request with the key is still being
            # processed. The transaction is aborted: it is rolled back, claim and all.
            return Conflict()
        raise
    if previous is not None:
        await _set_lock_timeout(connection, previous)
    return decision


async def _rounds(
    connection: AsyncConnection, target: Target, fingerprint: Fingerprint, ttl: timedelta
) -> Decision:
    table = target.table
    now = datetime.now(UTC)
    fresh: dict[str, Any] = {
        "fingerprint": fingerprint.to_text(),
        "response": None,
        "created_at": now,
        "expires_at": now + ttl,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = (
        dialect.insert(table)
        .values(scope=target.scope, key=target.key, **fresh)
        .on_conflict_do_nothing(index_elements=[table.c.scope, table.c.key])
        .returning(table.c.key)
    )
    read = select(table.c.fingerprint, table.c.response, table.c.expires_at).where(target.where())
    take_over = (
        sql_update(table)
        .where(target.where(), table.c.expires_at <= now)
        .values(**fresh)
        .returning(table.c.key)
    )
    for _ in range(ROUNDS):
        # The draft's "Error Handling" allows waiting for a request in flight instead of
        # a 409: on PostgreSQL this insert waits while another transaction holds the key.
        if (await connection.execute(insert)).first() is not None:
            return Proceed()
        row = (await connection.execute(read)).first()
        if row is None:
            continue  # purged, or a claim given up, since the insert: claim again
        if row.expires_at <= now:
            # The draft's "Idempotency Key Validity and Expiry": past its expiry the key
            # is unknown again, so the record counts as absent and the key starts afresh.
            if (await connection.execute(take_over)).first() is not None:
                return Proceed()
            continue  # another request took it over first: read what it left
        return _decide(row.fingerprint, row.response, fingerprint)
    return Conflict()


def _decide(
    stored_fingerprint: str, stored_response: bytes | None, fingerprint: Fingerprint
) -> Decision:
    stored = Fingerprint.from_text(stored_fingerprint)
    record: Record = (
        InFlight(stored)
        if stored_response is None
        else Completed(stored, StoredResponse.from_bytes(stored_response))
    )
    return decide(record, fingerprint)


async def _set_lock_timeout(connection: AsyncConnection, value: str) -> str:
    """Set the transaction's ``lock_timeout`` to ``value``; the value it had."""
    # A select list is evaluated left to right: the old value is read before the new is set.
    statement = select(
        func.current_setting("lock_timeout"), func.set_config("lock_timeout", value, True)
    )
    row = (await connection.execute(statement)).one()
    return str(row[0])


def sqlstate(error: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE of ``error`` (asyncpg's), if any."""
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None

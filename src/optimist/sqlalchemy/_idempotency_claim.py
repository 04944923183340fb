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
  session's; a wait that runs out (SQLSTATE 55P03) is :class:`Conflict` (409). Setting,
  inserting and restoring are one statement, one round trip (:attr:`Statements.claim_pg`): a lock
  wait reads ``lock_timeout`` as it begins, so the value set in the first common table
  expression bounds the insert's wait, and a select list is evaluated left to right, so
  the restore follows the insert;
* SQLite runs one write transaction at a time (``BEGIN IMMEDIATE``,
  :mod:`optimist.sqlalchemy.engine`): the second claim begins once the first request's
  transaction has ended, and finds its record, or none. Within one process the second
  waits on the engine's writer lock (:func:`optimist.sqlalchemy._direct.writer`), taken
  by :func:`~optimist.sqlalchemy.idempotency.idempotent`, rather than in SQLite's busy
  handler.

A record past ``expires_at`` is taken over by an ``UPDATE … WHERE expires_at <= :now``
that starts it afresh. On PostgreSQL a duplicate meanwhile waits for the taker's
transaction (its insert meets the row being updated, or its own ``UPDATE`` the row's
lock, after which READ COMMITTED re-checks the condition on the new version and finds
it fresh), so one request proceeds and the others read what it left. A record that
vanishes between the insert and the read (purged, or a claim given up) is claimed
again; after :data:`ROUNDS` such rounds the request is a 409.

Every statement is built once, with bind parameters (the table's shape is fixed), so
that SQLAlchemy finds its compiled form at once and the driver its prepared statement;
on PostgreSQL each runs on asyncpg's own connection inside the transaction
(:func:`optimist.sqlalchemy._direct.transaction_rows`) unless the engine observes its
statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Executable,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    null,
    select,
    true,
)
from sqlalchemy import delete as sql_delete
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
from optimist.sqlalchemy._direct import INDIRECT, transaction_rows

__all__ = ["ABORTED", "ROUNDS", "Statements", "Target", "claim", "execute", "sqlstate"]

#: Rounds of a claim whose record vanished or was taken over between two statements.
ROUNDS: Final = 3
#: PostgreSQL's in_failed_sql_transaction: an earlier statement failed, nothing commits.
ABORTED: Final = "25P02"
_LOCK_TIMEOUT: Final = "55P03"


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements on a table of records, built once with bind parameters.

    ``optimist_scope`` and ``optimist_key`` name the record in each; ``keep`` also takes
    ``optimist_response`` (a column's own name is reserved for its value in an insert).
    """

    claim_pg: Executable
    insert_pg: Executable
    insert_sqlite: Executable
    read: Executable
    take_over: Executable
    keep: Executable
    forget: Executable

    @classmethod
    def of(cls, table: Table) -> Statements:
        """The statements on ``table`` (the shape :func:`idempotency_records` declares)."""
        c = table.c
        where = and_(
            c.scope == bindparam("optimist_scope", type_=c.scope.type),
            c.key == bindparam("optimist_key", type_=c.key.type),
        )
        fresh: dict[str, Any] = {
            "fingerprint": bindparam("optimist_fingerprint", type_=c.fingerprint.type),
            "response": null(),
            "created_at": bindparam("optimist_created_at", type_=c.created_at.type),
            "expires_at": bindparam("optimist_expires_at", type_=c.expires_at.type),
        }
        located = {
            "scope": bindparam("optimist_scope", type_=c.scope.type),
            "key": bindparam("optimist_key", type_=c.key.type),
        }
        inserts = [
            dialect.insert(table)
            .values(**located, **fresh)
            .on_conflict_do_nothing(index_elements=[c.scope, c.key])
            .returning(c.key)
            for dialect in (postgresql, sqlite)
        ]
        # Set the claim's lock_timeout, insert, restore: one round trip (module docstring).
        # MATERIALIZED: the setting is made once, before the insert reads its row.
        previous = (
            select(
                func.current_setting("lock_timeout", type_=Text).label("value"),
                func.set_config(
                    "lock_timeout", bindparam("optimist_wait", type_=Text), true()
                ).label("wait"),
            )
            .cte("optimist_previous")
            .prefix_with("MATERIALIZED")
        )
        claimed = (
            postgresql.insert(table)
            .from_select(
                [*located, *fresh],
                select(*located.values(), *fresh.values()).select_from(previous),
            )
            .on_conflict_do_nothing(index_elements=[c.scope, c.key])
            .returning(c.key)
            .cte("optimist_claimed")
        )
        claim_pg = select(
            select(func.count()).select_from(claimed).scalar_subquery().label("claimed"),
            func.set_config(
                "lock_timeout", select(previous.c.value).scalar_subquery(), true()
            ).label("restored"),
        )
        return cls(
            claim_pg=claim_pg,
            insert_pg=inserts[0],
            insert_sqlite=inserts[1],
            read=select(c.fingerprint, c.response, c.expires_at).where(where),
            take_over=sql_update(table)
            .where(where, c.expires_at <= bindparam("optimist_created_at", type_=c.created_at.type))
            .values(**fresh)
            .returning(c.key),
            # RETURNING gives the driver's fast path columns to describe.
            keep=sql_update(table)
            .where(where)
            .values(response=bindparam("optimist_response", type_=c.response.type))
            .returning(c.key),
            forget=sql_delete(table).where(where).returning(c.key),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """The record of ``key`` in ``scope`` (its stored text), with the statements on it."""

    statements: Statements
    scope: str
    key: str

    def parameters(self) -> dict[str, Any]:
        """The bind parameters that name the record."""
        return {"optimist_scope": self.scope, "optimist_key": self.key}


async def execute(
    connection: AsyncConnection, statement: Executable, parameters: dict[str, Any]
) -> list[Any]:
    """The rows (tuples) ``statement`` returns in ``connection``'s transaction.

    On the driver's own connection where :func:`~optimist.sqlalchemy._direct.transaction_rows`
    can run it, else through SQLAlchemy; a refusal is raised as SQLAlchemy's DBAPIError
    either way.
    """
    rows = await transaction_rows(connection, statement, parameters)
    if rows is not INDIRECT:
        return rows
    return list(await connection.execute(statement, parameters))


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
    now = datetime.now(UTC)
    parameters = target.parameters()
    parameters.update(
        optimist_fingerprint=fingerprint.to_text(),
        optimist_created_at=now,
        optimist_expires_at=now + ttl,
    )
    statements = target.statements
    if connection.dialect.name != "postgresql":
        return await _rounds(
            connection,
            statements,
            statements.insert_sqlite,
            parameters,
            now=now,
            fingerprint=fingerprint,
        )
    timeout = f"{max(1, round(wait * 1000))}ms"
    try:
        # The draft's "Error Handling" allows waiting for a request in flight instead of
        # a 409: this insert waits while another transaction holds the key.
        rows = await execute(
            connection, statements.claim_pg, {**parameters, "optimist_wait": timeout}
        )
        if rows[0][0]:
            return Proceed()
        # The key has a record: the rare path, a statement at a time, under the same bound.
        previous = await _set_lock_timeout(connection, timeout)
        decision = await _rounds(
            connection,
            statements,
            statements.insert_pg,
            parameters,
            now=now,
            fingerprint=fingerprint,
            inserted=True,
        )
    except DBAPIError as error:
        if sqlstate(error) == _LOCK_TIMEOUT:
            # The draft's "Error Handling": a request with the key is still being
            # processed. The transaction is aborted: it is rolled back, claim and all.
            return Conflict()
        raise
    await _set_lock_timeout(connection, previous)
    return decision


async def _rounds(
    connection: AsyncConnection,
    statements: Statements,
    insert: Executable,
    parameters: dict[str, Any],
    *,
    now: datetime,
    fingerprint: Fingerprint,
    inserted: bool = False,
) -> Decision:
    """The claim a statement at a time; ``inserted``: the first insert was made already."""
    for _ in range(ROUNDS):
        if not inserted and await execute(connection, insert, parameters):
            return Proceed()
        inserted = False
        rows = await execute(connection, statements.read, parameters)
        if not rows:
            continue  # purged, or a claim given up, since the insert: claim again
        stored_fingerprint, stored_response, expires_at = rows[0]
        if expires_at <= now:
            # The draft's "Idempotency Key Validity and Expiry": past its expiry the key
            # is unknown again, so the record counts as absent and the key starts afresh.
            if await execute(connection, statements.take_over, parameters):
                return Proceed()
            continue  # another request took it over first: read what it left
        return _decide(stored_fingerprint, stored_response, fingerprint)
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


# A select list is evaluated left to right: the old value is read before the new is set.
_SET_LOCK_TIMEOUT: Final = select(
    func.current_setting("lock_timeout", type_=String),
    func.set_config("lock_timeout", bindparam("value", type_=String), true()),
)


async def _set_lock_timeout(connection: AsyncConnection, value: str) -> str:
    """Set the transaction's ``lock_timeout`` to ``value``; the value it had."""
    rows = await execute(connection, _SET_LOCK_TIMEOUT, {"value": value})
    return str(rows[0][0])


def sqlstate(error: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE of ``error`` (asyncpg's), if any."""
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None

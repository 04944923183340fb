"""Idempotency records in the database of the writes they answer for.

draft-ietf-httpapi-idempotency-key-header asks a server to answer a resent request with
the first one's result. A record kept apart from the write (another store, another
transaction) can disagree with it after a crash: a write without its record is applied
again when resent, a record without its write replays a change that never happened.
Here the record is a row of ``optimist_idempotency`` (:func:`idempotency_records`
declares it in an application's metadata) written in the **same transaction** as the
write: both commit or neither does::

    async with idempotent(engine, scope=("tenant-7", "admin"), key=key,
                          fingerprint=fingerprint) as attempt:
        if attempt.replay is not None:
            return attempt.replay                       # the first answer, byte for byte
        record = await update(attempt.connection, notes, 1, values, condition=condition)
        await attempt.keep(200, headers, body)          # before the commit

A record is named by the caller's ``scope`` (the client's identity: tenant and role
where the API has them) and the key; its fingerprint
(:class:`~optimist.idempotency.Fingerprint`) tells a resend from a reuse, and
:func:`~optimist.idempotency.decide` decides.

**Claiming the key.** The transaction begins by inserting the record without a
response (:mod:`optimist.sqlalchemy._idempotency_claim`). A duplicate sent while the
first is in flight waits for it and replays its answer: on PostgreSQL its insert waits
on the unique index until the first transaction ends, for at most ``wait`` seconds,
then it is the draft's 409 (:class:`~optimist.errors.IdempotencyKeyInFlight`); on
SQLite it begins only once the first has ended (``BEGIN IMMEDIATE``), within the
engine's busy timeout (then a 503); a keyed transaction holds the engine's writer
lock, so that this process's writers queue for it instead of polling in SQLite's busy
handler. A record past its expiry (``ttl`` after its claim,
:data:`~optimist.idempotency.DEFAULT_TTL` by default) counts as absent: the key starts
afresh. :func:`purge` deletes expired records, a bounded number per call.

**Keeping the response.** :meth:`Attempt.keep` stores it if
:func:`~optimist.idempotency.storable` (2xx, 404, 409, 410, 412); otherwise it deletes
the claim in the same transaction, so that a resend proceeds. A block that raises rolls
back the write and the claim with it. A block that ends without keeping anything is a
programming error: its write is rolled back too (RuntimeError), as a write committed
without its record would be applied again by a resend. On PostgreSQL a statement the
database refuses (a unique value, ``ResourceExists``) aborts the transaction: nothing can
be kept with it, nothing commits, and :meth:`Attempt.keep` returns None.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from sqlalchemy import (
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    tuple_,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optimist.idempotency import (
    DEFAULT_TTL,
    REPLAYED_FIELDS,
    Conflict,
    Fingerprint,
    IdempotencyKey,
    Mismatch,
    Proceed,
    Replay,
    StoredResponse,
    storable,
)
from optimist.sqlalchemy._direct import writer
from optimist.sqlalchemy._idempotency_claim import (
    ABORTED,
    Statements,
    Target,
    claim,
    execute,
    sqlstate,
)
from optimist.sqlalchemy.engine import Bind, autocommit, transaction
from optimist.sqlalchemy.versioned import UTCDateTime

__all__ = [
    "DEFAULT_WAIT",
    "IDEMPOTENCY_TABLE",
    "MAX_SCOPE_LENGTH",
    "PURGE_LIMIT",
    "Attempt",
    "KeyScope",
    "idempotency_records",
    "idempotent",
    "purge",
]

#: The name of the table of idempotency records.
IDEMPOTENCY_TABLE: Final = "optimist_idempotency"
#: Seconds a request waits on PostgreSQL for an earlier one with its key to end.
DEFAULT_WAIT: Final = 10.0
#: The most records one call of :func:`purge` deletes.
PURGE_LIMIT: Final = 1000
#: The longest scope, in characters once written as a JSON array.
MAX_SCOPE_LENGTH: Final = 1024

#: Whose keys these are: one string, or a tuple of parts (``("tenant-7", "admin")``).
KeyScope: TypeAlias = str | tuple[str | int, ...]


def idempotency_records(metadata: MetaData) -> Table:
    """The table of idempotency records in ``metadata``, declared on first use.

    ``response`` is NULL while the request is in flight (the claim), and only there:
    the claim and the response commit together.
    """
    existing = metadata.tables.get(IDEMPOTENCY_TABLE)
    if existing is not None:
        return existing
    table = Table(
        IDEMPOTENCY_TABLE,
        metadata,
        Column("scope", String(MAX_SCOPE_LENGTH), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("fingerprint", Text, nullable=False),
        Column("response", LargeBinary, nullable=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
    )
    Index(f"ix_{IDEMPOTENCY_TABLE}_expires_at", table.c.expires_at)
    return table


# The statements need only the table's shape: a caller's metadata declares the same.
_RECORDS: Final = idempotency_records(MetaData())
# Built once: a request only binds its values.
_STATEMENTS: Final = Statements.of(_RECORDS)


class Attempt:
    """One request's use of its key, inside the transaction of its write.

    ``connection`` is the transaction's: the request's writes go there (every write of
    :mod:`optimist.sqlalchemy` takes it as its ``bind``). ``decision`` is
    :class:`~optimist.idempotency.Proceed` (do the request, then :meth:`keep` its
    response) or :class:`~optimist.idempotency.Replay` (send :attr:`replay`; write
    nothing).
    """

    __slots__ = ("_done", "_target", "connection", "decision")

    def __init__(
        self, connection: AsyncConnection, decision: Proceed | Replay, target: Target
    ) -> None:
        self.connection = connection
        self.decision = decision
        self._target = target
        self._done = False

    @property
    def replay(self) -> StoredResponse | None:
        """The stored response to send again, or None when the request is to proceed."""
        return self.decision.response if isinstance(self.decision, Replay) else None

    async def keep(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | bytearray | memoryview = b"",
        *,
        replayed: Iterable[str] = REPLAYED_FIELDS,
    ) -> StoredResponse | None:
        """Record the response for the key, in the transaction; once, before it commits.

        Kept: the status, the fields named in ``replayed`` and the body as it is
        (:meth:`StoredResponse.capture`). A status that is not
        :func:`~optimist.idempotency.storable` deletes the claim instead, so that a
        resend proceeds. Returns what was kept, or None: not storable, or (PostgreSQL)
        the transaction was aborted by a statement the database refused, and nothing
        of it will commit.
        """
        if self.replay is not None:
            raise RuntimeError("a replayed request keeps nothing: send the stored response")
        if self._done:
            raise RuntimeError("the response for this key has been kept already")
        self._done = True
        response = StoredResponse.capture(status, headers, body, replayed=replayed)
        target = self._target
        parameters = target.parameters()
        # The draft's "Idempotency Enforcement": the result, success or error, is what a
        # resend gets; a result that is not (5xx, the request's own faults) frees the key.
        if storable(status):
            statement = target.statements.keep
            parameters["optimist_response"] = response.to_bytes()
        else:
            statement = target.statements.forget
        try:
            await execute(self.connection, statement, parameters)
        except DBAPIError as error:
            if sqlstate(error) == ABORTED:
                return None
            raise
        return response if storable(status) else None

    def _finish(self) -> None:
        if isinstance(self.decision, Proceed) and not self._done:
            raise RuntimeError(
                "an idempotent write ended without keeping its response: it is rolled "
                "back, as a resend would apply it again (call keep before the block ends)"
            )


@asynccontextmanager
async def idempotent(
    bind: Bind,
    *,
    scope: KeyScope,
    key: IdempotencyKey | str,
    fingerprint: Fingerprint,
    ttl: timedelta = DEFAULT_TTL,
    wait: float = DEFAULT_WAIT,
    documentation: str | None = None,
) -> AsyncIterator[Attempt]:
    """A transaction on ``bind`` that has claimed ``key`` in ``scope``: an :class:`Attempt`.

    Raises :class:`~optimist.errors.IdempotencyKeyReused` (422) when the key's record
    has another fingerprint, :class:`~optimist.errors.IdempotencyKeyInFlight` (409) when
    an earlier request with the key is still in flight after ``wait`` seconds
    (PostgreSQL), each with ``documentation`` (the address of the API's rules for keys).
    The record answers for ``ttl`` from the claim. The block's writes and the record
    commit together when it ends; an error rolls both back.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"ttl must be positive, not {ttl}")
    if wait <= 0:
        raise ValueError(f"wait must be a positive number of seconds, not {wait}")
    parsed = key if isinstance(key, IdempotencyKey) else IdempotencyKey(key)
    target = Target(_STATEMENTS, _scope_text(scope), parsed.value)
    async with AsyncExitStack() as stack:
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite":
            # SQLite's busy handler sleeps up to 100 ms per try: this process's writers
            # queue on the engine's lock instead, as its one-statement writes do.
            await stack.enter_async_context(writer(bind))
        connection = await stack.enter_async_context(transaction(bind))
        decision = await claim(connection, target, fingerprint, ttl, wait)
        if isinstance(decision, Mismatch | Conflict):
            raise decision.error(parsed, documentation)
        attempt = Attempt(connection, decision, target)
        yield attempt
        attempt._finish()


async def purge(bind: Bind, *, limit: int = PURGE_LIMIT) -> int:
    """Delete up to ``limit`` expired records; how many it deleted.

    One statement; call it again while it returns ``limit``. A record being taken over
    by a new claim is skipped on PostgreSQL (``SKIP LOCKED``) and checked again as it
    is deleted, so a fresh record is never deleted.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    records = _RECORDS
    due = records.c.expires_at <= datetime.now(UTC)
    chosen = (
        select(records.c.scope, records.c.key)
        .where(due)
        .order_by(records.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # The outer condition is evaluated again on the row as it is when it is deleted
    # (PostgreSQL re-checks a row changed by a concurrent claim): only expired ones go.
    statement = sql_delete(records).where(due, tuple_(records.c.scope, records.c.key).in_(chosen))
    async with autocommit(bind) as connection:
        result = await connection.execute(statement)
    return int(result.rowcount)


def _scope_text(scope: KeyScope) -> str:
    """The scope as stored: its parts as a JSON array, so that no two scopes collide."""
    parts = (scope,) if isinstance(scope, str) else scope
    for part in parts:
        if not isinstance(part, str | int) or isinstance(part, bool):
            raise TypeError(f"a scope's parts are strings or integers, not {type(part).__name__}")
    text = json.dumps(list(parts), ensure_ascii=True, separators=(",", ":"))
    if len(text) > MAX_SCOPE_LENGTH:
        raise ValueError(f"the scope is longer than {MAX_SCOPE_LENGTH} characters as stored")
    return text

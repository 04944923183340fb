"""Where the APIs' reads go: a streaming replica when there is one, the primary otherwise.

With ``read_database_url`` (``--read-database-url``), GET and HEAD of an item or a list,
a 304 included, are read from the replica (:attr:`Runtime.read_engine
<optimist.service.runtime.Runtime.read_engine>`): the routes ask :func:`read` and
:func:`read_page`, never an engine. Everything else stays on the primary
(``runtime.engine``): every write, and every read that decides one or explains its
refusal (the route's lookup that tells 404 from 412, the current ETag of a 412, the
record an Idempotency-Key keeps).

A replica lags, so what it answers may be older than what the primary holds. That can
cost a client a 412 and a retry, never an update: the condition a write carries is
decided by the primary in the write's own statement, and a 412 names the primary's
current ETag. A replica can also miss what the primary has: a resource created a
moment ago, a version a client already holds. So a read the replica would refuse (404,
or 412 on a GET's If-Match) is read again from the primary, which decides it: a client
is never told a resource it just created is gone, nor refused for a version the
replica has not replayed. A 304 is the replica's: the client holds what it has. A GET
whose If-None-Match names a version other than the replica's is read again from the
primary too: the client may hold a newer one (its own write), and must not be handed an
older one than it holds.

A replica that is away (a 503 of its own: down, restarting, refusing connections) costs
nothing but latency: the read is made on the primary, which answers for itself.

Pages are read from the replica too; a page whose cursor's snapshot the replica has
not replayed yet is read from the primary (:mod:`optimist.sqlalchemy.pages`), so that
a traversal neither misses nor repeats an item.

``optimist serve`` connects to the replica once before it serves (:func:`reachable`),
so that a read URL that cannot work is the operator's mistake at start, not a 503 on
every GET.
"""

from __future__ import annotations

from typing import overload

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.errors import PreconditionFailed, ResourceNotFound, ServiceUnavailable
from optimist.service.runtime import Runtime
from optimist.service.settings import Settings
from optimist.sqlalchemy import (
    Listing,
    Record,
    Scope,
    Versioned,
    create_engine,
    get,
    list_page,
    validators,
)
from optimist.starlette import ConditionalRequest

__all__ = ["reachable", "read", "read_page"]


async def read(
    runtime: Runtime,
    versioned: Versioned,
    key: object,
    conditions: ConditionalRequest,
    *,
    scope: Scope | None = None,
) -> Record:
    """The row at ``key``, the request's preconditions decided on it (RFC 9110 §13.2.2).

    A revalidating GET reads the row's validators first, and only a changed row whole.
    Read from the replica; a 404 or a 412 there is read again and decided by the primary
    (see the module's docstring). Raises ResourceNotFound, NotModified (304) or
    PreconditionFailed (412).
    """
    replica = runtime.read_engine
    if replica is runtime.engine:
        return await _decided(runtime.engine, versioned, key, conditions, scope)
    # The client holds a version the replica may not have as current: possibly a newer
    # one (its own write). Unless the replica answers 304, the primary answers, so that
    # the client never goes back; the replica's row is not read for nothing.
    holding = conditions.received.if_none_match is not None
    try:
        record = await _decided(replica, versioned, key, conditions, scope, whole=not holding)
    except (ResourceNotFound, PreconditionFailed, ServiceUnavailable):
        return await _decided(runtime.engine, versioned, key, conditions, scope)
    if record is None:
        return await _decided(runtime.engine, versioned, key, conditions, scope)
    return record


@overload
async def _decided(
    engine: AsyncEngine,
    versioned: Versioned,
    key: object,
    conditions: ConditionalRequest,
    scope: Scope | None,
) -> Record: ...


@overload
async def _decided(
    engine: AsyncEngine,
    versioned: Versioned,
    key: object,
    conditions: ConditionalRequest,
    scope: Scope | None,
    *,
    whole: bool,
) -> Record | None: ...


async def _decided(
    engine: AsyncEngine,
    versioned: Versioned,
    key: object,
    conditions: ConditionalRequest,
    scope: Scope | None,
    *,
    whole: bool = True,
) -> Record | None:
    """The row, the preconditions decided on it; a revalidation on its validators first.
    Not ``whole``: None for a revalidation that is no 304, rather than the row."""
    if conditions.revalidating:
        # A client with a copy: the row's validators alone decide a 304, before the row.
        conditions.evaluate(await validators(engine, versioned, key, scope=scope))
        if not whole:
            return None
    record = await get(engine, versioned, key, scope=scope)
    conditions.evaluate(record.state)
    return record


async def read_page(
    runtime: Runtime,
    versioned: Versioned,
    *,
    query: str,
    limit: int,
    cursor: str | None,
    scope: Scope | None = None,
) -> Listing:
    """One page of ``versioned`` (:func:`~optimist.sqlalchemy.list_page`), from the
    replica unless it has not replayed the cursor's snapshot."""
    replica = runtime.read_engine
    primary = None if replica is runtime.engine else runtime.engine

    async def page_of(bind: AsyncEngine, fallback: AsyncEngine | None) -> Listing:
        return await list_page(
            bind,
            versioned,
            runtime.cursors,
            query=query,
            limit=limit,
            cursor=cursor,
            scope=scope,
            primary=fallback,
        )

    try:
        return await page_of(replica, primary)
    except ServiceUnavailable:
        if primary is None:
            raise
        return await page_of(primary, None)


async def reachable(settings: Settings) -> None:
    """Connect to the read database of ``settings`` and run one query; its errors are
    the driver's, untranslated, for the command line to name the mistake."""
    assert settings.read_database_url is not None
    engine = create_engine(settings.read_database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

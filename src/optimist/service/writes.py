"""Idempotency-Key on every write of the service: the one dependency the write routes take.

A client that never got the answer to a write may send it again with the same
``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) and gets the first
answer, byte for byte, marked ``Idempotent-Replayed: true``; the write is applied once.
The key is optional on every unsafe route of the three APIs: without one, a write runs
as it always did.

Each write route takes :data:`Write` and does two things: it writes through
``write.connection`` (the transaction that claimed the key, or the engine when the
request carries none) and answers with ``return await write.keep(response)``, which
records the answer in that transaction before it commits. Declare :data:`Write` after the
route's identity (the admin API's ``Admin``), so that a 401/403 comes before the key's
400, and after its lookup (``dependencies=[Current]``), so that a 404 does too.

What a resend meets again is what :func:`~optimist.idempotency.storable` keeps: a 2xx,
and the library's 404, 409, 410 and 412 raised in the route (answered as the problem
handlers answer them, and kept). Any other answer frees the key (an invalid body's 422,
a 5xx), and anything raised that is not the library's rolls the write and the claim
back together. A key sent again while its first request is in flight is a 409; one
reused for another request (method, target, preconditions, media type, body) a 422.

The records are the application's :func:`keys` (built in the lifespan, on the runtime's
engine, kept in ``app.state.idempotency``): the store is
:func:`optimist.sqlalchemy.idempotency.idempotent` on the table
``optimist_idempotency`` (:mod:`optimist.service.schema`), and the scope of a key is
:func:`key_scope`'s. The routers are declared once per process while each application
has its own engine, so the dependency is made for :data:`APPLICATION_KEYS`, which stands
for the application's rules and hands each request to them.

A record expires 24 hours after its claim (:data:`~optimist.idempotency.DEFAULT_TTL`):
after that the key counts as unused. Each worker deletes expired records when it starts
(:func:`optimist.sqlalchemy.idempotency.purge`, a bounded batch;
:mod:`optimist.service.runtime`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Final

from starlette.requests import HTTPConnection, Request

from optimist.fastapi import idempotency
from optimist.sqlalchemy import Bind
from optimist.sqlalchemy.idempotency import idempotent
from optimist.starlette import Idempotency, IdempotentWrite, KeyScope, Lookup, ScopeOf

__all__ = ["ADMIN_PREFIX", "APPLICATION_KEYS", "ApplicationKeys", "Write", "key_scope", "keys"]

#: The admin API's paths: its keys are its callers' (tenant and role).
ADMIN_PREFIX: Final = "/admin"
#: The identity fields the gateway sets on admin requests (the admin API checks them).
_IDENTITY: Final = ("X-Tenant-Id", "X-User-Role")


def key_scope(request: HTTPConnection) -> KeyScope:
    """Whose key this is: on the admin API the tenant and role the request acts as (so
    that one tenant's key never replays another's answer); elsewhere the whole service.

    The admin routes check identity before they claim a key, so the fields are there
    and well formed when this reads them.
    """
    path = request.url.path
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return tuple(", ".join(request.headers.getlist(name)) for name in _IDENTITY)
    return ()


def keys(bind: Bind, scope: ScopeOf = key_scope) -> Idempotency[Bind]:
    """The service's Idempotency-Key rules on ``bind``: optional keys, scoped by
    :func:`key_scope`, records in ``optimist_idempotency`` for 24 hours."""
    return Idempotency[Bind](bind, idempotent, scope=scope, required=False)


class ApplicationKeys(Idempotency[Any]):
    """The rules of the application a request reaches: ``app.state.idempotency``.

    Routers are module-level and shared by every application of the process (each test
    builds its own, each on its own database); their dependency is made once, for this
    stand-in, which holds no bind of its own.
    """

    def __init__(self) -> None:
        super().__init__(None, idempotent, scope=key_scope, required=False)

    @asynccontextmanager
    async def attempt(
        self, request: Request, *, required: bool | None = None, lookup: Lookup | None = None
    ) -> AsyncIterator[IdempotentWrite[Any]]:
        """The application's :meth:`~optimist.starlette.Idempotency.attempt`."""
        own: Idempotency[Bind] = request.app.state.idempotency
        async with own.attempt(request, required=required, lookup=lookup) as write:
            yield write

    async def attempt_on(
        self,
        request: Request,
        enter: Callable[
            [AbstractAsyncContextManager[IdempotentWrite[Any]]], Awaitable[IdempotentWrite[Any]]
        ],
        *,
        required: bool | None = None,
        lookup: Lookup | None = None,
    ) -> IdempotentWrite[Any]:
        """The application's :meth:`~optimist.starlette.Idempotency.attempt_on`."""
        own: Idempotency[Bind] = request.app.state.idempotency
        return await own.attempt_on(request, enter, required=required, lookup=lookup)


#: The stand-in every write route's dependency is made for.
APPLICATION_KEYS: Final = ApplicationKeys()

#: A write route's parameter: the request's write, its key claimed when it has one.
Write = Annotated[IdempotentWrite[Bind], idempotency(APPLICATION_KEYS)]

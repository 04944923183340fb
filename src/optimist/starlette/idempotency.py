"""Idempotency-Key on Starlette routes: a resent write gets its first answer, byte for byte.

draft-ietf-httpapi-idempotency-key-header lets a client resend a write whose answer it
never got. :class:`Idempotency` is an application's opt-in: the store that records
answers in the transaction of the write (``optimist.sqlalchemy.idempotency.idempotent``,
or anything shaped like it, :class:`KeyStore`), the bind that store runs on, how a
request's identity becomes the key's scope, and whether routes require a key. Per
request, :meth:`Idempotency.attempt`:

1. reads the key at the boundary (:func:`optimist.idempotency.parse`): malformed → 400,
   missing where required → 400 ``IdempotencyKeyRequired``; both rank below a missing
   resource's 404 (:func:`~optimist.starlette.missing_first`) and after identity, which
   the scope callable reads;
2. fingerprints the request: method, target as sent (raw path and query), the four
   precondition fields, media type, body bytes;
3. claims the key in the store's transaction: a completed record is raised as
   :class:`Replayed` (its :meth:`~Replayed.response` is the stored one with
   ``Idempotent-Replayed: true``), a reuse is the store's 422, a request still in flight
   after the store's wait its 409;
4. gives the route an :class:`IdempotentWrite`: it writes through ``connection`` and
   answers through :meth:`IdempotentWrite.keep`, which records the response before the
   commit. A library error the route raises is answered as
   :func:`~optimist.starlette.error_response` answers it, and kept when
   :func:`~optimist.idempotency.storable` (404, 409, 410, 412), so that a resend of a
   write that met 412 meets it again; anything else rolls back write and claim alike.

:meth:`Idempotency.respond` runs one route function that way and returns its response
(or the replay); :meth:`Idempotency.endpoint` makes a plain Starlette endpoint of one.
Safe methods carry no key: the route runs on ``bind`` as it would without this.

A replay leaves the endpoint like any response, so the caching policy stamps it as it
stamped the first answer (same status, same validators, so the same ``Cache-Control``);
no cache reuses an answer to an unsafe method anyway (RFC 9111 §4.4).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Generic, Protocol, TypeAlias, TypeVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from optimist.errors import IdempotencyKeyRequired, InvalidIdempotencyKey, OptimistError
from optimist.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    REPLAYED_VALUE,
    Fingerprint,
    IdempotencyKey,
    StoredResponse,
    parse,
    storable,
)
from optimist.starlette._fields import precondition_lines
from optimist.starlette.precedence import Lookup, missing_first
from optimist.starlette.responses import error_response

__all__ = [
    "SAFE_METHODS",
    "Claim",
    "Idempotency",
    "IdempotentWrite",
    "KeyScope",
    "KeyStore",
    "Replayed",
    "ScopeOf",
    "fingerprint",
    "replay_response",
]

B = TypeVar("B")
B_co = TypeVar("B_co", covariant=True)
R = TypeVar("R", bound=Response)

#: Methods whose requests carry no key: they change nothing, a resend is harmless
#: (RFC 9110 §9.2.1), and the draft is about the unsafe ones.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ACTIVE: Final = "optimist.idempotency"  # scope key of the request's IdempotentWrite
#: The key's own refusals, which rank below a missing resource's 404 (RFC 9110 §13.2.1).
_KEY_REFUSALS: Final = (InvalidIdempotencyKey, IdempotencyKeyRequired)

#: Whose keys these are: one string, or a tuple of parts (``("tenant-7", "admin")``).
KeyScope: TypeAlias = str | tuple[str | int, ...]
#: The scope of a request's key, from its identity; may be async, may raise 401/403.
ScopeOf: TypeAlias = Callable[[HTTPConnection], KeyScope | Awaitable[KeyScope]]


class Claim(Protocol[B_co]):
    """A claimed key inside the write's transaction (``optimist.sqlalchemy``'s Attempt)."""

    @property
    def connection(self) -> B_co:
        """The transaction's connection: the request's writes go there."""
        ...

    @property
    def replay(self) -> StoredResponse | None:
        """The first answer, when the request was answered already."""
        ...

    async def keep(
        self, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> StoredResponse | None:
        """Record the answer, before the commit."""
        ...


class KeyStore(Protocol[B]):
    """Opens the transaction that claims a key: ``optimist.sqlalchemy.idempotency.idempotent``
    (with ``functools.partial`` for its ``ttl`` and ``wait``)."""

    def __call__(
        self,
        bind: B,
        /,
        *,
        scope: KeyScope,
        key: IdempotencyKey,
        fingerprint: Fingerprint,
        documentation: str | None,
    ) -> AbstractAsyncContextManager[Claim[B]]: ...


class Replayed(Exception):
    """The request was answered before: send :meth:`response` instead of running it."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__(f"replay of a {stored.status} answer")
        self.stored = stored

    def response(self) -> Response:
        """The stored answer, marked as a replay."""
        return replay_response(self.stored)


def replay_response(stored: StoredResponse) -> Response:
    """``stored`` as sent the first time, with ``Idempotent-Replayed: true``.

    The body and the kept fields are as recorded; ``Content-Length`` follows from the
    body, and ``Date`` and the caching fields are the replay's own.
    """
    response = Response(content=stored.body, status_code=stored.status)
    for name, value in stored.headers:
        response.headers.append(name, value)
    response.headers[REPLAYED_HEADER] = REPLAYED_VALUE
    return response


async def fingerprint(request: Request) -> Fingerprint:
    """What makes a resend the same request: method, target as sent (raw path and query),
    the precondition fields, the media type and the body bytes."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    target = (raw + b"?" + query if query else raw).decode("latin-1")
    lines = precondition_lines(request.headers)
    return Fingerprint.of(
        request.method,
        target,
        body=await request.body(),
        media_type=request.headers.get("content-type"),
        if_match=lines.get(b"if-match"),
        if_none_match=lines.get(b"if-none-match"),
        if_modified_since=lines.get(b"if-modified-since"),
        if_unmodified_since=lines.get(b"if-unmodified-since"),
    )


class IdempotentWrite(Generic[B]):
    """One request's write: ``connection`` to write through, :meth:`keep` to answer.

    ``key`` is None where the request carries none (optional, or a safe method): then
    ``connection`` is the application's bind and :meth:`keep` records nothing. Once
    ``answered``, ``kept`` is what a resend will get: None when the status is not
    :func:`~optimist.idempotency.storable` (the key is freed) or the store could not
    keep it (a PostgreSQL transaction a refused statement aborted: nothing commits).
    """

    __slots__ = ("_claim", "answered", "connection", "kept", "key")

    def __init__(self, connection: B, key: IdempotencyKey | None, claim: Claim[B] | None) -> None:
        self.connection = connection
        self.key = key
        self.kept: StoredResponse | None = None
        self.answered = False
        self._claim = claim

    async def keep(self, response: R) -> R:
        """Record ``response`` (status, replayed fields, body) for the key; return it.

        Once, before the transaction commits; a response with no body in memory (a
        streaming one) cannot be replayed and is refused.
        """
        if self._claim is None:
            return response
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            raise TypeError("an idempotent write answers with a response whose body is bytes")
        self.answered = True
        self.kept = await self._claim.keep(response.status_code, response.headers.items(), body)
        return response


class Idempotency(Generic[B]):
    """An application's Idempotency-Key rules: store, bind, scope, and whether required.

    ``store`` is called as ``store(bind, scope=, key=, fingerprint=, documentation=)``;
    ``scope`` maps a request to its identity (default: one scope for every client);
    ``required`` makes every route that does not say otherwise refuse a request without
    a key (400); ``documentation`` is the address of the API's rules for keys, linked
    from its problems (the draft's "Error Handling").
    """

    def __init__(
        self,
        bind: B,
        store: KeyStore[B],
        *,
        scope: ScopeOf | None = None,
        required: bool = False,
        documentation: str | None = None,
    ) -> None:
        self.bind = bind
        self.store = store
        self.scope = scope
        self.required = required
        self.documentation = documentation

    async def _key(
        self, request: Request, required: bool, lookup: Lookup | None
    ) -> IdempotencyKey | None:
        lines = request.headers.getlist(HEADER)
        if not lines and not required:
            return None  # nothing to refuse, so no lookup to rank a refusal behind
        async with missing_first(request, lookup, refusals=_KEY_REFUSALS):
            # The draft's "Syntax": an sf-string; parse raises InvalidIdempotencyKey (400).
            key = parse(lines)
            if key is None and required:
                # The draft's "Error Handling": a missing required key is a 400.
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise IdempotencyKeyRequired(request.method, target, self.documentation)
            return key

    async def _scope(self, request: Request) -> KeyScope:
        if self.scope is None:
            return ()
        found = self.scope(request)
        return await found if inspect.isawaitable(found) else found

    @asynccontextmanager
    async def attempt(
        self, request: Request, *, required: bool | None = None, lookup: Lookup | None = None
    ) -> AsyncIterator[IdempotentWrite[B]]:
        """The request's :class:`IdempotentWrite`, its key claimed for the block.

        Raises the key's 400s (after ``lookup``'s 404, or the one remembered on the
        request), the store's 409/422, and :class:`Replayed` for an answered request.
        A library error raised in the block is kept when storable and re-raised after
        the commit; any other error rolls the write and the claim back.
        """
        scope, key = await self._identified(request, required, lookup)
        if key is None:
            yield self._unkeyed(request)
            return
        async with self._claimed(request, scope, key) as write:
            yield write

    async def attempt_on(
        self,
        request: Request,
        enter: Callable[
            [AbstractAsyncContextManager[IdempotentWrite[B]]], Awaitable[IdempotentWrite[B]]
        ],
        *,
        required: bool | None = None,
        lookup: Lookup | None = None,
    ) -> IdempotentWrite[B]:
        """:meth:`attempt`, entered through ``enter`` (an exit stack's
        ``enter_async_context``) only when the request carries a key.

        A request without one claims nothing and holds nothing to close, so its write
        is returned as it is; a framework that closes what ``enter`` opened when the
        route returns (FastAPI's dependencies) then spends nothing on such a request.
        """
        scope, key = await self._identified(request, required, lookup)
        if key is None:
            return self._unkeyed(request)
        return await enter(self._claimed(request, scope, key))

    async def _identified(
        self, request: Request, required: bool | None, lookup: Lookup | None
    ) -> tuple[KeyScope, IdempotencyKey | None]:
        """The request's scope and key; no key for a safe method."""
        if request.scope.get(_ACTIVE) is not None:
            raise RuntimeError("this request has claimed its Idempotency-Key already")
        if request.method in SAFE_METHODS:
            return (), None
        scope = await self._scope(request)  # identity first: 401/403 before the key's 400
        key = await self._key(request, self.required if required is None else required, lookup)
        return scope, key

    def _unkeyed(self, request: Request) -> IdempotentWrite[B]:
        write = IdempotentWrite(self.bind, None, None)
        request.scope[_ACTIVE] = write
        return write

    @asynccontextmanager
    async def _claimed(
        self, request: Request, scope: KeyScope, key: IdempotencyKey
    ) -> AsyncIterator[IdempotentWrite[B]]:
        """The key claimed in the store's transaction for the block (steps 2–4)."""
        sent = await fingerprint(request)
        failed: OptimistError | None = None
        async with self.store(
            self.bind,
            scope=scope,
            key=key,
            fingerprint=sent,
            documentation=self.documentation,
        ) as claim:
            stored = claim.replay
            if stored is None:
                write = IdempotentWrite(claim.connection, key, claim)
                request.scope[_ACTIVE] = write
                try:
                    yield write
                except OptimistError as error:
                    if write.answered or not storable(error.status):
                        raise  # not the endpoint's answer to keep: roll back
                    # The draft's "Idempotency Enforcement": the result, success or
                    # error, is what a resend gets; it commits with the claim.
                    answer = error_response(error, request)
                    await write.keep(answer)
                    failed = error
        if stored is not None:
            raise Replayed(stored)
        if failed is not None:
            raise failed  # answered by the handler as kept: error_response, same bytes

    async def respond(
        self,
        request: Request,
        write: Callable[[IdempotentWrite[B]], Awaitable[Response]],
        *,
        required: bool | None = None,
        lookup: Lookup | None = None,
    ) -> Response:
        """Run ``write`` in :meth:`attempt`, keep what it returns, and return that, or
        the replay of the first answer."""
        try:
            async with self.attempt(request, required=required, lookup=lookup) as attempt:
                return await attempt.keep(await write(attempt))
        except Replayed as replayed:
            return replayed.response()

    def endpoint(
        self,
        write: Callable[[Request, IdempotentWrite[B]], Awaitable[Response]],
        *,
        required: bool | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint running ``write(request, attempt)`` through :meth:`respond`."""

        async def endpoint(request: Request) -> Response:
            return await self.respond(
                request, lambda attempt: write(request, attempt), required=required
            )

        endpoint.__name__ = endpoint.__qualname__ = getattr(write, "__name__", "endpoint")
        endpoint.__doc__ = write.__doc__
        return endpoint

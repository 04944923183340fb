"""The conflict-aware clients: :class:`Client` (blocking) and :class:`AsyncClient`.

Both have the same methods with the same meaning. Each method builds a flow
(:mod:`optimist.httpx.flows`; :mod:`~optimist.httpx.operations` and
:mod:`~optimist.httpx.updates` hold them) and drives it: a blocking driver that sends
with an ``httpx.Client`` and sleeps with ``time.sleep``, an async one that awaits an
``httpx.AsyncClient`` and ``anyio.sleep``. The drivers are a few lines each; the
decisions are all in the flows, shared, down to whether a request that transport lost
is sent again (:data:`TRANSPORT_ATTEMPTS`, :func:`resendable`).

Idempotency keys (draft-ietf-httpapi-idempotency-key-header): with ``idempotency``
on, the default, every write (PUT, PATCH, POST, DELETE) carries an ``Idempotency-Key``,
a new random one per attempt and the same one on each copy of that attempt, and any
write may be sent again after a transport error, a 429, a 503 or the 409 of its key in
flight: a server that honours keys answers a copy with the stored answer to the first
(``replayed`` on :class:`~optimist.httpx.Updated` and :class:`~optimist.httpx.Created`),
so a write whose answer was lost is never refetched and applied twice. The flows' own
writes are conditional, so against a server that ignores the field a resent one meets
412 and is resolved as without keys; only a write stripped of its precondition (by a
hook) would then risk a second effect. ``idempotency=False`` sends no keys and resends
only safe and conditional requests. A call's ``idempotency_key`` is sent on the first
write of that call either way, so that a write can be made again after a restart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import TypeVar

import anyio
import httpx

from optimist.etag import EntityTag, parse
from optimist.httpx import flows, operations, updates
from optimist.httpx.apis import Api, JsonApi, Write
from optimist.httpx.backoff import Backoff
from optimist.httpx.cache import ETagCache
from optimist.httpx.flows import TRANSPORT_ATTEMPTS, Flow, Reply, RequestBuilder, Sleep, resendable
from optimist.httpx.outcomes import Change, Created, Exists, OnConflict, Page, Updated, Versioned
from optimist.idempotency import IdempotencyKey
from optimist.merge import JSON

__all__ = ["TRANSPORT_ATTEMPTS", "AsyncClient", "Client", "resendable"]

T = TypeVar("T")
URL = httpx.URL | str
Params = Mapping[str, str | int]
Key = IdempotencyKey | str | None


def _key(key: Key) -> IdempotencyKey | None:
    # A str is checked here, before anything is sent: InvalidIdempotencyKey if not a key.
    return IdempotencyKey(key) if isinstance(key, str) else key


class _Operations:
    """The flows of one client, with its defaults filled in."""

    def __init__(
        self,
        build_request: RequestBuilder,
        api: Api | None,
        backoff: Backoff | None,
        cache: ETagCache | None,
        max_attempts: int,
        *,
        idempotency: bool,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api: Api = api if api is not None else JsonApi()
        self.max_attempts = max_attempts
        self.context = flows.Context(
            build_request,
            self.api,
            backoff if backoff is not None else Backoff(),
            cache if cache is not None else ETagCache(),
            idempotency,
        )

    def get(self, url: URL) -> Flow[Versioned]:
        return operations.read(self.context, url, self.context.attempts(self.max_attempts))

    def update(
        self,
        url: URL,
        change: Change,
        write: Write | None,
        on_conflict: OnConflict,
        max_attempts: int | None,
        *,
        key: Key,
    ) -> Flow[Updated]:
        return updates.update(
            self.context,
            url,
            change,
            write=write if write is not None else self.api.write,
            on_conflict=on_conflict,
            max_attempts=max_attempts if max_attempts is not None else self.max_attempts,
            key=_key(key),
        )

    def create(self, url: URL, document: JSON, method: str, key: Key) -> Flow[Created | Exists]:
        return operations.create(
            self.context,
            url,
            document,
            method=method,
            max_attempts=self.max_attempts,
            key=_key(key),
        )

    def delete(self, url: URL, etag: EntityTag | str | None, key: Key) -> Flow[None]:
        if isinstance(etag, str):
            etag = parse(etag, allow_bare=True)
        return operations.delete(
            self.context, url, etag, max_attempts=self.max_attempts, key=_key(key)
        )

    def page(self, url: URL, params: Params | None, cursor: str | None) -> Flow[Page]:
        return operations.page(
            self.context, url, params or {}, cursor, max_attempts=self.max_attempts
        )


class Client:
    """A blocking client that never loses an update.

    ``http`` is the ``httpx.Client`` to send with (its base URL, headers and transport
    apply); without one the client makes and owns its own. ``api`` adapts an API's
    bodies and credentials (:mod:`optimist.httpx.apis`), ``backoff`` paces retries,
    ``cache`` holds documents to revalidate (one per identity), ``max_attempts``
    bounds the tries of each operation and ``sleep`` is how it waits. ``idempotency``
    sends an Idempotency-Key with every write and sends any write again whose answer
    was lost (see the module's docstring); turn it off for a server that does not
    honour keys.

    The bound is generous because optimistic writes are lock-free: every 412 means
    another writer got through, so retrying makes progress; sixteen clients updating
    one resource at once need up to about eight attempts each.
    """

    def __init__(
        self,
        http: httpx.Client | None = None,
        *,
        api: Api | None = None,
        backoff: Backoff | None = None,
        cache: ETagCache | None = None,
        max_attempts: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        idempotency: bool = True,
    ) -> None:
        self._owns_http = http is None
        self.http = http if http is not None else httpx.Client()
        self._operations = _Operations(
            self.http.build_request, api, backoff, cache, max_attempts, idempotency=idempotency
        )
        self._sleep = sleep

    def _run(self, flow: Flow[T]) -> T:
        auth = self._operations.api.auth
        reply: Reply = None
        try:
            while True:
                step = flows.advance(flow, reply)
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    reply = None
                else:
                    reply = self._send(step, auth)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def _send(self, request: httpx.Request, auth: httpx.Auth | None) -> Reply:
        try:
            return self.http.send(request) if auth is None else self.http.send(request, auth=auth)
        except httpx.TransportError as error:
            return error  # the flow decides whether to send it again

    def get(self, url: URL) -> Versioned:
        """The document at ``url`` and its ETag, revalidated against the local cache."""
        return self._run(self._operations.get(url))

    def update(
        self,
        url: URL,
        change: Change,
        *,
        write: Write | None = None,
        on_conflict: OnConflict = OnConflict.MERGE,
        max_attempts: int | None = None,
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> Updated:
        """Apply ``change`` to the document at ``url`` without losing anyone's update.

        Reads the document, applies ``change`` (a function of the document, or a JSON
        Merge Patch), and writes with If-Match. On 412 it waits, reads again, merges
        three-way (or reapplies the change) and retries, at most ``max_attempts`` tries
        in all. Raises MergeConflict when both sides changed a field differently, and
        PreconditionFailed when the attempts run out.

        ``idempotency_key`` is the key of the first write (later writes, after a 412,
        take new keys). Run again after a restart, the update reads the document anew:
        if the first run's write landed, the new write differs from it and the server
        refuses the key (IdempotencyKeyReused) instead of applying the change twice.
        """
        return self._run(
            self._operations.update(
                url, change, write, on_conflict, max_attempts, key=idempotency_key
            )
        )

    def create(
        self,
        url: URL,
        document: JSON,
        *,
        method: str = "PUT",
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> Created | Exists:
        """Create ``document`` at ``url`` only if nothing is there (If-None-Match: *).

        The same ``idempotency_key`` with the same arguments, in this process or after
        a restart, gets the first create's answer (``Created.replayed``): a POST to a
        collection makes one resource, never two.
        """
        return self._run(self._operations.create(url, document, method, idempotency_key))

    def delete(
        self,
        url: URL,
        *,
        etag: EntityTag | str | None = None,
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> None:
        """Delete ``url`` if it is still at ``etag`` (by default, the version read now);
        ``idempotency_key`` as for :meth:`create`, when ``etag`` is given."""
        self._run(self._operations.delete(url, etag, idempotency_key))

    def pages(self, url: URL, *, params: Params | None = None) -> Iterator[Page]:
        """The pages of a cursor-paginated list, first to last."""
        cursor: str | None = None
        while True:
            page = self._run(self._operations.page(url, params, cursor))
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def items(self, url: URL, *, params: Params | None = None) -> Iterator[JSON]:
        """The items of a cursor-paginated list, across all its pages."""
        for page in self.pages(url, params=params):
            yield from page.items

    def close(self) -> None:
        """Close the httpx client if this client made it."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The async twin of :class:`Client`: the same methods, awaited, on an
    ``httpx.AsyncClient``; ``sleep`` is ``anyio.sleep`` unless given."""

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        api: Api | None = None,
        backoff: Backoff | None = None,
        cache: ETagCache | None = None,
        max_attempts: int = 20,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        idempotency: bool = True,
    ) -> None:
        self._owns_http = http is None
        self.http = http if http is not None else httpx.AsyncClient()
        self._operations = _Operations(
            self.http.build_request, api, backoff, cache, max_attempts, idempotency=idempotency
        )
        self._sleep = sleep

    async def _run(self, flow: Flow[T]) -> T:
        auth = self._operations.api.auth
        reply: Reply = None
        try:
            while True:
                step = flows.advance(flow, reply)
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    reply = None
                else:
                    reply = await self._send(step, auth)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    async def _send(self, request: httpx.Request, auth: httpx.Auth | None) -> Reply:
        try:
            if auth is None:
                return await self.http.send(request)
            return await self.http.send(request, auth=auth)
        except httpx.TransportError as error:
            return error  # the flow decides whether to send it again

    async def get(self, url: URL) -> Versioned:
        """See :meth:`Client.get`."""
        return await self._run(self._operations.get(url))

    async def update(
        self,
        url: URL,
        change: Change,
        *,
        write: Write | None = None,
        on_conflict: OnConflict = OnConflict.MERGE,
        max_attempts: int | None = None,
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> Updated:
        """See :meth:`Client.update`."""
        return await self._run(
            self._operations.update(
                url, change, write, on_conflict, max_attempts, key=idempotency_key
            )
        )

    async def create(
        self,
        url: URL,
        document: JSON,
        *,
        method: str = "PUT",
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> Created | Exists:
        """See :meth:`Client.create`."""
        return await self._run(self._operations.create(url, document, method, idempotency_key))

    async def delete(
        self,
        url: URL,
        *,
        etag: EntityTag | str | None = None,
        idempotency_key: IdempotencyKey | str | None = None,
    ) -> None:
        """See :meth:`Client.delete`."""
        await self._run(self._operations.delete(url, etag, idempotency_key))

    async def pages(self, url: URL, *, params: Params | None = None) -> AsyncIterator[Page]:
        """See :meth:`Client.pages`."""
        cursor: str | None = None
        while True:
            page = await self._run(self._operations.page(url, params, cursor))
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def items(self, url: URL, *, params: Params | None = None) -> AsyncIterator[JSON]:
        """See :meth:`Client.items`."""
        async for page in self.pages(url, params=params):
            for item in page.items:
                yield item

    async def aclose(self) -> None:
        """Close the httpx client if this client made it."""
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

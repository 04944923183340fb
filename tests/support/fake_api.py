"""An in-memory compare-and-set API for the httpx client's tests, and both clients on it.

The server is an ``httpx.MockTransport`` handler whose store evaluates each request's
preconditions with :mod:`optimist.preconditions` and writes under one lock, so a stale
If-Match really loses the compare-and-set. A :class:`Rig` puts clients of one kind
(sync or async) on it behind one awaitable interface, so that every behaviour test runs
through :class:`~optimist.httpx.Client` and :class:`~optimist.httpx.AsyncClient` alike
(the ``rig`` fixture, parametrized over both).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx
import pytest

from optimist.conditions import ResourceState
from optimist.etag import Comparison, EntityTag
from optimist.httpx import (
    Api,
    AsyncClient,
    Backoff,
    Change,
    Client,
    Created,
    ETagCache,
    Exists,
    JsonApi,
    Page,
    Updated,
    Versioned,
)
from optimist.merge import JSON, apply_merge_patch
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.problem import Problem

__all__ = [
    "BASE",
    "ITEMS",
    "STEADY",
    "Driver",
    "Enveloped",
    "FakeServer",
    "Rig",
    "problem",
    "rig",
    "setting",
]

BASE = "http://api.test"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# -- the server ------------------------------------------------------------------------------


def problem(
    status: int, detail: str, headers: Mapping[str, str] | None = None, **members: Any
) -> httpx.Response:
    """A problem details response (RFC 9457) with ``members`` as extensions."""
    body = Problem(status=status, detail=detail, extensions=members).to_dict()
    return httpx.Response(
        status, json=body, headers={**(headers or {}), "Content-Type": "application/problem+json"}
    )


class FakeServer:
    """Documents at ``/items/{key}``, a paginated list at ``/items``, and, when ``csrf`` is
    set, an admin-style CSRF token at ``/admin/csrf-token``.

    The server owns each document's ``id`` and ``version`` members and refuses writes
    that carry them (422). ``queued`` responses answer the next requests before anything
    else; ``on_write`` runs before each write is evaluated, as another client would.

    ``envelope`` wraps documents in ``{"result": ...}`` and pages in ``{"result":
    {"items": [...], "next_cursor": ...}}`` (:class:`Enveloped` reads them);
    ``partial_put`` makes a PUT to an existing document change only the members it carries.
    """

    def __init__(
        self,
        *,
        envelope: bool = False,
        partial_put: bool = False,
        weak: bool = False,
        comparison: Comparison = Comparison.STRONG,
        csrf: bool = False,
    ) -> None:
        self.envelope = envelope
        self.partial_put = partial_put
        self.weak = weak
        self.comparison = comparison
        self.csrf_token = "token-1" if csrf else None
        self.docs: dict[str, tuple[dict[str, Any], EntityTag]] = {}
        self.lock = threading.Lock()
        self.versions = itertools.count(1)
        self.requests: list[httpx.Request] = []
        # A resent request is the same object: its key is kept as it was on arrival.
        self._keys: list[str | None] = []
        self.statuses: list[int] = []
        self.queued: deque[httpx.Response] = deque()
        self.on_write: Callable[[], object] | None = None
        #: Methods whose next request is lost in transport (the connection drops).
        self.drop: list[str] = []

    # -- direct access, as another client writing meanwhile ----------------------------------

    def store(self, key: str, members: Mapping[str, Any]) -> EntityTag:
        """Write ``members`` over the document at ``key`` (creating it), as another client."""
        with self.lock:
            current = self.docs.get(key, ({}, None))[0]
            return self._save(key, {**current, **members})

    def doc(self, key: str) -> dict[str, Any]:
        return self.docs[key][0]

    def _save(self, key: str, document: Mapping[str, Any]) -> EntityTag:
        version = next(self.versions)
        tag = EntityTag(f"v{version}", weak=self.weak)
        self.docs[key] = ({**document, "id": key, "version": version}, tag)
        return tag

    # -- HTTP --------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self._keys.append(request.headers.get("Idempotency-Key"))
        if request.method in self.drop:
            self.drop.remove(request.method)
            if request.method != "GET":
                self._respond(request)  # applied, but the answer never arrives
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        response = self.queued.popleft() if self.queued else self._respond(request)
        self.statuses.append(response.status_code)
        return response

    def _respond(self, request: httpx.Request) -> httpx.Response:
        """The server's answer: :meth:`_handle`'s, here; a subclass puts what runs
        before the handler (tests/httpx/keyed_api.py: Idempotency-Key) in front of it."""
        return self._handle(request)

    def _body(self, document: Any) -> Any:
        return {"result": document} if self.envelope else document

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/admin/csrf-token":
            return httpx.Response(200, json={"csrf_token": self.csrf_token})
        if (
            self.csrf_token is not None
            and method in _UNSAFE
            and request.headers.get("X-CSRF-Token") != self.csrf_token
        ):
            return problem(403, "CSRF token missing or invalid")
        if path == "/items" and method == "GET":
            return self._list(request)
        if method in _UNSAFE and self.on_write is not None:
            self.on_write()
        with self.lock:
            return self._resource(request, path.removeprefix("/items/"))

    def _resource(self, request: httpx.Request, key: str) -> httpx.Response:
        method = request.method
        stored = self.docs.get(key)
        state_tag = stored[1] if stored else None
        preconditions = Preconditions.from_headers(request.headers, allow_bare=True)
        if method == "DELETE" and preconditions.if_match is None:
            return problem(428, "DELETE requires If-Match")
        state = ResourceState(exists=stored is not None, etag=state_tag)
        outcome = evaluate(preconditions, method, state, comparison=self.comparison)
        tag_headers = {"ETag": str(state_tag)} if state_tag else {}
        if outcome is Outcome.NOT_MODIFIED:
            return httpx.Response(304, headers=tag_headers)
        if outcome is Outcome.PRECONDITION_FAILED:
            return problem(
                412, "precondition failed", tag_headers, current_etag=tag_headers.get("ETag")
            )
        if stored is None and method in {"GET", "PATCH", "DELETE"}:
            return problem(404, f"{key} not found")
        if method == "GET":
            assert stored is not None
            return httpx.Response(200, json=self._body(stored[0]), headers=tag_headers)
        if method == "DELETE":
            del self.docs[key]
            return httpx.Response(204)
        body = json.loads(request.content)
        if {"id", "version"} & set(body):
            return problem(422, "id and version belong to the server")
        if method == "PATCH" or (self.partial_put and stored is not None):
            assert stored is not None
            body = apply_merge_patch(stored[0], body)
        tag = self._save(key, body)
        headers = {"ETag": str(tag), "Location": f"/items/{key}"}
        return httpx.Response(
            200 if stored else 201, json=self._body(self.docs[key][0]), headers=headers
        )

    def _list(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", "2"))
        after = request.url.params.get("cursor")
        keys = sorted(k for k in self.docs if after is None or k > after)
        chosen = keys[:limit]
        following = chosen[-1] if len(keys) > limit else None
        items = [self.docs[k][0] for k in chosen]
        if self.envelope:
            return httpx.Response(200, json={"result": {"items": items, "next_cursor": following}})
        return httpx.Response(200, json={"data": items, "next_cursor": following})

    # -- what the server saw -----------------------------------------------------------------

    def sent(self, method: str) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and r.url.path != "/admin/csrf-token"
        ]

    def idempotency_keys(self, method: str | None = None) -> list[str | None]:
        """The Idempotency-Key field each request (of ``method``) arrived with, or None."""
        return [
            key
            for request, key in zip(self.requests, self._keys, strict=True)
            if method is None
            or (request.method == method and request.url.path != "/admin/csrf-token")
        ]


# -- driving both clients the same way --------------------------------------------------------


class Driver(Protocol):
    """A client's operations, awaited whatever its kind; iterations come as lists."""

    async def get(self, url: str) -> Versioned: ...
    async def update(self, url: str, change: Change, **options: Any) -> Updated: ...
    async def create(self, url: str, document: JSON, **options: Any) -> Created | Exists: ...
    async def delete(self, url: str, **options: Any) -> None: ...
    async def items(self, url: str, **options: Any) -> list[JSON]: ...
    async def pages(self, url: str, **options: Any) -> list[Page]: ...


@dataclass
class SyncDriver:
    """A :class:`Client` as a :class:`Driver`."""

    client: Client

    async def get(self, url: str) -> Versioned:
        return self.client.get(url)

    async def update(self, url: str, change: Change, **options: Any) -> Updated:
        return self.client.update(url, change, **options)

    async def create(self, url: str, document: JSON, **options: Any) -> Created | Exists:
        return self.client.create(url, document, **options)

    async def delete(self, url: str, **options: Any) -> None:
        self.client.delete(url, **options)

    async def items(self, url: str, **options: Any) -> list[JSON]:
        return list(self.client.items(url, **options))

    async def pages(self, url: str, **options: Any) -> list[Page]:
        return list(self.client.pages(url, **options))


@dataclass
class AsyncDriver:
    """An :class:`AsyncClient` as a :class:`Driver`."""

    client: AsyncClient

    async def get(self, url: str) -> Versioned:
        return await self.client.get(url)

    async def update(self, url: str, change: Change, **options: Any) -> Updated:
        return await self.client.update(url, change, **options)

    async def create(self, url: str, document: JSON, **options: Any) -> Created | Exists:
        return await self.client.create(url, document, **options)

    async def delete(self, url: str, **options: Any) -> None:
        await self.client.delete(url, **options)

    async def items(self, url: str, **options: Any) -> list[JSON]:
        return [item async for item in self.client.items(url, **options)]

    async def pages(self, url: str, **options: Any) -> list[Page]:
        return [page async for page in self.client.pages(url, **options)]


#: No jitter: retry n waits exactly 0.02 * 2 ** (n - 1) seconds.
STEADY = Backoff(jitter=0.0)
#: The server's plain documents, whose ``id`` and ``version`` it owns.
ITEMS = JsonApi(server_owned=frozenset({"id", "version"}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Enveloped(JsonApi):
    """An adapter for ``FakeServer(envelope=True)``: documents in ``{"result": ...}``,
    pages in ``{"result": {"items": [...], "next_cursor": ...}}``."""

    server_owned: frozenset[str] = frozenset({"id", "version"})
    items_member: str = "items"

    def document(self, body: JSON) -> JSON:
        return body["result"]

    def page(self, body: JSON) -> Page:
        return JsonApi.page(self, body["result"])


@dataclass
class Rig:
    """One server, and clients of one kind (sync or async) that record their sleeps."""

    mode: str
    server: FakeServer = field(default_factory=FakeServer)
    delays: list[float] = field(default_factory=list)

    def client(
        self,
        *,
        api: Api = ITEMS,
        backoff: Backoff = STEADY,
        max_attempts: int = 10,
        cache: ETagCache | None = None,
        real_sleep: bool = False,
        latency: float = 0.0,
        unconditional: bool = False,
        idempotency: bool = True,
    ) -> Driver:
        """A client of the rig's kind; ``unconditional`` strips the preconditions off each
        request before it is sent (an httpx request hook), so its writes are blind;
        ``idempotency`` is the client's option of that name."""
        hooks = [_strip_preconditions] if unconditional else []
        options: dict[str, Any] = {
            "api": api,
            "backoff": backoff,
            "max_attempts": max_attempts,
            "cache": cache,
            "idempotency": idempotency,
        }
        if self.mode == "sync":

            def sleep(seconds: float) -> None:
                self.delays.append(seconds)
                if real_sleep:
                    time.sleep(seconds)

            def handle_sync(request: httpx.Request) -> httpx.Response:
                time.sleep(latency)  # the network: lets other threads run between requests
                return self.server(request)

            http = httpx.Client(
                transport=httpx.MockTransport(handle_sync),
                base_url=BASE,
                event_hooks={"request": hooks},
            )
            return SyncDriver(Client(http, sleep=sleep, **options))

        async def handle(request: httpx.Request) -> httpx.Response:
            await anyio.sleep(latency)  # a checkpoint, so concurrent clients interleave
            return self.server(request)

        async def async_sleep(seconds: float) -> None:
            self.delays.append(seconds)
            await anyio.sleep(seconds if real_sleep else 0)

        async def strip(request: httpx.Request) -> None:
            for hook in hooks:
                hook(request)

        async_http = httpx.AsyncClient(
            transport=httpx.MockTransport(handle), base_url=BASE, event_hooks={"request": [strip]}
        )
        return AsyncDriver(AsyncClient(async_http, sleep=async_sleep, **options))


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest) -> Rig:
    """A fresh server, with clients of one kind: each test using it runs sync and async."""
    return Rig(request.param)


def _strip_preconditions(request: httpx.Request) -> None:
    for name in ("If-Match", "If-None-Match"):
        request.headers.pop(name, None)


def setting(**members: Any) -> Callable[[JSON], JSON]:
    """A change that sets ``members`` of the document."""
    return lambda document: {**document, **members}

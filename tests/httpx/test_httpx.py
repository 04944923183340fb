"""The conflict-aware httpx client, sync and async, against an in-memory compare-and-set server.

Every behaviour test runs twice, through :class:`Client` and :class:`AsyncClient`, on
the same server: the two must give the same results. The server is an
``httpx.MockTransport`` handler whose store evaluates the request's preconditions with
:mod:`optimist.preconditions` and writes under one lock, so a stale If-Match really
loses the compare-and-set.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio
import httpx
import pytest

from optimist.conditions import ResourceState
from optimist.errors import (
    InvalidInput,
    MergeConflict,
    PreconditionFailed,
    PreconditionRequired,
    ResourceExists,
    ResourceNotFound,
    ResponseError,
)
from optimist.etag import Comparison, EntityTag
from optimist.httpdate import http_date
from optimist.httpx import (
    PUT,
    AdminApi,
    Api,
    AsyncClient,
    Backoff,
    Change,
    Client,
    Created,
    ETagCache,
    Exists,
    JsonApi,
    OnConflict,
    Page,
    ProjectsApi,
    SessionsApi,
    Updated,
    Versioned,
    parse_retry_after,
)
from optimist.httpx.client import TRANSPORT_ATTEMPTS, resendable
from optimist.merge import JSON, apply_merge_patch
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.problem import Problem

BASE = "http://api.test"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# -- the server ------------------------------------------------------------------------------


def _problem(
    status: int, detail: str, headers: Mapping[str, str] | None = None, **members: Any
) -> httpx.Response:
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
        if request.method in self.drop:
            self.drop.remove(request.method)
            if request.method != "GET":
                self._handle(request)  # applied, but the answer never arrives
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        response = self.queued.popleft() if self.queued else self._handle(request)
        self.statuses.append(response.status_code)
        return response

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
            return _problem(403, "CSRF token missing or invalid")
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
            return _problem(428, "DELETE requires If-Match")
        state = ResourceState(exists=stored is not None, etag=state_tag)
        outcome = evaluate(preconditions, method, state, comparison=self.comparison)
        tag_headers = {"ETag": str(state_tag)} if state_tag else {}
        if outcome is Outcome.NOT_MODIFIED:
            return httpx.Response(304, headers=tag_headers)
        if outcome is Outcome.PRECONDITION_FAILED:
            return _problem(
                412, "precondition failed", tag_headers, current_etag=tag_headers.get("ETag")
            )
        if stored is None and method in {"GET", "PATCH", "DELETE"}:
            return _problem(404, f"{key} not found")
        if method == "GET":
            assert stored is not None
            return httpx.Response(200, json=self._body(stored[0]), headers=tag_headers)
        if method == "DELETE":
            del self.docs[key]
            return httpx.Response(204)
        body = json.loads(request.content)
        if {"id", "version"} & set(body):
            return _problem(422, "id and version belong to the server")
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


# -- driving both clients the same way --------------------------------------------------------


class Driver(Protocol):
    async def get(self, url: str) -> Versioned: ...
    async def update(self, url: str, change: Change, **options: Any) -> Updated: ...
    async def create(self, url: str, document: JSON, **options: Any) -> Created | Exists: ...
    async def delete(self, url: str, **options: Any) -> None: ...
    async def items(self, url: str, **options: Any) -> list[JSON]: ...
    async def pages(self, url: str, **options: Any) -> list[Page]: ...


@dataclass
class SyncDriver:
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
ITEMS = JsonApi(server_owned=frozenset({"id", "version"}))


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
    ) -> Driver:
        """A client of the rig's kind; ``unconditional`` strips the preconditions off each
        request before it is sent (an httpx request hook), so its writes are blind."""
        hooks = [_strip_preconditions] if unconditional else []
        options: dict[str, Any] = {
            "api": api,
            "backoff": backoff,
            "max_attempts": max_attempts,
            "cache": cache,
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
    return Rig(request.param)


def _strip_preconditions(request: httpx.Request) -> None:
    for name in ("If-Match", "If-None-Match"):
        request.headers.pop(name, None)


def _set(**members: Any) -> Callable[[JSON], JSON]:
    return lambda document: {**document, **members}


# -- reading ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_returns_the_document_and_its_etag(rig: Rig) -> None:
    """A GET gives the document and the entity tag it was served with."""
    tag = rig.server.store("a", {"name": "x"})
    got = await rig.client().get("/items/a")
    assert got == Versioned({"name": "x", "id": "a", "version": 1}, tag)


@pytest.mark.anyio
async def test_second_get_revalidates_and_serves_304_from_cache(rig: Rig) -> None:
    """A repeated GET sends If-None-Match and takes the document from the cache on 304."""
    tag = rig.server.store("a", {"name": "x"})
    client = rig.client()
    first = await client.get("/items/a")
    second = await client.get("/items/a")
    assert second == first
    assert rig.server.sent("GET")[1].headers["If-None-Match"] == str(tag)
    assert rig.server.statuses == [200, 304]


@pytest.mark.anyio
async def test_changed_document_is_fetched_again(rig: Rig) -> None:
    """When the tag no longer matches, the server's new document replaces the cached one."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    await client.get("/items/a")
    tag = rig.server.store("a", {"name": "y"})
    got = await client.get("/items/a")
    assert (got.document["name"], got.etag) == ("y", tag)
    assert rig.server.statuses == [200, 200]


@pytest.mark.anyio
async def test_cached_document_cannot_be_corrupted_by_the_caller(rig: Rig) -> None:
    """Modifying a document the client returned does not change what a 304 serves."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    (await client.get("/items/a")).document["name"] = "scribbled"
    assert (await client.get("/items/a")).document["name"] == "x"


@pytest.mark.anyio
async def test_cache_of_size_zero_never_revalidates(rig: Rig) -> None:
    """``ETagCache(0)`` turns conditional GETs off."""
    rig.server.store("a", {"name": "x"})
    client = rig.client(cache=ETagCache(0))
    await client.get("/items/a")
    await client.get("/items/a")
    assert all("If-None-Match" not in r.headers for r in rig.server.requests)


@pytest.mark.anyio
async def test_missing_resource_raises_resource_not_found(rig: Rig) -> None:
    """A 404 is ResourceNotFound."""
    with pytest.raises(ResourceNotFound):
        await rig.client().get("/items/nope")


# -- updating ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_update_writes_a_merge_patch_with_if_match(rig: Rig) -> None:
    """An update PATCHes only what changed, with If-Match set to the tag it read."""
    tag = rig.server.store("a", {"name": "x", "size": 1})
    updated = await rig.client().update("/items/a", _set(size=2))
    (patch,) = rig.server.sent("PATCH")
    assert patch.headers["If-Match"] == str(tag)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.content) == {"size": 2}
    assert updated.document == rig.server.doc("a")
    assert updated.etag == rig.server.docs["a"][1]
    assert updated.attempts == 1


@pytest.mark.anyio
async def test_update_accepts_a_merge_patch(rig: Rig) -> None:
    """A mapping is applied as a JSON Merge Patch: null removes a member."""
    rig.server.store("a", {"name": "x", "note": "old"})
    await rig.client().update("/items/a", {"name": "y", "note": None})
    assert rig.server.doc("a") == {"name": "y", "id": "a", "version": 2}


@pytest.mark.anyio
async def test_update_that_changes_nothing_sends_nothing(rig: Rig) -> None:
    """A change that leaves the document as it was needs no write."""
    rig.server.store("a", {"name": "x"})
    updated = await rig.client().update("/items/a", _set(name="x"))
    assert updated.attempts == 0
    assert rig.server.sent("PATCH") == []


@pytest.mark.anyio
async def test_update_can_put_the_whole_document(rig: Rig) -> None:
    """With ``write=PUT`` the whole document is sent, without server-owned members."""
    rig.server.store("a", {"name": "x", "size": 1})
    await rig.client().update("/items/a", _set(size=2), write=PUT)
    (put,) = rig.server.sent("PUT")
    assert json.loads(put.content) == {"name": "x", "size": 2}
    assert put.headers["Content-Type"] == "application/json"


@pytest.mark.anyio
async def test_change_function_cannot_modify_what_was_read(rig: Rig) -> None:
    """A change that mutates its argument in place still merges against the true base."""
    rig.server.store("a", {"name": "x", "size": 1})

    def grow(document: JSON) -> JSON:
        document["size"] += 1
        if document["size"] == 2:  # the first call only
            rig.server.store("a", {"name": "theirs"})
        return document

    await rig.client().update("/items/a", grow)
    assert rig.server.doc("a")["size"] == 2
    assert rig.server.doc("a")["name"] == "theirs"


@pytest.mark.anyio
async def test_412_refetches_merges_and_retries(rig: Rig) -> None:
    """Another client's write to another field is kept, and so is ours."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})  # lands between our GET and our write
        return {**document, "size": 2}

    updated = await rig.client().update("/items/a", mine)
    assert rig.server.statuses == [200, 412, 200, 200]
    assert rig.server.doc("a") == {"name": "theirs", "size": 2, "id": "a", "version": 3}
    assert updated.document == rig.server.doc("a")
    assert updated.attempts == 2


@pytest.mark.anyio
async def test_412_body_is_not_taken_for_the_document(rig: Rig) -> None:
    """After a 412 the document is fetched again with a GET, never read from the problem."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        tag = rig.server.store("a", {"other": 1})
        rig.server.queued.append(
            _problem(412, "changed", {"ETag": str(tag)}, current_etag=str(tag), name="bogus")
        )
        return {**document, "size": 5}

    await rig.client().update("/items/a", mine)
    assert [r.method for r in rig.server.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert rig.server.doc("a") == {"name": "x", "size": 5, "other": 1, "id": "a", "version": 3}


@pytest.mark.anyio
async def test_same_field_conflict_raises_merge_conflict_with_both_values(rig: Rig) -> None:
    """Both sides changing one field differently raise MergeConflict holding both values."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})
        return {**document, "name": "mine"}

    with pytest.raises(MergeConflict) as raised:
        await rig.client().update("/items/a", mine)
    conflict = raised.value
    assert conflict.paths == (("name",),)
    assert (conflict.base["name"], conflict.theirs["name"], conflict.mine["name"]) == (
        "x",
        "theirs",
        "mine",
    )
    assert rig.server.doc("a")["name"] == "theirs"


@pytest.mark.anyio
async def test_reapply_recomputes_the_change_on_the_current_document(rig: Rig) -> None:
    """With OnConflict.REAPPLY an increment that lost the race is computed again."""
    rig.server.store("a", {"count": 0})
    calls = 0

    def increment(document: JSON) -> JSON:
        nonlocal calls
        calls += 1
        if calls == 1:
            rig.server.store("a", {"count": 1})  # someone else incremented meanwhile
        return {**document, "count": document["count"] + 1}

    await rig.client().update("/items/a", increment, on_conflict=OnConflict.REAPPLY)
    assert rig.server.doc("a")["count"] == 2
    assert calls == 2


@pytest.mark.anyio
async def test_attempts_are_bounded(rig: Rig) -> None:
    """A resource that changes before every write ends in PreconditionFailed after the bound."""
    rig.server.store("a", {"size": 1})
    rig.server.on_write = lambda: rig.server.store("a", {"n": 0})
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client(max_attempts=4).update("/items/a", _set(size=2))
    assert len(rig.server.sent("PATCH")) == 4
    assert raised.value.current_etag == rig.server.docs["a"][1]


@pytest.mark.anyio
async def test_backoff_grows_between_attempts(rig: Rig) -> None:
    """The waits between conflicting attempts grow exponentially."""
    rig.server.store("a", {"size": 1})
    rig.server.on_write = lambda: rig.server.store("a", {"n": 0})
    with pytest.raises(PreconditionFailed):
        await rig.client(max_attempts=4).update("/items/a", _set(size=2))
    assert rig.delays == pytest.approx([0.02, 0.04, 0.08])


@pytest.mark.anyio
async def test_server_refusing_the_etag_it_serves_fails_at_once(rig: Rig) -> None:
    """A weak tag under strong comparison can never match: no pointless retries."""
    rig.server = FakeServer(weak=True, comparison=Comparison.STRONG)
    rig.server.store("a", {"size": 1})
    with pytest.raises(PreconditionFailed):
        await rig.client().update("/items/a", _set(size=2))
    assert len(rig.server.sent("PATCH")) == 1
    assert rig.delays == []


@pytest.mark.anyio
async def test_weak_tags_work_where_the_server_compares_weakly(rig: Rig) -> None:
    """The admin profile's weak tags are sent back as they came (W/"...")."""
    rig.server = FakeServer(weak=True, comparison=Comparison.WEAK)
    tag = rig.server.store("a", {"size": 1})
    await rig.client().update("/items/a", _set(size=2))
    assert rig.server.sent("PATCH")[0].headers["If-Match"] == f'W/"{tag.opaque}"'
    assert rig.server.doc("a")["size"] == 2


@pytest.mark.anyio
async def test_update_without_an_etag_refuses_to_write_blind(rig: Rig) -> None:
    """A document served without an ETag cannot be updated safely: nothing is written."""
    rig.server.queued.append(httpx.Response(200, json={"size": 1}))
    with pytest.raises(InvalidInput):
        await rig.client().update("/items/a", _set(size=2))
    assert rig.server.sent("PATCH") == []


@pytest.mark.anyio
async def test_unexpected_status_raises_response_error_with_the_problem(rig: Rig) -> None:
    """A 422 is a ResponseError carrying its status and problem details."""
    rig.server.store("a", {"size": 1})
    with pytest.raises(ResponseError) as raised:
        await rig.client(api=JsonApi()).update("/items/a", _set(version=7))
    assert raised.value.status == 422
    assert raised.value.problem is not None
    assert raised.value.problem["detail"] == "id and version belong to the server"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("respond", "error"),
    [
        (lambda: _problem(404, "gone"), ResourceNotFound),
        (lambda: _problem(412, "no"), PreconditionFailed),
        (lambda: _problem(428, "say which version"), PreconditionRequired),
        (lambda: _problem(500, "boom"), ResponseError),
        (lambda: httpx.Response(200, text="<html>"), ResponseError),
        (lambda: httpx.Response(200, json=[1, 2]), ResponseError),
    ],
    ids=["404", "412", "428", "500", "not-json", "no-document"],
)
async def test_read_failures_are_optimist_errors(
    rig: Rig, respond: Callable[[], httpx.Response], error: type[Exception]
) -> None:
    """Each way a read can fail raises the error of optimist.errors that stands for it."""
    rig.server.queued.append(respond())
    with pytest.raises(error):
        await rig.client(api=ProjectsApi()).get("/items/a")


@pytest.mark.anyio
async def test_write_answered_without_a_body_gives_what_was_sent(rig: Rig) -> None:
    """A 204 to a write is a success; the document is the one written, the tag the new one."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.queued.append(httpx.Response(204, headers={"ETag": '"v9"'}))
        return {**document, "size": 2}

    updated = await rig.client().update("/items/a", mine)
    assert updated == Updated({"size": 2, "id": "a", "version": 1}, EntityTag("v9"), 1)


@pytest.mark.anyio
async def test_412_without_a_new_etag_and_the_same_document_fails_at_once(rig: Rig) -> None:
    """A 412 after which the server still serves the tag we sent cannot be retried away."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.queued.append(httpx.Response(412))
        return {**document, "size": 2}

    with pytest.raises(PreconditionFailed):
        await rig.client().update("/items/a", mine)
    assert [r.method for r in rig.server.requests] == ["GET", "PATCH", "GET"]


@pytest.mark.anyio
async def test_412_reports_the_current_etag_from_the_body(rig: Rig) -> None:
    """Without an ETag header, a 412's ``current_etag`` member names the current version."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(_problem(412, "changed", current_etag='"v42"'))
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client().delete("/items/a", etag='"v1"')
    assert raised.value.current_etag == EntityTag("v42")


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
async def test_busy_server_is_retried_after_the_seconds_it_asks(rig: Rig, status: int) -> None:
    """A 429 or 503 with ``Retry-After: 3`` is retried after exactly 3 seconds."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(httpx.Response(status, headers={"Retry-After": "3"}))
    got = await rig.client().get("/items/a")
    assert got.document["size"] == 1
    assert rig.delays == [3.0]


@pytest.mark.anyio
async def test_retry_after_http_date_is_honoured(rig: Rig) -> None:
    """A Retry-After HTTP-date is waited for until that moment."""
    now = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
    rig.server.store("a", {"size": 1})
    later = http_date(now + timedelta(seconds=7))
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": later}))
    await rig.client(backoff=Backoff(jitter=0.0, now=lambda: now)).get("/items/a")
    assert rig.delays == [7.0]


@pytest.mark.anyio
async def test_retry_after_on_412_replaces_the_backoff(rig: Rig) -> None:
    """A 412 that says Retry-After is refetched after that wait, not the computed one."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        tag = str(rig.server.store("a", {"other": 1}))
        rig.server.queued.append(
            _problem(412, "changed", {"ETag": tag, "Retry-After": "2"}, current_etag=tag)
        )
        return {**document, "size": 2}

    await rig.client().update("/items/a", mine)
    assert rig.delays == [2.0]
    assert rig.server.doc("a")["size"] == 2


@pytest.mark.anyio
async def test_retry_after_beyond_the_limit_gives_up(rig: Rig) -> None:
    """A wait longer than ``max_retry_after`` ends the operation instead of stalling it."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": "3600"}))
    with pytest.raises(ResponseError) as raised:
        await rig.client().get("/items/a")
    assert raised.value.status == 503
    assert rig.delays == []


@pytest.mark.anyio
async def test_busy_retries_share_the_attempt_bound(rig: Rig) -> None:
    """A server that stays busy is tried ``max_attempts`` times, then a ResponseError."""
    rig.server.queued.extend(httpx.Response(429) for _ in range(5))
    with pytest.raises(ResponseError) as raised:
        await rig.client(max_attempts=3).get("/items/a")
    assert raised.value.status == 429
    assert len(rig.server.requests) == 3
    assert rig.delays == pytest.approx([0.02, 0.04])


# -- create-if-absent and conditional delete ---------------------------------------------------


@pytest.mark.anyio
async def test_create_if_absent_creates(rig: Rig) -> None:
    """``If-None-Match: *`` on a free key creates, and gives the tag and location."""
    outcome = await rig.client().create("/items/new", {"name": "x"})
    assert rig.server.sent("PUT")[0].headers["If-None-Match"] == "*"
    assert outcome == Created(rig.server.doc("new"), rig.server.docs["new"][1], f"{BASE}/items/new")


@pytest.mark.anyio
async def test_create_if_absent_reports_an_existing_resource(rig: Rig) -> None:
    """On a taken key the server answers 412 and the outcome is Exists, nothing overwritten."""
    tag = rig.server.store("a", {"name": "first"})
    outcome = await rig.client().create("/items/a", {"name": "second"})
    assert outcome == Exists(tag)
    assert rig.server.doc("a")["name"] == "first"


@pytest.mark.anyio
async def test_create_on_a_server_without_preconditions_raises_resource_exists(rig: Rig) -> None:
    """A server answering 409 to a taken key gives ResourceExists."""
    rig.server.queued.append(_problem(409, "taken"))
    with pytest.raises(ResourceExists):
        await rig.client().create("/items/a", {"name": "x"}, method="POST")


@pytest.mark.anyio
async def test_delete_sends_the_etag_given(rig: Rig) -> None:
    """A delete with an ETag deletes the resource if it is still at that version."""
    tag = rig.server.store("a", {"name": "x"})
    await rig.client().delete("/items/a", etag=tag)
    assert "a" not in rig.server.docs
    assert rig.server.sent("DELETE")[0].headers["If-Match"] == str(tag)


@pytest.mark.anyio
async def test_delete_of_a_changed_resource_raises_precondition_failed(rig: Rig) -> None:
    """A delete with a stale ETag is refused and the resource stays."""
    old = rig.server.store("a", {"name": "x"})
    new = rig.server.store("a", {"name": "y"})
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client().delete("/items/a", etag=str(old))
    assert raised.value.current_etag == new
    assert "a" in rig.server.docs


@pytest.mark.anyio
async def test_delete_without_an_etag_reads_the_current_one(rig: Rig) -> None:
    """Without an ETag the client reads the current one first and deletes conditionally."""
    tag = rig.server.store("a", {"name": "x"})
    await rig.client().delete("/items/a")
    assert [r.method for r in rig.server.requests] == ["GET", "DELETE"]
    assert rig.server.requests[1].headers["If-Match"] == str(tag)


@pytest.mark.anyio
async def test_delete_forgets_the_cached_document(rig: Rig) -> None:
    """After a delete, a GET is not answered from the cache."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    await client.delete("/items/a")
    with pytest.raises(ResourceNotFound):
        await client.get("/items/a")
    assert "If-None-Match" not in rig.server.requests[-1].headers


# -- pagination ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_items_iterates_across_pages(rig: Rig) -> None:
    """Every item of a paginated list is returned once, in order, across pages."""
    for key in "abcde":
        rig.server.store(key, {})
    items = await rig.client().items("/items", params={"limit": 2})
    assert [item["id"] for item in items] == list("abcde")
    cursors = [r.url.params.get("cursor") for r in rig.server.requests]
    assert cursors == [None, "b", "d"]
    assert all(r.url.params["limit"] == "2" for r in rig.server.requests)


@pytest.mark.anyio
async def test_pages_end_on_an_empty_list(rig: Rig) -> None:
    """An empty list is one empty page."""
    assert await rig.client().pages("/items") == [Page((), None)]


@pytest.mark.anyio
async def test_a_cursor_that_does_not_advance_is_an_error(rig: Rig) -> None:
    """A server handing back the cursor it was given would loop forever: ResponseError."""
    rig.server.queued.extend(
        [httpx.Response(200, json={"data": [1], "next_cursor": "c1"}),
         httpx.Response(200, json={"data": [2], "next_cursor": "c1"})]
    )  # fmt: skip
    with pytest.raises(ResponseError):
        await rig.client().items("/items")


@pytest.mark.anyio
async def test_a_body_that_is_not_a_page_is_an_error(rig: Rig) -> None:
    """A list answer without the page members raises ResponseError, not KeyError."""
    rig.server.queued.append(httpx.Response(200, json={"items": []}))
    with pytest.raises(ResponseError):
        await rig.client().items("/items")


# -- the reference service's APIs -----------------------------------------------------------------


@pytest.mark.anyio
async def test_projects_api_unwraps_the_envelope_and_puts_changes(rig: Rig) -> None:
    """Projects: documents come in ``{"result": ...}``; a PUT carries changed fields only."""
    rig.server = FakeServer(envelope=True, partial_put=True)
    rig.server.store("p", {"name": "Sign", "status": "draft", "etag": "v1"})
    api = ProjectsApi(server_owned=frozenset({"id", "version", "etag"}))
    updated = await rig.client(api=api).update("/items/p", _set(name="Main Street Sign"))
    (put,) = rig.server.sent("PUT")
    assert json.loads(put.content) == {"name": "Main Street Sign"}
    assert updated.document == rig.server.doc("p")


@pytest.mark.anyio
async def test_projects_api_paginates_the_envelope(rig: Rig) -> None:
    """Projects lists are ``{"result": {"items": [...], "next_cursor": ...}}``."""
    rig.server = FakeServer(envelope=True)
    for key in "abc":
        rig.server.store(key, {})
    items = await rig.client(api=ProjectsApi()).items("/items")
    assert [item["id"] for item in items] == ["a", "b", "c"]


def test_projects_api_never_writes_back_the_body_etag() -> None:
    """The bare ``etag`` member, ids and timestamps of a project are the server's."""
    project = {"project_id": "proj_1", "name": "n", "status": "draft", "etag": "abc",
               "created_at": "t", "updated_at": "t"}  # fmt: skip
    assert ProjectsApi().writable(project) == {"name": "n", "status": "draft"}


@pytest.mark.anyio
async def test_admin_api_sends_identity_and_csrf_token(rig: Rig) -> None:
    """Admin: identity on every request, a CSRF token fetched once for writes."""
    rig.server = FakeServer(csrf=True)
    rig.server.store("u", {"role": "editor"})
    api = AdminApi(tenant="1", role="admin", server_owned=frozenset({"id", "version"}))
    client = rig.client(api=api)
    await client.update("/items/u", _set(role="admin"))
    await client.update("/items/u", _set(role="viewer"))
    paths = [r.url.path for r in rig.server.requests]
    assert paths.count("/admin/csrf-token") == 1
    assert all(r.headers["X-Tenant-Id"] == "1" for r in rig.server.requests)
    assert all(r.headers["X-User-Role"] == "admin" for r in rig.server.requests)
    assert all(r.headers["X-CSRF-Token"] == "token-1" for r in rig.server.sent("PATCH"))
    assert rig.server.doc("u")["role"] == "viewer"


@pytest.mark.anyio
async def test_admin_api_refreshes_an_expired_csrf_token(rig: Rig) -> None:
    """A 403 on a write fetches a new token and sends the write again, once."""
    rig.server = FakeServer(csrf=True)
    rig.server.store("u", {"role": "editor"})
    client = rig.client(
        api=AdminApi(tenant="1", role="admin", server_owned=frozenset({"id", "version"}))
    )
    await client.update("/items/u", _set(role="admin"))
    rig.server.csrf_token = "token-2"
    await client.update("/items/u", _set(role="viewer"))
    assert [r.headers["X-CSRF-Token"] for r in rig.server.sent("PATCH")] == [
        "token-1",
        "token-2",
        "token-2",
    ]
    assert rig.server.doc("u")["role"] == "viewer"


@pytest.mark.anyio
async def test_sessions_api_sends_the_vector_clock_etag_back(rig: Rig) -> None:
    """Sessions: the clock-bearing ETag goes back verbatim, the clock member never does."""
    rig.server.store("s", {"status": "scheduled", "vector_clock": {"node-a": 3}})
    tag = EntityTag("vc.bm9kZS1hOjM")
    rig.server.docs["s"] = (rig.server.docs["s"][0], tag)
    api = SessionsApi(server_owned=frozenset({"id", "version", "vector_clock"}))
    await rig.client(api=api).update("/items/s", _set(status="in_progress"))
    (patch,) = rig.server.sent("PATCH")
    assert patch.headers["If-Match"] == '"vc.bm9kZS1hOjM"'
    assert json.loads(patch.content) == {"status": "in_progress"}


# -- concurrency ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_clients_changing_different_fields_lose_nothing(rig: Rig) -> None:
    """Eight clients each incrementing its own field ten times: every increment is kept."""
    writers, rounds = 8, 10
    rig.server.store("shared", {})
    backoff = Backoff(initial=0.001, maximum=0.01, jitter=0.002)

    async def work(field_name: str) -> None:
        client = rig.client(backoff=backoff, max_attempts=200, real_sleep=True)
        for _ in range(rounds):
            await client.update(
                "/items/shared", lambda d: {**d, field_name: d.get(field_name, 0) + 1}
            )

    if rig.mode == "sync":
        threads = [threading.Thread(target=anyio.run, args=(work, f"f{n}")) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        async with anyio.create_task_group() as group:
            for n in range(writers):
                group.start_soon(work, f"f{n}")
    document = rig.server.doc("shared")
    assert {f"f{n}": document.get(f"f{n}") for n in range(writers)} == {
        f"f{n}": rounds for n in range(writers)
    }
    assert 412 in rig.server.statuses  # the clients really raced


# -- backoff ------------------------------------------------------------------------------------

_NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (" 12 ", 12.0),
        (http_date(_NOW + timedelta(seconds=90)), 90.0),
        (http_date(_NOW - timedelta(seconds=90)), 0.0),
        ("Wed, 15 Jan 2025 10:30:05 GMT", 5.0),
        ("-1", None),
        ("1.5", None),
        ("٣", None),
        ("soon", None),
        (None, None),
    ],
    ids=["seconds", "zero", "whitespace", "date-ahead", "date-past", "imf-fixdate",
         "negative", "fraction", "arabic-digit", "garbage", "absent"],
)  # fmt: skip
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; anything else is ignored."""
    assert parse_retry_after(value, _NOW) == seconds


def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    """Retry n waits initial * multiplier ** (n - 1) plus jitter, never above the maximum."""
    highest = Backoff(initial=0.1, maximum=1.0, jitter=0.5, uniform=lambda a, b: b)
    lowest = Backoff(initial=0.1, maximum=1.0, jitter=0.5, uniform=lambda a, b: a)
    assert [lowest.delay(n) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    assert [highest.delay(n) for n in (1, 2, 3)] == pytest.approx([0.6, 0.7, 0.9])
    assert highest.delay(10_000) == 1.0


def test_default_backoff_jitters_each_delay() -> None:
    """Without an injected source, delays are spread between the bounds."""
    delays = {Backoff().delay(1) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.02 <= d <= 0.12 for d in delays)


@pytest.mark.parametrize(
    "options",
    [{"initial": -1.0}, {"jitter": -0.1}, {"multiplier": 0.5}],
    ids=["negative-initial", "negative-jitter", "shrinking"],
)
def test_backoff_rejects_nonsense(options: dict[str, Any]) -> None:
    """Negative durations and a shrinking multiplier are refused."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**options)


def test_cache_forgets_the_least_recently_used() -> None:
    """A full cache drops the entry used longest ago."""
    cache = ETagCache(2)
    tag = EntityTag("t")
    cache.put("a", 1, tag)
    cache.put("b", 2, tag)
    assert cache.get("a") is not None
    cache.put("c", 3, tag)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (
        Versioned(1, tag),
        None,
        Versioned(3, tag),
    )


def test_client_closes_the_httpx_client_it_made() -> None:
    """A Client without an httpx client makes one and closes it on exit; a given one stays open."""
    given = httpx.Client()
    with Client() as made, Client(given):
        pass
    assert made.http.is_closed
    assert not given.is_closed
    given.close()


@pytest.mark.anyio
async def test_async_client_closes_the_httpx_client_it_made() -> None:
    """An AsyncClient without an httpx client makes one and closes it on exit."""
    given = httpx.AsyncClient()
    async with AsyncClient() as made, AsyncClient(given):
        pass
    assert made.http.is_closed
    assert not given.is_closed
    await given.aclose()


# -- transport failures -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_dropped_read_is_sent_again(rig: Rig) -> None:
    """A GET whose connection drops is sent again: reads are safe to repeat."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = ["GET"]
    client = rig.client()
    assert (await client.get("/items/a")).document["n"] == 1
    assert [r.method for r in rig.server.requests] == ["GET", "GET"]


@pytest.mark.anyio
async def test_dropped_conditional_write_is_resent_and_applies_once(rig: Rig) -> None:
    """A conditional write lost after it applied is resent; its 412 resolves to done."""
    rig.server.store("a", {"n": 1, "m": 1})
    rig.server.drop = ["PATCH"]
    client = rig.client()
    await client.update("/items/a", _set(n=2))
    document = (await client.get("/items/a")).document
    assert (document["n"], document["m"]) == (2, 1)
    writes = [r for r in rig.server.requests if r.method == "PATCH"]
    assert all("if-match" in r.headers for r in writes)
    assert len(writes) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_dropped_unconditional_write_is_not_resent(rig: Rig, method: str) -> None:
    """An unconditional write lost in transport is sent once and its transport error raised."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = [method]
    client = rig.client(unconditional=True)
    write = (
        client.update("/items/a", _set(n=2))
        if method == "PATCH"
        else client.create("/items/b", {"n": 1}, method="POST")
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await write
    writes = rig.server.sent(method)
    assert len(writes) == 1
    assert not {"if-match", "if-none-match"} & set(writes[0].headers)


@pytest.mark.anyio
async def test_transport_resends_are_bounded(rig: Rig) -> None:
    """A request lost in transport every time is sent TRANSPORT_ATTEMPTS times, then fails."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = ["GET"] * TRANSPORT_ATTEMPTS
    with pytest.raises(httpx.RemoteProtocolError):
        await rig.client().get("/items/a")
    assert [r.method for r in rig.server.requests] == ["GET"] * TRANSPORT_ATTEMPTS


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("PATCH", {"If-Match": '"1"'}, True),
        ("PUT", {"If-None-Match": "*"}, True),
        ("DELETE", {"If-Match": '"1"'}, True),
        ("POST", {}, False),
        ("PATCH", {}, False),
    ],
    ids=["get", "head", "conditional-patch", "create-if-absent", "conditional-delete",
         "post", "unconditional-patch"],
)  # fmt: skip
def test_only_safe_or_conditional_requests_are_resendable(
    method: str, headers: dict[str, str], expected: bool
) -> None:
    """Safe methods and conditional writes may be resent; an unconditional write may not."""
    assert resendable(httpx.Request(method, BASE, headers=headers)) is expected

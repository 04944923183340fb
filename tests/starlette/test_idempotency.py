"""optimist.starlette.idempotency: Idempotency-Key on Starlette endpoints, both backends.

The counter API of :mod:`tests.support.idempotent_app` runs in-process; every response
passes httplint. A resend gets the first answer byte for byte, marked; a reuse is 422; a
malformed or missing required key is 400; a kept 412 comes back; 5xx and the request's
own faults are not kept; scopes keep tenants apart; duplicates raced by tasks apply once.
tests/fastapi/test_idempotency.py runs these same tests on the FastAPI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from optimist.idempotency import REPLAYED_HEADER, Fingerprint, IdempotencyKey
from optimist.sqlalchemy import create, create_engine, get
from optimist.sqlalchemy.idempotency import idempotent
from tests.starlette.support import assert_problem
from tests.support.conformance import check_response
from tests.support.databases import database_url, postgres_server_url, postgres_url
from tests.support.idempotent_app import (
    DOCS,
    Effects,
    counters,
    keys_for,
    metadata,
    starlette_app,
)

__all__ = ["database_url", "postgres_server_url", "postgres_url"]

pytestmark = pytest.mark.anyio

IDENTITY = {"X-Tenant": "tenant-1", "X-Role": "editor"}
DUPLICATES = 8


def new_key() -> str:
    """A fresh key, as a client sends it: an sf-string."""
    return IdempotencyKey(str(uuid.uuid4())).serialize()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The schema on a fresh database, with the counter ``c1`` at 0."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await create(engine, counters, {"id": "c1", "counter": 0})
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def effects() -> Effects:
    """The writes the app ran."""
    return Effects()


@pytest.fixture
def build() -> Callable[..., Any]:
    """The app under test."""
    return starlette_app


@pytest.fixture
def invalid_body_status() -> int:
    """What the app answers a body it cannot use: InvalidInput's 400."""
    return 400


@pytest.fixture
async def client(
    engine: AsyncEngine, effects: Effects, build: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, as tenant-1's editor, every response checked by httplint."""
    transport = httpx.ASGITransport(app=build(engine, effects), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers=IDENTITY,
        event_hooks={"response": [check_response]},
    ) as client:
        yield client


async def etag_of(client: httpx.AsyncClient, key: str = "c1") -> str:
    """The counter's current ETag."""
    response = await client.get(f"/counters/{key}")
    assert response.status_code == 200
    return response.headers["etag"]


async def counter(engine: AsyncEngine, key: str = "c1") -> int:
    """The counter's value in the database."""
    value: int = (await get(engine, counters, key))["counter"]
    return value


def increment(
    client: httpx.AsyncClient, etag: str, key: str | None, by: Any = 1, **headers: str
) -> Any:
    """PATCH c1 by ``by`` under ``etag``, with the Idempotency-Key ``key`` if any."""
    fields = {"If-Match": etag, **headers}
    if key is not None:
        fields["Idempotency-Key"] = key
    return client.patch("/counters/c1", json={"by": by}, headers=fields)


def same_answer(first: httpx.Response, replay: httpx.Response) -> None:
    """``replay`` is ``first`` again, byte for byte, marked as a replay."""
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert replay.status_code == first.status_code
    assert replay.content == first.content
    for name in ("content-type", "etag", "last-modified", "location", "cache-control"):
        assert replay.headers.get(name) == first.headers.get(name), name


async def test_resend_after_commit_replays(
    client: httpx.AsyncClient, engine: AsyncEngine, effects: Effects
) -> None:
    """A resend whose first answer was lost gets that 2xx again, not 412; applied once."""
    key, etag = new_key(), await etag_of(client)
    first = await increment(client, etag, key)
    assert first.status_code == 200
    resent = await increment(client, etag, key)  # its If-Match is stale by now
    same_answer(first, resent)
    assert await counter(engine) == 1
    assert effects.applied == ["increment c1 by 1"]


async def test_create_replays_its_location(client: httpx.AsyncClient, effects: Effects) -> None:
    """A resent create with a server-assigned id answers the same 201 and Location."""
    key = new_key()
    headers = {"Idempotency-Key": key}
    first = await client.post("/notes", json={"text": "hello"}, headers=headers)
    assert first.status_code == 201
    resent = await client.post("/notes", json={"text": "hello"}, headers=headers)
    same_answer(first, resent)
    assert resent.headers["location"] == f"/notes/{first.json()['id']}"
    assert len(effects.applied) == 1


async def test_delete_replays_its_204(client: httpx.AsyncClient, effects: Effects) -> None:
    """A resent DELETE answers 204 again, not 404 or 412."""
    key, etag = new_key(), await etag_of(client)
    headers = {"If-Match": etag, "Idempotency-Key": key}
    first = await client.delete("/counters/c1", headers=headers)
    assert first.status_code == 204
    same_answer(first, await client.delete("/counters/c1", headers=headers))
    assert effects.applied == ["delete c1"]


async def test_key_reused_for_another_request_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The key with another body is 422 problem+json naming the difference."""
    key, etag = new_key(), await etag_of(client)
    assert (await increment(client, etag, key, by=1)).status_code == 200
    problem = assert_problem(await increment(client, etag, key, by=2), 422)
    assert problem["differences"] == ["body"]
    assert problem["type"] == DOCS
    assert problem["title"] == "Idempotency-Key is already used"
    assert await counter(engine) == 1


async def test_malformed_key_is_400(client: httpx.AsyncClient, effects: Effects) -> None:
    """A key that is no sf-string is 400, and nothing runs."""
    problem = assert_problem(await increment(client, await etag_of(client), "not-a-string"), 400)
    assert problem["invalid_params"][0]["name"] == "Idempotency-Key"
    assert effects.applied == []


async def test_missing_required_key_is_400(client: httpx.AsyncClient, effects: Effects) -> None:
    """A route that requires a key refuses a request without one: 400."""
    problem = assert_problem(await client.post("/notes", json={"text": "x"}), 400)
    assert problem["invalid_params"] == [{"name": "Idempotency-Key", "reason": "required"}]
    assert effects.applied == []


async def test_optional_key_may_be_left_out(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Without a key, an optional route writes as it would without idempotency."""
    response = await increment(client, await etag_of(client), None)
    assert response.status_code == 200
    assert REPLAYED_HEADER not in response.headers
    assert await counter(engine) == 1


async def test_412_is_kept_and_replayed(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """A write that met 412 meets the same 412 when resent, though the tag matches now."""
    stale, key = await etag_of(client), new_key()
    assert (await increment(client, stale, None)).status_code == 200
    first = await increment(client, stale, key)
    assert_problem(first, 412)
    same_answer(first, await increment(client, stale, key))
    assert await counter(engine) == 1


async def test_404_is_kept(client: httpx.AsyncClient) -> None:
    """A write on a missing resource is 404, and so is its replay."""
    key = new_key()
    headers = {"If-Match": '"x"', "Idempotency-Key": key}
    first = await client.delete("/counters/missing", headers=headers)
    assert_problem(first, 404)
    same_answer(first, await client.delete("/counters/missing", headers=headers))


async def test_5xx_is_not_kept(
    client: httpx.AsyncClient, engine: AsyncEngine, effects: Effects
) -> None:
    """A 503 rolls the write back and keeps nothing: a resend runs again."""
    headers = {"Idempotency-Key": new_key()}
    for _ in range(2):
        response = await client.post("/counters/c1/broken", headers=headers)
        assert_problem(response, 503)
        assert REPLAYED_HEADER not in response.headers
    assert effects.applied == ["broken c1", "broken c1"]
    assert await counter(engine) == 0


async def test_invalid_body_is_not_kept(
    client: httpx.AsyncClient, engine: AsyncEngine, invalid_body_status: int
) -> None:
    """A body the route refuses keeps nothing: the corrected request may use the key."""
    key, etag = new_key(), await etag_of(client)
    assert_problem(await increment(client, etag, key, by="x"), invalid_body_status)
    assert (await increment(client, etag, key, by=1)).status_code == 200
    assert await counter(engine) == 1


async def test_missing_precondition_is_not_kept(client: httpx.AsyncClient) -> None:
    """A 428 (If-Match missing) keeps nothing: the request with If-Match may use the key."""
    key = new_key()
    refused = await client.patch("/counters/c1", json={"by": 1}, headers={"Idempotency-Key": key})
    assert_problem(refused, 428)
    assert (await increment(client, await etag_of(client), key)).status_code == 200


async def test_422_of_a_reuse_is_not_kept(client: httpx.AsyncClient) -> None:
    """The key's own 422 changes nothing: the first request's answer is still replayed."""
    key, etag = new_key(), await etag_of(client)
    first = await increment(client, etag, key, by=1)
    assert_problem(await increment(client, etag, key, by=2), 422)
    same_answer(first, await increment(client, etag, key, by=1))


async def test_scopes_keep_identities_apart(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """One key under another tenant or role is another key: each request applies."""
    key = new_key()
    for identity in ({}, {"X-Tenant": "tenant-2"}, {"X-Role": "admin"}):
        response = await increment(client, await etag_of(client), key, **identity)
        assert response.status_code == 200
        assert REPLAYED_HEADER not in response.headers
    assert await counter(engine) == 3


async def test_concurrent_duplicates_apply_once(
    client: httpx.AsyncClient, engine: AsyncEngine, effects: Effects
) -> None:
    """Duplicates raced by tasks: applied once, and every one gets the same answer."""
    key, etag = new_key(), await etag_of(client)
    answers = await asyncio.gather(*(increment(client, etag, key) for _ in range(DUPLICATES)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert len({answer.headers["etag"] for answer in answers}) == 1
    assert sum(REPLAYED_HEADER not in answer.headers for answer in answers) == 1
    assert await counter(engine) == 1
    assert effects.applied == ["increment c1 by 1"]


# SQLite runs one writer at a time: there a duplicate waits in BEGIN IMMEDIATE instead.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_request_in_flight_is_409(
    engine: AsyncEngine, effects: Effects, build: Callable[..., Any]
) -> None:
    """A duplicate that outwaits the first request's claim is 409 problem+json."""
    key = IdempotencyKey(str(uuid.uuid4()))
    transport = httpx.ASGITransport(app=build(engine, effects, wait=0.2))
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers=IDENTITY,
            event_hooks={"response": [check_response]},
        ) as client,
        idempotent(
            engine, scope=("tenant-1", "editor"), key=key, fingerprint=Fingerprint.of("POST", "/")
        ) as held,
    ):
        headers = {"Idempotency-Key": key.serialize()}
        response = await client.post("/notes", json={"text": "x"}, headers=headers)
        await held.keep(503)  # frees the key: nothing of the held request is kept
    problem = assert_problem(response, 409)
    assert problem["title"] == "A request is outstanding for this Idempotency-Key"
    assert problem["idempotency_key"] == key.value
    assert effects.applied == []


async def test_identity_comes_before_the_key(client: httpx.AsyncClient) -> None:
    """Without identity, a malformed key is a 401 first: the scope needs the identity."""
    del client.headers["X-Tenant"]
    response = await increment(client, '"x"', "not-a-string")
    assert_problem(response, 401)


async def test_missing_resource_comes_before_the_key(client: httpx.AsyncClient) -> None:
    """A malformed key on a missing resource is its 404 first (RFC 9110 §13.2.1)."""
    response = await client.patch(
        "/counters/missing",
        json={"by": 1},
        headers={"If-Match": '"x"', "Idempotency-Key": "not-a-string"},
    )
    assert_problem(response, 404)


async def test_safe_methods_ignore_the_key(client: httpx.AsyncClient) -> None:
    """A GET with a malformed key is answered: safe methods carry none."""
    response = await client.get("/counters/c1", headers={"Idempotency-Key": "not-a-string"})
    assert response.status_code == 200


def _patch_request(**headers: str) -> Request:
    """A PATCH of c1 as tenant-1, with ``headers``, its body empty."""
    fields = [(k.lower().encode(), v.encode()) for k, v in {**IDENTITY, **headers}.items()]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "PATCH", "path": "/counters/c1", "headers": fields}
    return Request({**scope, "query_string": b"", "raw_path": b"/counters/c1"}, receive)


async def test_attempt_on_enters_nothing_without_a_key(engine: AsyncEngine) -> None:
    """A request without a key gets its write on the bind, and nothing is entered."""
    entered: list[object] = []

    async def enter(attempt: Any) -> Any:
        entered.append(attempt)
        return await attempt.__aenter__()

    write = await keys_for(engine).attempt_on(_patch_request(), enter)
    assert write.key is None
    assert write.connection is engine
    assert entered == []


async def test_attempt_on_enters_the_claim_of_a_key(engine: AsyncEngine) -> None:
    """A request with a key is claimed through ``enter``, once, and its exit commits."""
    async with contextlib.AsyncExitStack() as stack:
        key = new_key()
        write = await keys_for(engine).attempt_on(
            _patch_request(**{"Idempotency-Key": key}), stack.enter_async_context
        )
        assert write.key is not None
        assert write.key.value == key.strip('"')
        await write.keep(Response(b"{}", status_code=200))
    assert write.kept is not None
    assert write.kept.status == 200

"""optimist.fastapi.idempotency: the Idempotency-Key dependency and its document, both backends.

The behaviour tests of tests/starlette/test_idempotency.py run here again on the FastAPI
app of :mod:`tests.support.idempotent_app` (its ``build`` fixture is overridden below):
identity and lookup as dependencies before the key, PrecedenceRoute, FastAPI's own 422
for an invalid body. Then what only FastAPI has: the OpenAPI document, one claim per
request when an app and a route both depend on the key, and the replay handler.
"""

import gc
import weakref
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from optimist.fastapi import idempotency, install_idempotency, install_problem_handlers
from optimist.idempotency import REPLAYED_HEADER
from optimist.sqlalchemy import Bind, get, update
from optimist.starlette import IdempotentWrite
from tests.starlette.test_idempotency import (
    client,
    effects,
    engine,
    new_key,
    test_5xx_is_not_kept,
    test_404_is_kept,
    test_412_is_kept_and_replayed,
    test_422_of_a_reuse_is_not_kept,
    test_concurrent_duplicates_apply_once,
    test_create_replays_its_location,
    test_delete_replays_its_204,
    test_identity_comes_before_the_key,
    test_invalid_body_is_not_kept,
    test_key_reused_for_another_request_is_422,
    test_malformed_key_is_400,
    test_missing_precondition_is_not_kept,
    test_missing_required_key_is_400,
    test_missing_resource_comes_before_the_key,
    test_optional_key_may_be_left_out,
    test_request_in_flight_is_409,
    test_resend_after_commit_replays,
    test_safe_methods_ignore_the_key,
    test_scopes_keep_identities_apart,
)
from tests.support.conformance import check_response
from tests.support.idempotent_app import Effects, counters, fastapi_app, keys_for

__all__ = [
    "client",
    "effects",
    "engine",
    "test_5xx_is_not_kept",
    "test_404_is_kept",
    "test_412_is_kept_and_replayed",
    "test_422_of_a_reuse_is_not_kept",
    "test_concurrent_duplicates_apply_once",
    "test_create_replays_its_location",
    "test_delete_replays_its_204",
    "test_identity_comes_before_the_key",
    "test_invalid_body_is_not_kept",
    "test_key_reused_for_another_request_is_422",
    "test_malformed_key_is_400",
    "test_missing_precondition_is_not_kept",
    "test_missing_required_key_is_400",
    "test_missing_resource_comes_before_the_key",
    "test_optional_key_may_be_left_out",
    "test_request_in_flight_is_409",
    "test_resend_after_commit_replays",
    "test_safe_methods_ignore_the_key",
    "test_scopes_keep_identities_apart",
]

pytestmark = pytest.mark.anyio


@pytest.fixture
def build() -> Callable[..., Any]:
    """The app under test: the FastAPI one."""
    return fastapi_app


@pytest.fixture
def invalid_body_status() -> int:
    """What the app answers a body it cannot use: FastAPI's validation 422."""
    return 422


async def openapi_of(client: httpx.AsyncClient) -> dict[str, Any]:
    """The app's OpenAPI document."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def key_parameter(operation: dict[str, Any]) -> dict[str, Any] | None:
    """The operation's Idempotency-Key parameter, if it declares one."""
    found = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
    assert len(found) <= 1
    return found[0] if found else None


async def test_openapi_declares_the_header(client: httpx.AsyncClient) -> None:
    """Idempotent operations declare the header, required where the route requires it."""
    paths = (await openapi_of(client))["paths"]
    optional = key_parameter(paths["/counters/{id}"]["patch"])
    required = key_parameter(paths["/notes"]["post"])
    assert optional is not None
    assert optional["in"] == "header"
    assert not optional["required"]
    assert required is not None
    assert required["required"]
    assert key_parameter(paths["/counters/{id}"]["get"]) is None


async def test_openapi_declares_409_and_422_problems(client: httpx.AsyncClient) -> None:
    """Idempotent operations declare the key's 400, 409 and 422 as problem details."""
    responses = (await openapi_of(client))["paths"]["/notes"]["post"]["responses"]
    for status in ("400", "409", "422"):
        content = responses[status]["content"]
        schema = content["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "Idempotency-Key" in responses["409"]["description"]
    assert "Idempotency-Key" in responses["422"]["description"]


def app_wide(engine: AsyncEngine, effects: Effects) -> FastAPI:
    """An app whose every route depends on the key, one route taking it again."""
    keys = keys_for(engine)
    dependency = idempotency(keys)
    app = FastAPI(dependencies=[dependency])

    @app.post("/echo")
    async def echo(write: Annotated[IdempotentWrite[Bind], idempotency(keys)]) -> Response:
        effects.applied.append("echo")
        return await write.keep(JSONResponse({"echo": len(effects.applied)}))

    install_problem_handlers(app)
    install_idempotency(app)
    return app


def transport_client(app: ASGIApp) -> httpx.AsyncClient:
    """A client of ``app`` in-process, checked by httplint, as tenant-1."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers={"X-Tenant": "tenant-1"},
        event_hooks={"response": [check_response]},
    )


async def test_app_wide_dependency_claims_once(engine: AsyncEngine, effects: Effects) -> None:
    """Enabled for the app and taken by the route: one claim, and a replay."""
    async with transport_client(app_wide(engine, effects)) as client:
        headers = {"Idempotency-Key": new_key()}
        first = await client.post("/echo", headers=headers)
        resent = await client.post("/echo", headers=headers)
    assert first.status_code == 200
    assert resent.headers[REPLAYED_HEADER] == "true"
    assert resent.content == first.content
    assert effects.applied == ["echo"]


async def test_the_same_arguments_give_the_same_dependency(engine: AsyncEngine) -> None:
    """idempotency(keys) twice is one dependency, so FastAPI solves it once per request."""
    keys = keys_for(engine)
    first = idempotency(keys, required=True)
    assert idempotency(keys, required=True) is first
    assert idempotency(keys) is not first


async def test_an_idempotency_no_route_uses_is_freed(engine: AsyncEngine) -> None:
    """The dependencies made for an Idempotency keep it alive only while something uses them."""
    keys = keys_for(engine)
    dependency = idempotency(keys)
    freed = weakref.ref(keys)
    del keys, dependency
    gc.collect()
    assert freed() is None


async def test_without_install_a_keyed_write_fails_safe(
    engine: AsyncEngine, effects: Effects
) -> None:
    """Without install_idempotency a keyed request is a 500 before the route runs."""
    keys = keys_for(engine)
    app = FastAPI()

    @app.post("/echo")
    async def echo(write: Annotated[IdempotentWrite[Bind], idempotency(keys)]) -> Response:
        effects.applied.append("echo")
        return await write.keep(JSONResponse({}))

    install_problem_handlers(app)
    async with transport_client(app) as client:
        response = await client.post("/echo", headers={"Idempotency-Key": new_key()})
    assert response.status_code == 500
    assert effects.applied == []


async def test_a_write_that_keeps_nothing_is_rolled_back(
    engine: AsyncEngine, effects: Effects
) -> None:
    """A keyed route that returns without keep is a 500, and its write is rolled back."""
    keys = keys_for(engine)
    app = FastAPI()

    @app.post("/forgetful")
    async def forgetful(write: Annotated[IdempotentWrite[Bind], idempotency(keys)]) -> Any:
        await update(write.connection, counters, "c1", {"counter": 5})
        effects.applied.append("forgetful")
        return {"kept": False}

    install_problem_handlers(app)
    install_idempotency(app)
    async with transport_client(app) as client:
        response = await client.post("/forgetful", headers={"Idempotency-Key": new_key()})
    assert response.status_code == 500
    assert effects.applied == ["forgetful"]
    assert (await get(engine, counters, "c1"))["counter"] == 0


async def test_a_keyed_write_commits_before_the_response_starts(
    engine: AsyncEngine, effects: Effects
) -> None:
    """When the response starts, the write and its answer are committed already."""
    seen: list[tuple[int, int]] = []
    app = fastapi_app(engine, effects)

    async def observed(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                async with engine.connect() as connection:
                    kept = text("SELECT count(*) FROM optimist_idempotency")
                    stored = await connection.scalar(kept)
                seen.append(((await get(engine, counters, "c1"))["counter"], stored))
            await send(message)

        await app(scope, receive, send if scope["type"] != "http" else sending)

    async with transport_client(observed) as client:
        etag = (await client.get("/counters/c1")).headers["etag"]
        headers = {"If-Match": etag, "Idempotency-Key": new_key()}
        response = await client.patch("/counters/c1", json={"by": 1}, headers=headers)
    assert response.status_code == 200
    assert seen[-1] == (1, 1)

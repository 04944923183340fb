"""optimist.starlette.clocks: seed 000's vector-clock middleware and the typed clock
state a route reads and writes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.conditions import ResourceState
from optimist.errors import PreconditionFailed, ResourceNotFound, VersionConflict
from optimist.starlette import (
    INVALID_CLOCK_DETAIL,
    ClockState,
    ConditionalProfile,
    VectorClockMiddleware,
    client_clock,
    clock_state,
    install_problem_handlers,
)
from optimist.vclock import VectorClock
from tests.starlette.support import assert_problem, client_for

pytestmark = pytest.mark.anyio

STORED = VectorClock({"node-a": 2, "node-b": 1})


async def session(request: Request) -> Response:
    """A session with a vector clock, written the way seed 000's service writes."""
    sessions: dict[str, VectorClock] = request.app.state.sessions
    key = request.path_params["key"]
    if key not in sessions:
        raise ResourceNotFound("session", key)
    stored = sessions[key]
    if request.query_params.get("via") == "conditional":
        # The deferred 412 surfaces through an ordinary precondition check too.
        cond = ConditionalProfile().bind(request)
        cond.evaluate(ResourceState(exists=True, etag=stored.to_etag()))
    clock = client_clock(request, stored.to_etag())
    if clock is not None and clock != stored:
        raise VersionConflict(stored.to_etag(), clock.compare(stored), stored)
    if request.query_params.get("fail"):
        clock_state(request).updated = stored.increment("node-a")
        raise HTTPException(409, "refused after all")
    sessions[key] = clock_state(request).updated = stored.increment("node-a")
    return JSONResponse(
        {
            "vector_clock": dict(clock) if clock is not None else None,
            "if_match": request.headers.getlist("if-match"),
        }
    )


async def state_of(request: Request) -> Response:
    """The request's clock state, as the route sees it."""
    state = clock_state(request)
    return JSONResponse(
        {
            "sent": dict(state.sent) if state.sent is not None else None,
            "invalid": state.invalid,
        }
    )


def clock_app(*, defer: bool = False) -> Starlette:
    """An app whose sessions are guarded by the vector-clock middleware."""
    app = Starlette(
        routes=[
            Route("/sessions/{key}", session, methods=["GET", "PUT", "PATCH"]),
            Route("/state", state_of, methods=["GET", "PUT"]),
        ]
    )
    app.state.sessions = {"1": STORED}
    app.add_middleware(VectorClockMiddleware, defer=defer)
    install_problem_handlers(app)
    return app


@pytest.fixture
async def clocks() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the vector-clock app, answering invalid clocks at once."""
    async with client_for(clock_app()) as client:
        yield client


@pytest.fixture
async def deferring() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the vector-clock app, deferring invalid clocks to the route."""
    async with client_for(clock_app(defer=True)) as client:
        yield client


@pytest.mark.parametrize(
    "if_match",
    [
        b"not a clock",
        b'{"node-a": "x"}',
        b'{"node-a": 1',
        b'"node-b=1;node-a=2"',
        b'W/"node-a=2;node-b=1"',
        b'"a=1", "b=2"',
        b"{" * 10_240,
        b'"' + b"a" * 10_240 + b'"',
        b'"\xff\xfe"',
        b"\x00",
    ],
    ids=[
        "text",
        "string-counter",
        "unterminated-json",
        "unsorted-tag",
        "weak-tag",
        "list",
        "10kb-json",
        "10kb-tag",
        "latin-1",
        "nul",
    ],
)
async def test_invalid_clock_is_412_with_seed_detail(
    clocks: httpx.AsyncClient, if_match: bytes
) -> None:
    """An If-Match that is not a vector clock is a 412 with seed 000's detail."""
    response = await clocks.patch("/sessions/1", headers=[(b"If-Match", if_match)])
    problem = assert_problem(response, 412)
    assert problem["detail"] == INVALID_CLOCK_DETAIL


async def test_invalid_clock_at_once_names_no_etag(clocks: httpx.AsyncClient) -> None:
    """The 412 the middleware answers itself has no current ETag: nothing was looked up."""
    response = await clocks.patch("/sessions/1", headers={"If-Match": "garbage"})
    problem = assert_problem(response, 412)
    assert problem["current_etag"] is None
    assert "etag" not in response.headers


@pytest.mark.parametrize(
    "if_match",
    ['{"node-b": 1, "node-a": 2}', '"node-a=2;node-b=1"'],
    ids=["raw-json", "quoted-tag"],
)
async def test_clock_reaches_route_in_canonical_form(
    clocks: httpx.AsyncClient, if_match: str
) -> None:
    """The clock reaches the route, and If-Match is rewritten to its entity-tag."""
    response = await clocks.put("/sessions/1", headers={"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "vector_clock": {"node-a": 2, "node-b": 1},
        "if_match": ['"node-a=2;node-b=1"'],
    }


async def test_clock_state_holds_the_sent_clock(clocks: httpx.AsyncClient) -> None:
    """The middleware puts the clock it parsed into the request's ClockState."""
    response = await clocks.put("/state", headers={"If-Match": STORED.to_json()})
    assert response.json() == {"sent": {"node-a": 2, "node-b": 1}, "invalid": False}


async def test_clock_state_marks_a_deferred_invalid_clock(deferring: httpx.AsyncClient) -> None:
    """With defer=True, an If-Match that is no clock marks the ClockState invalid."""
    response = await deferring.put("/state", headers={"If-Match": "garbage"})
    assert response.json() == {"sent": None, "invalid": True}


async def test_clock_state_is_empty_where_the_middleware_did_not_run(
    clocks: httpx.AsyncClient,
) -> None:
    """A request the middleware leaves alone (a GET) has an empty ClockState."""
    response = await clocks.get("/state", headers={"If-Match": STORED.to_json()})
    assert response.json() == {"sent": None, "invalid": False}


def test_clock_state_is_kept_on_the_request() -> None:
    """clock_state gives the same ClockState each time it is asked for one request."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    state = clock_state(request)
    state.updated = STORED
    assert clock_state(Request(request.scope)) is state
    assert state == ClockState(updated=STORED)


def test_client_clock_without_the_middleware_is_none() -> None:
    """A request the middleware never saw carried no clock."""
    assert client_clock(Request({"type": "http", "method": "PUT", "headers": []})) is None


async def test_updated_clock_becomes_the_etag(clocks: httpx.AsyncClient) -> None:
    """A 2xx of a route that set its ClockState's updated clock carries it as its ETag."""
    response = await clocks.put("/sessions/1", headers={"If-Match": STORED.to_json()})
    assert response.headers["etag"] == '"node-a=3;node-b=1"'


async def test_updated_clock_is_not_stamped_on_errors(clocks: httpx.AsyncClient) -> None:
    """An error response keeps no ETag of a clock that was never stored."""
    response = await clocks.put("/sessions/1?fail=1")
    assert response.status_code == 409
    assert "etag" not in response.headers


async def test_star_is_a_precondition_not_a_clock(clocks: httpx.AsyncClient) -> None:
    """``If-Match: *`` passes through untouched and gives no clock."""
    response = await clocks.put("/sessions/1", headers={"If-Match": "*"})
    assert response.json() == {"vector_clock": None, "if_match": ["*"]}


async def test_stale_clock_is_version_conflict(clocks: httpx.AsyncClient) -> None:
    """A clock the stored one dominates is a 412 saying ``stale``, with the ETag."""
    response = await clocks.put("/sessions/1", headers={"If-Match": '{"node-a": 1}'})
    problem = assert_problem(response, 412)
    assert (problem["conflict"], response.headers["etag"]) == ("stale", '"node-a=2;node-b=1"')


async def test_concurrent_clock_is_version_conflict(clocks: httpx.AsyncClient) -> None:
    """A clock neither side dominates is a 412 saying ``concurrent``."""
    response = await clocks.put("/sessions/1", headers={"If-Match": '{"node-c": 1}'})
    assert assert_problem(response, 412)["conflict"] == "concurrent"


async def test_reads_are_not_parsed(clocks: httpx.AsyncClient) -> None:
    """The middleware leaves GET alone, whatever its If-Match says."""
    response = await clocks.get("/sessions/1", headers={"If-Match": "garbage"})
    assert response.status_code == 200


async def test_deferred_invalid_clock_lets_404_come_first(deferring: httpx.AsyncClient) -> None:
    """With defer=True, a missing resource is 404 even with an unparsable clock."""
    response = await deferring.patch("/sessions/2", headers={"If-Match": "garbage"})
    assert_problem(response, 404)


@pytest.mark.parametrize("via", ["client_clock", "conditional"])
async def test_deferred_invalid_clock_is_412_with_current_etag(
    deferring: httpx.AsyncClient, via: str
) -> None:
    """With defer=True, the 412 comes when the route asks, with the current ETag."""
    response = await deferring.patch(f"/sessions/1?via={via}", headers={"If-Match": "garbage"})
    problem = assert_problem(response, 412)
    assert problem["detail"] == INVALID_CLOCK_DETAIL
    assert response.headers["etag"] == problem["current_etag"] == '"node-a=2;node-b=1"'


def test_client_clock_raises_the_deferred_412() -> None:
    """client_clock raises a deferred invalid clock's 412 with the ETag it is given."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    clock_state(request).invalid = True
    with pytest.raises(PreconditionFailed) as caught:
        client_clock(request, STORED.to_etag())
    assert (caught.value.detail, caught.value.current_etag) == (
        INVALID_CLOCK_DETAIL,
        STORED.to_etag(),
    )


async def test_clock_middleware_under_fastapi_routers() -> None:
    """The clock reaches a route of an included FastAPI router, and its update the ETag."""
    app = FastAPI()
    router = APIRouter(prefix="/sessions")

    @router.patch("/{key}")
    async def patch(key: str, request: Request) -> dict[str, int]:
        clock = client_clock(request) or VectorClock()
        clock_state(request).updated = clock.increment("node-z")
        return dict(clock)

    app.include_router(router)
    app.add_middleware(VectorClockMiddleware)
    async with client_for(app) as client:
        response = await client.patch("/sessions/1", headers={"If-Match": STORED.to_json()})
    assert response.json() == {"node-a": 2, "node-b": 1}
    assert response.headers["etag"] == '"node-a=2;node-b=1;node-z=1"'


async def test_clock_middleware_leaves_paths_outside_its_prefixes_alone() -> None:
    """A path outside ``paths`` keeps its If-Match as sent, clock or not."""
    app = Starlette(routes=[Route("/sessions/{key}", session, methods=["PUT"])])
    app.state.sessions = {"1": STORED}
    app.add_middleware(VectorClockMiddleware, paths=("/v1/",))
    install_problem_handlers(app)
    async with client_for(app) as client:
        response = await client.put("/sessions/1", headers={"If-Match": "not a clock"})
    assert response.status_code == 200
    assert response.json() == {"vector_clock": None, "if_match": ["not a clock"]}

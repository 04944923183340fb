"""Starlette integration: reading preconditions, problem responses and handlers, and the
two middlewares, on plain Starlette apps (and FastAPI where that is the use case)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from optimist.conditions import ResourceState
from optimist.errors import (
    OptimistError,
    PreconditionFailed,
    ResourceNotFound,
    VersionConflict,
)
from optimist.etag import ANY, EntityTag
from optimist.httpdate import http_date
from optimist.policy import PreconditionPolicy, Requirement
from optimist.preconditions import Malformed
from optimist.starlette import (
    INVALID_CLOCK_DETAIL,
    ConditionalProfile,
    ProblemResponse,
    VectorClockMiddleware,
    client_clock,
    install_problem_handlers,
    read_preconditions,
)
from optimist.vclock import VectorClock

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
TAG = EntityTag("v1")
MODIFIED = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
STATE = ResourceState(exists=True, etag=TAG, last_modified=MODIFIED)
PROFILE = ConditionalProfile(
    PreconditionPolicy({"DELETE": Requirement.REQUIRED}),
    failed_detail=lambda current, sent: f"expected {current}, got {sent}",
    failed_extensions={"retry": "fetch the resource, then resend"},
)
STORED = VectorClock({"node-a": 2, "node-b": 1})


def client_for(app: Any) -> httpx.AsyncClient:
    """A client calling ``app`` in-process, seeing 5xx responses rather than exceptions."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, after checking the status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


# -- read_preconditions ----------------------------------------------------------------


def test_if_match_lines_are_joined() -> None:
    """Several If-Match lines are one list (RFC 9110 §5.3)."""
    headers = Headers(raw=[(b"if-match", b'"a"'), (b"if-match", b'"b", "c"')])
    assert read_preconditions(headers).if_match == (EntityTag("a"), EntityTag("b"), EntityTag("c"))


def test_if_none_match_lines_are_joined() -> None:
    """Several If-None-Match lines are one list too."""
    headers = Headers(raw=[(b"if-none-match", b'W/"a"'), (b"if-none-match", b'"b"')])
    expected = (EntityTag("a", weak=True), EntityTag("b"))
    assert read_preconditions(headers).if_none_match == expected


def test_a_date_sent_twice_is_ignored() -> None:
    """A date precondition sent on two lines is not an HTTP-date and is ignored."""
    date = http_date(MODIFIED).encode()
    headers = Headers(raw=[(b"if-unmodified-since", date), (b"if-unmodified-since", date)])
    assert read_preconditions(headers).if_unmodified_since is None


def test_a_single_date_is_read() -> None:
    """A date precondition on one line is parsed."""
    headers = Headers(raw=[(b"if-modified-since", http_date(MODIFIED).encode())])
    assert read_preconditions(headers).if_modified_since == MODIFIED.replace(microsecond=0)


def test_bare_tag_only_when_allowed() -> None:
    """An unquoted If-Match is a tag only for a profile that allows it."""
    headers = Headers(raw=[(b"if-match", b"a1b2")])
    assert read_preconditions(headers, allow_bare=True).if_match == (EntityTag("a1b2"),)
    assert isinstance(read_preconditions(headers).if_match, Malformed)


def test_no_preconditions() -> None:
    """A request without precondition fields is unconditional."""
    assert not read_preconditions(Headers(raw=[])).is_conditional


def test_fields_are_found_among_others() -> None:
    """The precondition fields are read wherever they stand among the other fields."""
    raw = [(b"host", b"x"), (b"if-none-match", b'"a"'), (b"accept", b"*/*"), (b"if-match", b"*")]
    received = read_preconditions(Headers(raw=raw))
    assert received.if_none_match == (EntityTag("a"),)
    assert received.if_match is ANY
    assert received.if_modified_since is None


def test_other_fields_are_unconditional() -> None:
    """Fields that only resemble a precondition's name are not read as one."""
    raw = [(b"if-matches", b'"a"'), (b"x-if-none-match", b'"b"'), (b"if-range", b'"c"')]
    assert not read_preconditions(Headers(raw=raw)).is_conditional


def test_bind_keeps_if_match_as_sent() -> None:
    """A bound request keeps If-Match as sent, its lines joined, for the 412's detail."""
    headers = [(b"if-match", b'"a"'), (b"if-match", b'"b"')]
    bound = PROFILE.bind(Request({"type": "http", "method": "PUT", "headers": headers}))
    assert bound.if_match == '"a", "b"'
    assert bound.received.if_match == (EntityTag("a"), EntityTag("b"))
    assert bound.method == "PUT"


# -- a plain Starlette app -------------------------------------------------------------


async def item(request: Request) -> Response:
    """One resource in STATE; writes evaluate against it, a store-like 412 on demand."""
    cond = PROFILE.bind(request)
    if request.method in ("GET", "HEAD"):
        response = JSONResponse({"name": "first"})
        if request.query_params.get("cached") == "1":
            response.headers["Cache-Control"] = "max-age=60"
            response.headers["Vary"] = "Accept"
        cond.evaluate(STATE, response)
        return response
    if request.query_params.get("store") == "412":
        # What a store raises when its conditional write matched no row.
        cond.write_condition()
        raise PreconditionFailed(TAG)
    cond.evaluate(STATE)
    return Response(status_code=204)


async def missing(request: Request) -> Response:
    """A resource that does not exist: preconditions see no current representation."""
    PROFILE.bind(request).evaluate(ResourceState.missing())
    return Response(status_code=204)


async def conflict(request: Request) -> Response:
    """A vector-clock conflict, with its own detail."""
    PROFILE.bind(request)
    raise VersionConflict(STORED.to_etag(), VectorClock({"node-a": 1}).compare(STORED), STORED)


async def fail(request: Request) -> Response:
    """Errors that must not show their cause."""
    if request.query_params.get("kind") == "library":
        raise OptimistError("internal state: secret")
    raise RuntimeError("secret")


async def not_modified(request: Request) -> Response:
    """An HTTPException for 304, which has no body."""
    raise HTTPException(304, headers={"ETag": str(TAG)})


async def http_error(request: Request) -> Response:
    """HTTPExceptions of the kinds an app raises itself."""
    kind = request.query_params["kind"]
    if kind == "unavailable":
        raise HTTPException(503, "pool exhausted: secret", headers={"Retry-After": "5"})
    if kind == "structured":
        raise HTTPException(400, detail={"field": "name"})  # type: ignore[arg-type]
    raise HTTPException(499, "client went away")


def build_app() -> Starlette:
    """A Starlette app with the problem handlers."""
    app = Starlette(
        routes=[
            Route("/item", item, methods=["GET", "PUT", "DELETE"]),
            Route("/missing", missing, methods=["PUT"]),
            Route("/conflict", conflict, methods=["PUT"]),
            Route("/fail", fail),
            Route("/not-modified", not_modified),
            Route("/http", http_error),
            Mount("/mounted", routes=[Route("/item", item, methods=["PATCH"])]),
        ]
    )
    install_problem_handlers(app)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the plain Starlette app."""
    async with client_for(build_app()) as client:
        yield client


async def test_get_sets_etag_and_last_modified(client: httpx.AsyncClient) -> None:
    """evaluate() given a response sets its validators when the read proceeds."""
    response = await client.get("/item")
    assert response.status_code == 200
    assert response.headers["etag"] == '"v1"'
    assert response.headers["last-modified"] == "Wed, 15 Jan 2025 10:30:00 GMT"


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": '"v1"'},
        {"If-None-Match": '"x", W/"v1"'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": http_date(MODIFIED)},
        {"If-Modified-Since": http_date(MODIFIED + timedelta(days=1))},
    ],
    ids=["inm-match", "inm-weak-in-list", "inm-star", "ims-equal", "ims-later"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_unchanged_read_is_304(
    client: httpx.AsyncClient, method: str, headers: dict[str, str]
) -> None:
    """A read whose validators still match is 304 with the ETag and no body."""
    response = await client.request(method, "/item", headers=headers)
    assert response.status_code == 304
    assert response.headers["etag"] == '"v1"'
    assert response.content == b""


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": '"v0"'},
        {"If-Modified-Since": http_date(MODIFIED - timedelta(seconds=1))},
        {"If-None-Match": '"v0"', "If-Modified-Since": http_date(MODIFIED)},
    ],
    ids=["inm-stale", "ims-earlier", "inm-wins-over-ims"],
)
async def test_changed_read_is_200(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """A read whose validators no longer match proceeds (RFC 9110 §13.2.2 steps 3-4)."""
    assert (await client.get("/item", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-Match": '"v1"'}, 204),
        ({"If-Match": '"v0"'}, 412),
        ({"If-Match": "*"}, 204),
        ({"If-Match": 'W/"v1"'}, 412),
        ({"If-None-Match": "*"}, 412),
        ({"If-None-Match": '"v1"'}, 412),
        ({"If-Unmodified-Since": http_date(MODIFIED)}, 204),
        ({"If-Unmodified-Since": http_date(MODIFIED - timedelta(days=1))}, 412),
        ({"If-Match": '"v1"', "If-Unmodified-Since": http_date(MODIFIED - timedelta(1))}, 204),
        ({}, 204),
    ],
    ids=[
        "im-match",
        "im-stale",
        "im-star",
        "im-weak-strong-compare",
        "inm-star-exists",
        "inm-match-on-write",
        "ius-equal",
        "ius-earlier",
        "im-overrides-ius",
        "unconditional",
    ],
)
async def test_write_decision_table(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    """A write's preconditions decide as RFC 9110 §13.2.2 says."""
    response = await client.put("/item", headers=headers)
    assert response.status_code == status, response.text


async def test_if_match_star_on_missing_resource_is_412(client: httpx.AsyncClient) -> None:
    """``If-Match: *`` is false when no current representation exists (§13.1.1)."""
    response = await client.put("/missing", headers={"If-Match": "*"})
    problem = assert_problem(response, 412)
    assert "etag" not in response.headers
    assert problem["current_etag"] is None


async def test_412_carries_etag_detail_and_extensions(client: httpx.AsyncClient) -> None:
    """The 412 has the current ETag in header and body, in the profile's words."""
    response = await client.put("/item", headers={"If-Match": '"v0"'})
    problem = assert_problem(response, 412)
    assert response.headers["etag"] == '"v1"'
    assert problem == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": 'expected "v1", got "v0"',
        "current_etag": '"v1"',
        "retry": "fetch the resource, then resend",
    }


async def test_store_412_reads_like_the_route_own(client: httpx.AsyncClient) -> None:
    """A 412 raised by a store is worded by the request's profile too."""
    response = await client.put("/item?store=412", headers={"If-Match": '"v0"'})
    problem = assert_problem(response, 412)
    assert problem["detail"] == 'expected "v1", got "v0"'
    assert response.headers["etag"] == '"v1"'


async def test_required_precondition_is_428(client: httpx.AsyncClient) -> None:
    """A DELETE the policy requires a precondition for is 428 without one."""
    problem = assert_problem(await client.delete("/item"), 428)
    assert problem["invalid_params"] == [{"name": "If-Match", "reason": "required"}]


async def test_version_conflict_keeps_its_detail(client: httpx.AsyncClient) -> None:
    """A vector-clock conflict keeps its own detail and members, and the ETag header."""
    response = await client.put("/conflict")
    problem = assert_problem(response, 412)
    assert response.headers["etag"] == '"node-a=2;node-b=1"'
    assert problem["conflict"] == "stale"
    assert problem["current_vector_clock"] == {"node-a": 2, "node-b": 1}
    assert problem["detail"].startswith("the vector clock sent is stale")


@pytest.mark.parametrize("kind", ["runtime", "library"])
async def test_internal_errors_leak_nothing(client: httpx.AsyncClient, kind: str) -> None:
    """Unexpected exceptions and 5xx library errors are a generic 500 problem."""
    response = await client.get("/fail", params={"kind": kind})
    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert problem["detail"] == "The server could not complete the request."


async def test_304_repeats_the_fields_a_200_would_carry(client: httpx.AsyncClient) -> None:
    """Cache-Control and Vary set before evaluate() reach the 304 (RFC 9110 §15.4.5)."""
    response = await client.get("/item?cached=1", headers={"If-None-Match": '"v1"'})
    assert response.status_code == 304
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["vary"] == "Accept"
    assert "content-type" not in response.headers


async def test_http_exception_304_has_no_body(client: httpx.AsyncClient) -> None:
    """An HTTPException for 304 answers without a body, keeping its headers."""
    response = await client.get("/not-modified")
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route matches is a 404 problem."""
    assert_problem(await client.get("/nowhere"), 404)


async def test_405_lists_every_method(client: httpx.AsyncClient) -> None:
    """A 405 is a problem whose Allow lists the route's methods (RFC 9110 §15.5.6)."""
    response = await client.post("/item")
    assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"


async def test_http_5xx_leaks_nothing_but_keeps_headers(client: httpx.AsyncClient) -> None:
    """An HTTPException 5xx is a generic problem that keeps its headers."""
    response = await client.get("/http", params={"kind": "unavailable"})
    problem = assert_problem(response, 503)
    assert "secret" not in response.text
    assert (problem["title"], response.headers["retry-after"]) == ("Service Unavailable", "5")


async def test_structured_http_detail_is_an_extension(client: httpx.AsyncClient) -> None:
    """A non-string HTTPException detail (FastAPI allows one) becomes ``details``."""
    problem = assert_problem(await client.get("/http", params={"kind": "structured"}), 400)
    assert (problem["detail"], problem["details"]) == ("Bad Request", {"field": "name"})


async def test_unregistered_status_still_renders(client: httpx.AsyncClient) -> None:
    """A status Python has no phrase for still gives a problem."""
    problem = assert_problem(await client.get("/http", params={"kind": "odd"}), 499)
    assert problem["detail"] == "client went away"


def test_problem_json_is_ascii_even_for_lone_surrogates() -> None:
    """A problem echoing hostile text still renders (as escaped ASCII JSON)."""
    response = ProblemResponse({"detail": "bad \ud800 é"}, status_code=400)
    assert response.body == b'{"detail":"bad \\ud800 \\u00e9"}'


# -- VectorClockMiddleware -------------------------------------------------------------


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
        request.state.updated_clock = stored.increment("node-a")
        raise HTTPException(409, "refused after all")
    sessions[key] = request.state.updated_clock = stored.increment("node-a")
    return JSONResponse(
        {
            "vector_clock": dict(clock) if clock is not None else None,
            "if_match": request.headers.getlist("if-match"),
        }
    )


def clock_app(*, defer: bool = False) -> Starlette:
    """An app whose sessions are guarded by the vector-clock middleware."""
    app = Starlette(routes=[Route("/sessions/{key}", session, methods=["GET", "PUT", "PATCH"])])
    app.state.sessions = {"1": STORED}
    app.add_middleware(VectorClockMiddleware, defer=defer)
    install_problem_handlers(app)
    return app


@pytest.fixture
async def clocks() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the vector-clock app, answering invalid clocks at once."""
    async with client_for(clock_app()) as client:
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


@pytest.mark.parametrize(
    "if_match",
    ['{"node-b": 1, "node-a": 2}', '"node-a=2;node-b=1"'],
    ids=["raw-json", "quoted-tag"],
)
async def test_clock_reaches_route_in_canonical_form(
    clocks: httpx.AsyncClient, if_match: str
) -> None:
    """The clock is in request.state and If-Match is rewritten to its entity-tag."""
    response = await clocks.put("/sessions/1", headers={"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "vector_clock": {"node-a": 2, "node-b": 1},
        "if_match": ['"node-a=2;node-b=1"'],
    }


async def test_updated_clock_becomes_the_etag(clocks: httpx.AsyncClient) -> None:
    """A 2xx of a route that set updated_clock carries that clock as its ETag."""
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


async def test_deferred_invalid_clock_lets_404_come_first() -> None:
    """With defer=True, a missing resource is 404 even with an unparsable clock."""
    async with client_for(clock_app(defer=True)) as client:
        response = await client.patch("/sessions/2", headers={"If-Match": "garbage"})
    assert_problem(response, 404)


@pytest.mark.parametrize("via", ["client_clock", "conditional"])
async def test_deferred_invalid_clock_is_412_with_current_etag(via: str) -> None:
    """With defer=True, the 412 comes when the route asks, with the current ETag."""
    async with client_for(clock_app(defer=True)) as client:
        response = await client.patch(f"/sessions/1?via={via}", headers={"If-Match": "garbage"})
    problem = assert_problem(response, 412)
    assert problem["detail"] == INVALID_CLOCK_DETAIL
    assert response.headers["etag"] == problem["current_etag"] == '"node-a=2;node-b=1"'


async def test_clock_middleware_under_fastapi_routers() -> None:
    """The clock reaches a route of an included FastAPI router, and its update the ETag."""
    app = FastAPI()
    router = APIRouter(prefix="/sessions")

    @router.patch("/{key}")
    async def patch(key: str, request: Request) -> dict[str, int]:
        clock = client_clock(request) or VectorClock()
        request.state.updated_clock = clock.increment("node-z")
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

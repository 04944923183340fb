"""optimist.starlette.binding: reading the precondition fields once, and a bound
request's decisions on a plain Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.conditions import ResourceState
from optimist.errors import PreconditionFailed
from optimist.etag import ANY, EntityTag
from optimist.httpdate import http_date
from optimist.policy import PreconditionPolicy, Requirement
from optimist.preconditions import Malformed
from optimist.starlette import (
    ConditionalProfile,
    bound_request,
    install_problem_handlers,
    read_preconditions,
)
from tests.starlette.support import assert_problem, client_for

pytestmark = pytest.mark.anyio

TAG = EntityTag("v1")
MODIFIED = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
STATE = ResourceState(exists=True, etag=TAG, last_modified=MODIFIED)
PROFILE = ConditionalProfile(
    PreconditionPolicy({"DELETE": Requirement.REQUIRED}),
    failed_detail=lambda current, sent: f"expected {current}, got {sent}",
    failed_extensions={"retry": "fetch the resource, then resend"},
)


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


# -- bind ------------------------------------------------------------------------------


def test_bind_keeps_if_match_as_sent() -> None:
    """A bound request keeps If-Match as sent, its lines joined, for the 412's detail."""
    headers = [(b"if-match", b'"a"'), (b"if-match", b'"b"')]
    bound = PROFILE.bind(Request({"type": "http", "method": "PUT", "headers": headers}))
    assert bound.if_match == '"a", "b"'
    assert bound.received.if_match == (EntityTag("a"), EntityTag("b"))
    assert bound.method == "PUT"


def test_bound_request_is_the_one_bind_made() -> None:
    """bound_request gives the ConditionalRequest bound to the request's scope."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    bound = PROFILE.bind(request)
    assert bound_request(Request(request.scope)) is bound


def test_an_unbound_request_has_no_bound_request() -> None:
    """bound_request is None for a request no profile bound."""
    assert bound_request(Request({"type": "http", "method": "GET", "headers": []})) is None


# -- decisions on a plain Starlette app ------------------------------------------------


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


async def revalidated(request: Request) -> Response:
    """The same resource read as a revalidating route reads it: a 304 returned."""
    cond = PROFILE.bind(request)
    response = JSONResponse({"name": "first"})
    if request.query_params.get("cached") == "1":
        response.headers["Cache-Control"] = "max-age=60"
        response.headers["Vary"] = "Accept"
    answer = cond.revalidate(STATE, response)
    return response if answer is None else answer


async def missing(request: Request) -> Response:
    """A resource that does not exist: preconditions see no current representation."""
    PROFILE.bind(request).evaluate(ResourceState.missing())
    return Response(status_code=204)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client for a plain Starlette app with the problem handlers."""
    app = Starlette(
        routes=[
            Route("/item", item, methods=["GET", "PUT", "DELETE"]),
            Route("/revalidated", revalidated, methods=["GET", "HEAD"]),
            Route("/missing", missing, methods=["PUT"]),
        ]
    )
    install_problem_handlers(app)
    async with client_for(app) as client:
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
@pytest.mark.parametrize("path", ["/item", "/revalidated"], ids=["raised", "returned"])
async def test_unchanged_read_is_304(
    client: httpx.AsyncClient, path: str, method: str, headers: dict[str, str]
) -> None:
    """A read whose validators still match is 304 with the ETag and no body, raised by
    evaluate() or returned by revalidate()."""
    response = await client.request(method, path, headers=headers)
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


@pytest.mark.parametrize("path", ["/item", "/revalidated"], ids=["raised", "returned"])
async def test_304_repeats_the_fields_a_200_would_carry(
    client: httpx.AsyncClient, path: str
) -> None:
    """Cache-Control and Vary set before evaluate() or revalidate() reach the 304, and
    no representation metadata does (RFC 9110 §15.4.5)."""
    response = await client.get(f"{path}?cached=1", headers={"If-None-Match": '"v1"'})
    assert response.status_code == 304
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["vary"] == "Accept"
    assert "content-type" not in response.headers


async def test_a_revalidation_that_misses_is_the_representation(client: httpx.AsyncClient) -> None:
    """revalidate() returns None for a changed resource; the route sends its 200 with the
    validators revalidate() set."""
    response = await client.get("/revalidated", headers={"If-None-Match": '"v0"'})
    assert response.status_code == 200
    assert (response.headers["etag"], response.json()) == ('"v1"', {"name": "first"})


def _bound(method: str, headers: dict[str, str]) -> Any:
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    return PROFILE.bind(Request(scope))


@pytest.mark.parametrize(
    ("method", "headers", "revalidating"),
    [
        ("GET", {"If-None-Match": '"v1"'}, True),
        ("HEAD", {"If-Modified-Since": http_date(MODIFIED)}, True),
        ("GET", {}, False),
        ("GET", {"If-Match": '"v1"'}, False),
        ("PUT", {"If-None-Match": "*"}, False),
    ],
    ids=["get-inm", "head-ims", "get-plain", "get-if-match", "put-inm"],
)
def test_revalidating_is_a_read_that_may_be_304(
    method: str, headers: dict[str, str], revalidating: bool
) -> None:
    """Only a GET or HEAD with If-None-Match or If-Modified-Since may be answered 304."""
    assert _bound(method, headers).revalidating is revalidating


def test_a_failed_if_match_on_revalidate_is_still_412() -> None:
    """revalidate() returns a 304 but raises a 412: an error stays an error."""
    with pytest.raises(PreconditionFailed):
        _bound("GET", {"If-Match": '"v0"'}).revalidate(STATE)

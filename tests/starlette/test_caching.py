"""optimist.starlette.caching: what caches may do with each response, decided in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.errors import ResourceNotFound
from optimist.etag import EntityTag
from optimist.httpdate import http_date
from optimist.problem import Problem
from optimist.starlette import (
    NO_CACHE,
    NO_STORE,
    PRIVATE_NO_CACHE,
    CachingPolicy,
    install_caching,
    install_problem_handlers,
    not_modified,
    problem_response,
)
from optimist.starlette.caching import caching_installed
from tests.starlette.support import client_for
from tests.support.conformance import complaints

pytestmark = pytest.mark.anyio

TAG = EntityTag("v1")
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
IDENTITY = ("X-Tenant-Id", "X-User-Role")
POLICY = CachingPolicy(identity=IDENTITY, paths=("/admin",), clock=lambda: NOW)

#: Response fields a route may set, by query parameter.
FIELDS = {"etag": "ETag", "modified": "Last-Modified", "cc": "Cache-Control", "vary": "Vary"}


async def echo(request: Request) -> Response:
    """A response with the status and fields the query asks for."""
    query = request.query_params
    headers = {field: query[name] for name, field in FIELDS.items() if name in query}
    status = int(query.get("status", "200"))
    if status == 201 or (300 <= status < 400 and status != 304):
        headers["Location"] = "/items/2"  # RFC 9110 §15.2.2, §15.4
    if status in (204, 304):
        return Response(status_code=status, headers=headers)
    return JSONResponse({"status": status}, status_code=status, headers=headers)


async def conditional(request: Request) -> Response:
    """An item answering If-None-Match with the library's 304."""
    modified = NOW - timedelta(hours=1)
    if request.headers.get("if-none-match") == str(TAG):
        return not_modified(TAG, last_modified=modified)
    return JSONResponse({}, headers={"ETag": str(TAG), "Last-Modified": http_date(modified)})


async def missing(request: Request) -> Response:
    """A library error, answered by the problem handlers."""
    raise ResourceNotFound("item", "1")


async def crash(request: Request) -> Response:
    """Something unexpected: a 500 sent from outside every middleware."""
    raise RuntimeError("unexpected")


async def token(request: Request) -> Response:
    """A token for the caller: a representation without validators."""
    return JSONResponse({"token": "t0k3n"})


def build_app(policy: CachingPolicy | None = POLICY) -> Starlette:
    """An app whose routes answer at and outside the identity paths."""
    routes = [
        Route(path, echo, methods=["GET", "POST", "PUT", "DELETE"])
        for path in ("/items/{key}", "/admin/{key}", "/administrator/{key}")
    ]
    routes += [
        Route("/conditional/{key}", conditional),
        Route("/admin/conditional/{key}", conditional),
        Route("/missing", missing),
        Route("/crash", crash),
        Route("/token", token),
    ]
    app = Starlette(routes=routes)
    if policy is not None:
        install_caching(app, policy)
    install_problem_handlers(app)
    return app


async def get(
    path: str,
    policy: CachingPolicy | None = POLICY,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> httpx.Response:
    """GET (or ``method``) ``path`` from a fresh app for ``policy``, with ``headers``."""
    async with client_for(build_app(policy)) as client:
        return await client.request(method, path, headers=headers)


LAST_MODIFIED = http_date(NOW - timedelta(days=1))


#: The decision table: a response (the route's status and fields) → its Cache-Control.
DECISIONS = [
    # RFC 9111 §5.2.2.4: stored, but revalidated by its ETag before every reuse.
    ("/items/1?etag=%22v1%22", NO_CACHE),
    (f"/items/1?modified={LAST_MODIFIED}", NO_CACHE),
    ("/items/1?status=201&etag=%22v1%22", NO_CACHE),
    ("/items/1?status=304&etag=%22v1%22", NO_CACHE),
    # RFC 9111 §4.3.1: nothing to revalidate with, so nothing worth storing.
    ("/items/1", NO_STORE),
    ("/items/1?status=204", NO_STORE),
    ("/items/1?status=307", NO_STORE),
    # RFC 9111 §5.2.2.5: an error is about one request.
    ("/items/1?status=404", NO_STORE),
    ("/items/1?status=412&etag=%22v1%22", NO_STORE),
    ("/items/1?status=503", NO_STORE),
    # RFC 9111 §5.2.2.7: selected by who asks, so for the asker's own cache only.
    ("/admin/1?etag=%22v1%22", PRIVATE_NO_CACHE),
    ("/admin/1?status=304&etag=%22v1%22", PRIVATE_NO_CACHE),
    ("/admin/1", NO_STORE),
    ("/admin/1?status=403", NO_STORE),
    # A path that merely starts with the same letters is not below /admin.
    ("/administrator/1?etag=%22v1%22", NO_CACHE),
    # The route's own Cache-Control is kept, whatever the status.
    ("/items/1?etag=%22v1%22&cc=max-age%3D60", "max-age=60"),
    ("/admin/1?etag=%22v1%22&cc=no-store", NO_STORE),
    ("/items/1?status=404&cc=max-age%3D5", "max-age=5"),
]
DECISION_IDS = [
    "200-etag",
    "200-last-modified",
    "201-etag",
    "304-etag",
    "200-no-validator",
    "204",
    "307",
    "404",
    "412",
    "503",
    "identity-200-etag",
    "identity-304",
    "identity-200-no-validator",
    "identity-403",
    "lookalike-prefix",
    "route-max-age-kept",
    "route-no-store-kept",
    "route-error-directive-kept",
]


@pytest.mark.parametrize(("path", "expected"), DECISIONS, ids=DECISION_IDS)
async def test_cache_control(path: str, expected: str) -> None:
    """Each kind of response gets the Cache-Control of the decision table."""
    response = await get(path)
    assert response.headers["cache-control"] == expected


@pytest.mark.parametrize(("path", "expected"), DECISIONS, ids=DECISION_IDS)
async def test_decisions_pass_httplint(path: str, expected: str) -> None:
    """Every response of the decision table passes httplint, no BAD or WARN note."""
    # Requests the statuses fit: a 412 answers a precondition (RFC 9110 §15.5.13), a
    # 201 an unsafe method (§15.3.2).
    method = "POST" if "status=201" in path else "GET"
    response = await get(path, headers={"If-Match": '"v0"'}, method=method)
    assert complaints(response) == []


async def test_without_a_policy_httplint_warns() -> None:
    """The same response from an app without the middleware draws httplint's warnings."""
    app = Starlette(routes=[Route("/items/{key}", echo)])
    async with client_for(app) as client:
        response = await client.get(f"/items/1?etag=%22v1%22&modified={LAST_MODIFIED}")
    assert complaints(response) != []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/admin/1?etag=%22v1%22", "X-Tenant-Id, X-User-Role"),
        ("/admin/1?status=404", "X-Tenant-Id, X-User-Role"),
        ("/admin/1?etag=%22v1%22&vary=Accept", "Accept, X-Tenant-Id, X-User-Role"),
        ("/admin/1?etag=%22v1%22&vary=x-tenant-id", "x-tenant-id, X-User-Role"),
        ("/admin/1?etag=%22v1%22&vary=%2A", "*"),
        ("/items/1?etag=%22v1%22&vary=Accept", "Accept"),
    ],
    ids=["identity", "identity-error", "merged", "no-duplicate", "star-kept", "elsewhere-kept"],
)
async def test_vary(path: str, expected: str) -> None:
    """Vary names the identity fields below the identity paths, merged with the route's."""
    response = await get(path)
    assert response.headers["vary"] == expected


async def two_vary_lines(request: Request) -> Response:
    """A representation whose Vary the route sent on two lines."""
    response = Response(headers={"ETag": str(TAG)})
    response.raw_headers += [(b"vary", b"Accept"), (b"vary", b"Accept-Language")]
    return response


async def test_vary_lines_merged_into_one() -> None:
    """The route's Vary lines and the identity fields become one Vary line (RFC 9110 §5.3)."""
    app = Starlette(routes=[Route("/admin/negotiated", two_vary_lines)])
    install_caching(app, POLICY)
    async with client_for(app) as client:
        response = await client.get("/admin/negotiated")
    merged = "Accept, Accept-Language, X-Tenant-Id, X-User-Role"
    assert response.headers.get_list("vary") == [merged]


async def test_no_vary_outside_identity_paths() -> None:
    """A response outside the identity paths varies on nothing."""
    response = await get("/items/1?etag=%22v1%22")
    assert "vary" not in response.headers


async def test_date_from_policy_clock() -> None:
    """Date is the policy clock's reading (RFC 9110 §6.6.1)."""
    response = await get("/items/1?etag=%22v1%22")
    assert response.headers.get_list("date") == [http_date(NOW)]


async def test_date_follows_the_clock_from_second_to_second() -> None:
    """Each response's Date is the clock's second as the response starts: the same within
    a second, the next one once the clock moves on."""
    readings = iter([NOW, NOW + timedelta(milliseconds=400), NOW + timedelta(seconds=1)])
    policy = CachingPolicy(clock=lambda: next(readings))
    app = Starlette(routes=[Route("/", lambda _: Response())])
    install_caching(app, policy)
    async with client_for(app) as client:
        dates = [(await client.get("/")).headers["date"] for _ in range(3)]
    assert dates == [http_date(NOW), http_date(NOW), http_date(NOW + timedelta(seconds=1))]


async def test_route_date_kept() -> None:
    """A Date the route set is kept, and is the only one."""
    earlier = http_date(NOW - timedelta(minutes=5))
    app = Starlette(routes=[Route("/", lambda _: Response(headers={"Date": earlier}))])
    install_caching(app, POLICY)
    async with client_for(app) as client:
        response = await client.get("/")
    assert response.headers.get_list("date") == [earlier]


@pytest.mark.parametrize(
    ("modified", "expected"),
    [
        (NOW + timedelta(seconds=1), NOW),
        (NOW + timedelta(days=400), NOW),
        (NOW, NOW),
        (NOW - timedelta(seconds=1), NOW - timedelta(seconds=1)),
    ],
    ids=["a-second-later", "far-later", "equal", "earlier"],
)
async def test_last_modified_never_after_date(modified: datetime, expected: datetime) -> None:
    """Last-Modified later than Date becomes Date; otherwise it is kept (RFC 9110 §8.8.2.1)."""
    response = await get(f"/items/1?modified={http_date(modified)}")
    assert response.headers["last-modified"] == http_date(expected)


@pytest.mark.parametrize(
    "path", ["/conditional/1", "/admin/conditional/1"], ids=["plain", "identity"]
)
async def test_not_modified_carries_the_same_fields(path: str) -> None:
    """A 304 carries the Cache-Control, Vary and validators of its 200 (RFC 9110 §15.4.5)."""
    async with client_for(build_app()) as client:
        full = await client.get(path)
        empty = await client.get(path, headers={"If-None-Match": full.headers["etag"]})
    assert (full.status_code, empty.status_code) == (200, 304)
    for name in ("cache-control", "vary", "etag", "last-modified", "date"):
        assert empty.headers.get(name) == full.headers.get(name), name


async def test_library_error_is_no_store() -> None:
    """A library error's problem response is no-store."""
    response = await get("/missing")
    assert (response.status_code, response.headers["cache-control"]) == (404, NO_STORE)


async def test_unexpected_error_is_no_store_with_date() -> None:
    """The 500 sent from outside the middleware is no-store and dated all the same."""
    response = await get("/crash")
    assert response.status_code == 500
    assert response.headers["cache-control"] == NO_STORE
    assert "date" in response.headers


def test_problem_response_is_no_store_without_a_policy() -> None:
    """problem_response is no-store on its own, for an app without the middleware."""
    response = problem_response(Problem(409, "conflict"))
    assert response.headers["cache-control"] == NO_STORE


def test_problem_response_keeps_a_given_cache_control() -> None:
    """problem_response keeps a Cache-Control its caller passes."""
    response = problem_response(Problem(503, "busy"), {"Cache-Control": "max-age=5"})
    assert response.headers["cache-control"] == "max-age=5"


async def test_token_response_is_no_store() -> None:
    """A token issued to the caller, without a validator, is no-store."""
    response = await get("/token")
    assert response.headers["cache-control"] == NO_STORE


async def test_problem_handlers_install_the_default_policy() -> None:
    """install_problem_handlers alone gives every response a policy, without Vary."""
    response = await get("/admin/1?etag=%22v1%22", policy=None)
    assert response.headers["cache-control"] == NO_CACHE
    assert "vary" not in response.headers


def test_problem_handlers_keep_an_installed_policy() -> None:
    """install_problem_handlers leaves a policy installed before it in place."""
    app = build_app()
    policies = [entry.kwargs["policy"] for entry in app.user_middleware]
    assert policies == [POLICY]


def test_install_caching_replaces_the_policy() -> None:
    """install_caching again replaces the policy, outermost, once."""
    app = Starlette()
    install_caching(app)
    app.add_middleware(GZipMiddleware)
    install_caching(app, POLICY)
    # GZip's entry has no policy: the caching entry is first (outermost) and alone.
    assert [entry.kwargs.get("policy") for entry in app.user_middleware] == [POLICY, None]
    assert caching_installed(app)


def test_caching_not_installed_by_default() -> None:
    """A bare Starlette app has no caching policy."""
    assert not caching_installed(Starlette())


async def test_install_caching_refused_once_started() -> None:
    """install_caching on a started app is an error, not a silent no-op."""
    app = build_app()
    async with client_for(app) as client:
        await client.get("/items/1")
    with pytest.raises(RuntimeError, match="started"):
        install_caching(app, POLICY)

"""optimist.starlette.handlers: every error of a plain Starlette app as problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from optimist.errors import OptimistError
from optimist.etag import EntityTag
from optimist.starlette import (
    allow_field,
    allowed_methods,
    http_error_response,
    install_problem_handlers,
)
from tests.starlette.support import assert_problem, client_for

pytestmark = pytest.mark.anyio

TAG = EntityTag("v1")


async def item(request: Request) -> Response:
    """A resource served by GET, PUT and DELETE."""
    return Response(status_code=204)


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


@pytest.mark.parametrize("kind", ["runtime", "library"])
async def test_internal_errors_leak_nothing(client: httpx.AsyncClient, kind: str) -> None:
    """Unexpected exceptions and 5xx library errors are a generic 500 problem."""
    response = await client.get("/fail", params={"kind": kind})
    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert problem["detail"] == "The server could not complete the request."


async def test_http_exception_304_has_no_body(client: httpx.AsyncClient) -> None:
    """An HTTPException for 304 answers without a body, keeping its headers."""
    response = await client.get("/not-modified")
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route matches is a 404 problem."""
    problem = assert_problem(await client.get("/nowhere"), 404)
    assert problem["detail"] == "No resource matches the request's path."


async def test_405_lists_every_method(client: httpx.AsyncClient) -> None:
    """A 405 is a problem whose Allow lists the route's methods (RFC 9110 §15.5.6)."""
    response = await client.post("/item")
    problem = assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert problem["detail"] == "POST is not allowed here; allowed: DELETE, GET, HEAD, PUT."


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


def test_http_error_response_keeps_a_string_detail() -> None:
    """http_error_response, called directly, words the problem by the exception's detail."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    response = http_error_response(HTTPException(409, "taken"), request)
    assert response.status_code == 409
    assert b'"detail":"taken"' in bytes(response.body)


@pytest.mark.parametrize(
    ("allow", "methods"),
    [
        ("GET, HEAD", {"GET", "HEAD"}),
        ("get,put", {"GET", "PUT"}),
        (" GET , , POST ", {"GET", "POST"}),
        ("", set()),
    ],
    ids=["listed", "lower-case-no-spaces", "empty-elements", "empty"],
)
def test_allowed_methods(allow: str, methods: set[str]) -> None:
    """An Allow value is read as its upper-cased methods, empty list elements ignored."""
    assert allowed_methods(allow) == methods


def test_allow_field_is_sorted_and_unique() -> None:
    """An Allow value is written sorted, each method once."""
    assert allow_field(["PUT", "GET", "PUT", "DELETE"]) == "DELETE, GET, PUT"

"""optimist.fastapi.handlers: every error as problem details, FastAPI's validation
errors and undecodable bodies included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from optimist.errors import ServiceUnavailable
from tests.fastapi.items import assert_problem, client_for, items_app

pytestmark = pytest.mark.anyio

MALFORMED = b'{"name": '


@pytest.fixture
def app() -> FastAPI:
    """A fresh items app with one item in each store."""
    return items_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the app in-process."""
    async with client_for(app) as client:
        yield client


# -- validation problems ---------------------------------------------------------------


async def test_invalid_body_is_422_with_invalid_params(client: httpx.AsyncClient) -> None:
    """A body that fails validation is a 422 naming each invalid member."""
    response = await client.put("/projects/1", json={"name": "", "status": "bogus"})
    problem = assert_problem(response, 422)
    names = [param["name"] for param in problem["invalid_params"]]
    assert names == ["body.name", "body.status"]
    assert problem["detail"].startswith("The request is invalid: body.name: ")


async def test_missing_member_is_named(client: httpx.AsyncClient) -> None:
    """A missing required member is reported by its location."""
    response = await client.put("/projects/1", json={})
    problem = assert_problem(response, 422)
    assert problem["invalid_params"] == [{"name": "body.name", "reason": "Field required"}]


async def test_invalid_query_is_422_named_by_location(client: httpx.AsyncClient) -> None:
    """An out-of-range query parameter is reported as ``query.limit``."""
    response = await client.get("/admin/items", params={"limit": "0"})
    problem = assert_problem(response, 422)
    assert [param["name"] for param in problem["invalid_params"]] == ["query.limit"]


async def test_malformed_json_is_422_with_position(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 422 saying where it broke."""
    response = await client.put(
        "/projects/1", content=MALFORMED, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    [param] = problem["invalid_params"]
    assert param["name"] == "body"
    assert param["reason"].startswith("malformed JSON at position 9")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": "\xff\xfe"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"name": ' + b"9" * 5000 + b"}", "could not be parsed"),
    ],
    ids=["invalid-utf8", "deep-nesting", "huge-integer"],
)
async def test_undecodable_body_is_422(
    client: httpx.AsyncClient, content: bytes, reason: str
) -> None:
    """A body the JSON parser cannot even read is a 422 problem, never a 5xx."""
    response = await client.put(
        "/projects/1", content=content, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["invalid_params"] == [{"name": "body", "reason": reason}]


async def test_many_validation_errors_are_capped(client: httpx.AsyncClient) -> None:
    """A body failing validation everywhere gives a bounded list of invalid_params."""
    response = await client.get("/admin/items", params={"limit": "x" * 20_000})
    problem = assert_problem(response, 422)
    assert len(response.content) < 2_000
    assert problem["invalid_params"][0]["name"] == "query.limit"


# -- other errors ----------------------------------------------------------------------


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route matches is a 404 problem."""
    problem = assert_problem(await client.get("/nowhere"), 404)
    assert problem["detail"] == "No resource matches the request's path."


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    """A method the route does not serve is a 405 problem with Allow."""
    response = await client.post("/projects/1", json={})
    problem = assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
    assert problem["detail"].startswith("POST is not allowed here")


async def test_unexpected_error_is_generic_500(client: httpx.AsyncClient) -> None:
    """An unexpected exception is a 500 problem that leaks nothing about its cause."""
    response = await client.get("/boom")
    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert problem["detail"] == "The server could not complete the request."


async def test_an_unavailable_database_is_503_with_retry_after(app: FastAPI) -> None:
    """A ServiceUnavailable raised by a route is a 503 problem with Retry-After."""

    @app.get("/down")
    async def down() -> None:
        raise ServiceUnavailable("cannot connect to db.internal", retry_after=3)

    async with client_for(app) as client:
        response = await client.get("/down")
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "3"
    assert (problem["retry_after"], "db.internal" in response.text) == (3, False)


async def test_missing_resource_is_404_problem(client: httpx.AsyncClient) -> None:
    """A ResourceNotFound from a dependency is a 404 problem naming the resource."""
    problem = assert_problem(await client.get("/projects/nope"), 404)
    assert problem["detail"] == "item nope not found"

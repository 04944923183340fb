"""optimist.fastapi.openapi: problem details and precondition headers in the document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header

from optimist.etag import EntityTag
from optimist.fastapi import (
    conditional,
    document_problems,
    every_route,
    install_problem_handlers,
    operations_depending_on,
)
from optimist.httpdate import http_date
from optimist.preconditions import Preconditions
from optimist.starlette import ConditionalRequest
from tests.fastapi.items import MODIFIED, Strict, build_app, client_for, items_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the items app in-process."""
    async with client_for(items_app()) as client:
        yield client


# -- OpenAPI ---------------------------------------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    """The app's OpenAPI document."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_openapi_declares_problem_schema(openapi: dict[str, Any]) -> None:
    """The ProblemDetails schema, with invalid_params, is in the components."""
    schemas = openapi["components"]["schemas"]
    assert {"type", "title", "status", "detail", "invalid_params", "current_etag"} <= set(
        schemas["ProblemDetails"]["properties"]
    )
    assert set(schemas["InvalidParameter"]["required"]) == {"name", "reason"}


async def test_openapi_412_is_problem_with_etag_header(openapi: dict[str, Any]) -> None:
    """A route's declared 412 is problem+json and documents the ETag header."""
    declared = openapi["paths"]["/projects/{key}"]["put"]["responses"]["412"]
    schema = declared["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "ETag" in declared["headers"]


async def test_openapi_304_has_no_content(openapi: dict[str, Any]) -> None:
    """A declared 304 has no content, only the ETag header."""
    declared = openapi["paths"]["/projects/{key}"]["get"]["responses"]["304"]
    assert "content" not in declared
    assert "ETag" in declared["headers"]


async def test_openapi_replaces_default_422(openapi: dict[str, Any]) -> None:
    """FastAPI's own 422 schema gives way to problem details everywhere."""
    undeclared = openapi["paths"]["/admin/items/{key}"]["get"]["responses"]["422"]
    assert list(undeclared["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    assert "ValidationError" not in openapi["components"]["schemas"]


PRECONDITION_HEADERS = {"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}


def header_parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The header parameters of an OpenAPI operation, by name."""
    parameters = operation.get("parameters", [])
    return {p["name"]: p for p in parameters if p["in"] == "header"}


async def test_openapi_documents_precondition_headers(openapi: dict[str, Any]) -> None:
    """The conditional dependency documents the four precondition headers."""
    headers = header_parameters(openapi["paths"]["/projects/{key}"]["put"])
    assert set(headers) == PRECONDITION_HEADERS


async def test_openapi_precondition_headers_are_optional_and_described(
    openapi: dict[str, Any],
) -> None:
    """Each precondition header is an optional string header with its description."""
    headers = header_parameters(openapi["paths"]["/admin/items/{key}"]["get"])
    assert headers["If-None-Match"]["description"] == 'Entity-tags, or "*"'
    for parameter in headers.values():
        assert parameter["required"] is False
        assert {"type": "string"} in parameter["schema"]["anyOf"]
        assert parameter["description"] == parameter["schema"]["description"]


async def test_openapi_precondition_headers_only_where_conditional(
    openapi: dict[str, Any],
) -> None:
    """A route without the conditional dependency documents no precondition header."""
    assert not header_parameters(openapi["paths"]["/admin/items"]["get"])
    assert not header_parameters(openapi["paths"]["/boom"]["get"])


async def test_conditional_reads_the_headers_it_documents() -> None:
    """The documented headers reach ConditionalRequest, list lines joined (RFC 9110 §5.3)."""
    app = FastAPI()
    install_problem_handlers(app)

    seen: list[ConditionalRequest] = []

    @app.get("/echo")
    async def echo(cond: Strict) -> None:
        seen.append(cond)

    date = http_date(MODIFIED)
    headers = [
        ("If-Match", '"a"'),
        ("If-Match", '"b"'),
        ("If-None-Match", '"c"'),
        ("If-Modified-Since", date),
        ("If-Unmodified-Since", date),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/echo", headers=headers)).status_code == 200
    (bound,) = seen
    assert bound.if_match == '"a", "b"'
    assert bound.received == Preconditions(
        if_match=(EntityTag("a"), EntityTag("b")),
        if_none_match=(EntityTag("c"),),
        if_modified_since=MODIFIED.replace(microsecond=0),
        if_unmodified_since=MODIFIED.replace(microsecond=0),
    )
    assert set(header_parameters(app.openapi()["paths"]["/echo"]["get"])) == PRECONDITION_HEADERS


async def guarded(cond: Strict) -> ConditionalRequest:
    """The conditional request, through a dependency of its own."""
    return cond


Guarded = Annotated[ConditionalRequest, Depends(guarded)]


def test_openapi_precondition_headers_through_a_sub_dependency() -> None:
    """A route that gets the dependency through another dependency documents the headers."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/nested")
    async def nested(cond: Guarded) -> None:
        return None

    router = APIRouter(dependencies=[Depends(conditional())])

    @router.delete("/routed")
    async def routed() -> None:
        return None

    app.include_router(router)
    paths = app.openapi()["paths"]
    assert set(header_parameters(paths["/nested"]["get"])) == PRECONDITION_HEADERS
    assert set(header_parameters(paths["/routed"]["delete"])) == PRECONDITION_HEADERS


@dataclass
class Limit:
    """A dependency that is a callable instance, unhashable like any mutable dataclass."""

    most: int

    async def __call__(self) -> int:
        return self.most


def test_openapi_with_an_unhashable_dependency() -> None:
    """Looking for the conditional dependency copes with a dependency that is not hashable."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/limited")
    async def limited(most: Annotated[int, Depends(Limit(3))], cond: Strict) -> None:
        return None

    operation = app.openapi()["paths"]["/limited"]["get"]
    assert set(header_parameters(operation)) == PRECONDITION_HEADERS


def test_openapi_keeps_a_route_s_own_precondition_header() -> None:
    """A route that declares If-Match itself keeps its declaration, listed once."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.put("/own")
    async def own(
        cond: Strict,
        if_match: Annotated[str, Header(alias="If-Match", description="Required here")],
    ) -> None:
        return None

    parameters = app.openapi()["paths"]["/own"]["put"]["parameters"]
    names = [p["name"] for p in parameters]
    assert sorted(names) == sorted(PRECONDITION_HEADERS)
    assert header_parameters({"parameters": parameters})["If-Match"]["required"] is True


def test_openapi_precondition_headers_of_a_webhook() -> None:
    """A webhook that depends on the dependency documents the headers too."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.webhooks.post("item-changed")
    async def changed(cond: Strict) -> None:
        return None

    operation = app.openapi()["webhooks"]["item-changed"]["post"]
    assert set(header_parameters(operation)) == PRECONDITION_HEADERS


async def test_openapi_has_no_head_operations(openapi: dict[str, Any]) -> None:
    """Answering HEAD adds no operations to the document."""
    assert all("head" not in operations for operations in openapi["paths"].values())


def test_documenting_twice_changes_nothing() -> None:
    """document_problems is idempotent: a second call leaves the document as it was."""
    app = build_app()
    once = json.dumps(app.openapi(), sort_keys=True)
    document_problems(app)
    app.openapi_schema = None
    assert json.dumps(app.openapi(), sort_keys=True) == once


def _caller() -> str:
    return "someone"


def _account(who: Annotated[str, Depends(_caller)]) -> str:
    return who


def test_operations_depending_on_a_dependency_at_any_depth() -> None:
    """The operations that solve a dependency are found in the route's own dependencies,
    a dependency of one, and an included router's dependencies, and no others."""

    app = FastAPI()
    router = APIRouter(prefix="/guarded", dependencies=[Depends(_caller)])

    @router.get("/{item}")
    def guarded(item: str) -> None: ...

    @app.get("/direct")
    def direct(who: Annotated[str, Depends(_caller)]) -> None: ...

    @app.put("/nested")
    def nested(who: Annotated[str, Depends(_account)]) -> None: ...

    @app.get("/open")
    def open_(who: Annotated[str, Depends(_account)] = "") -> None: ...

    @app.get("/hidden", include_in_schema=False)
    def hidden(who: Annotated[str, Depends(_caller)]) -> None: ...

    app.include_router(router)
    assert operations_depending_on(app, _caller) == {
        ("/guarded/{item}", "get"),
        ("/direct", "get"),
        ("/nested", "put"),
        ("/open", "get"),
    }
    assert operations_depending_on(app, _account) == {("/nested", "put"), ("/open", "get")}


def test_every_route_lists_included_routes_with_their_full_paths() -> None:
    """An included router's routes come in its place, with the prefix in their path;
    the app's own routes come as they are."""
    app = FastAPI()
    router = APIRouter(prefix="/inner")

    @app.get("/first")
    def first() -> None: ...

    @router.get("/{item}")
    def inner(item: str) -> None: ...

    app.include_router(router)

    @app.get("/last")
    def last() -> None: ...

    own = {id(route) for route in app.routes}
    listed = [(route.path_format, id(route) in own) for route in every_route(app.routes)]
    assert listed[-3:] == [("/first", True), ("/inner/{item}", False), ("/last", True)]

"""The OpenAPI document: every status a route can answer, with the problem schema; the
ETag and Location of representations, the admin identity as required headers, and the
links from a representation to the conditional writes of its resource."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI

from optimist.service.app import create_app
from optimist.service.settings import Settings
from tests.support.service import Service


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The service's OpenAPI document (no database needed to build it)."""
    app: FastAPI = create_app(
        Settings(database_url="sqlite+aiosqlite://", node_id="docs", secret_key="docs")
    )
    return app.openapi()


ADMIN_READ = {"401", "404", "304"}
ADMIN_WRITE = {"401", "403", "404", "412", "422"}
#: What each operation must document, beside its success status.
EXPECTED = {
    ("get", "/admin/users"): {"400", "401", "410", "422"},
    ("post", "/admin/users"): {"401", "403", "409", "422"},
    ("get", "/admin/users/{user_id}"): ADMIN_READ,
    ("patch", "/admin/users/{user_id}"): ADMIN_WRITE,
    ("put", "/admin/users/{user_id}"): ADMIN_WRITE,
    ("delete", "/admin/users/{user_id}"): {"400", "401", "403", "404", "412"},
    ("get", "/admin/roles/{role_id}"): ADMIN_READ,
    ("patch", "/admin/roles/{role_id}"): ADMIN_WRITE,
    ("post", "/admin/feature-flags"): {"401", "403", "409", "412", "422"},
    ("get", "/admin/feature-flags/{key}"): ADMIN_READ,
    ("patch", "/admin/feature-flags/{key}"): ADMIN_WRITE,
    ("post", "/projects"): {"413", "415", "422"},
    ("get", "/projects"): {"400", "410", "422"},
    ("get", "/projects/{project_id}"): {"304", "404"},
    ("put", "/projects/{project_id}"): {"404", "412", "413", "415", "422"},
    ("delete", "/projects/{project_id}"): {"404", "412", "428"},
    ("post", "/v1/tests/sessions"): {"422"},
    ("get", "/v1/tests/sessions"): {"400", "410", "422"},
    ("get", "/v1/tests/sessions/{session_id}"): {"304", "404"},
    ("put", "/v1/tests/sessions/{session_id}"): {"404", "412", "422"},
    ("patch", "/v1/tests/sessions/{session_id}"): {"404", "412", "422"},
    ("delete", "/v1/tests/sessions/{session_id}"): {"404", "412"},
}


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED), ids=str)
def test_operation_documents_its_error_statuses(
    spec: dict[str, Any], method: str, path: str
) -> None:
    """Each operation lists the statuses SPEC §2 and §4 say it can answer."""
    documented = set(spec["paths"][path][method]["responses"])
    assert EXPECTED[(method, path)] <= documented


def test_every_error_response_is_problem_json(spec: dict[str, Any]) -> None:
    """Every 4xx a route documents is application/problem+json with the problem schema."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("4"):
                    continue
                content = response.get("content", {})
                assert "application/problem+json" in content, (method, path, status)
                schema = content["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProblemDetails"}


def test_problem_schema_has_the_rfc_9457_members(spec: dict[str, Any]) -> None:
    """The ProblemDetails schema names type, title, status, detail and invalid_params."""
    members = spec["components"]["schemas"]["ProblemDetails"]["properties"]
    assert {"type", "title", "status", "detail", "invalid_params", "current_etag"} <= set(members)


def test_304_and_412_document_the_etag_header(spec: dict[str, Any]) -> None:
    """A 304 or a 412 carries the current ETag, and the document says so."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status in ("304", "412"):
                if status in operation["responses"]:
                    assert "ETag" in operation["responses"][status].get("headers", {})


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
async def test_documents_are_served(service: Service, path: str) -> None:
    """The running service serves its OpenAPI document and the docs page."""
    response = await service.client.get(path)
    assert response.status_code == 200


# -- representations, identities and links --------------------------------------------

#: Each resource's item path: its collection (POST creates one) and the methods on the
#: item that answer its representation.
RESOURCES = {
    "/admin/users/{user_id}": ("/admin/users", "get", "patch", "put"),
    "/admin/roles/{role_id}": ("/admin/roles", "get", "patch"),
    "/admin/feature-flags/{key}": ("/admin/feature-flags", "get", "patch"),
    "/projects/{project_id}": ("/projects", "get", "put"),
    "/v1/tests/sessions/{session_id}": ("/v1/tests/sessions", "get", "patch", "put"),
}
#: (method, path, item path) of every operation whose success is a representation.
REPRESENTATIONS = sorted(
    operation
    for item, (collection, *methods) in RESOURCES.items()
    for operation in [("post", collection, item), *((m, item, item) for m in methods)]
)
CREATES = [(m, p, item) for m, p, item in REPRESENTATIONS if m == "post"]
WRITES = ("put", "patch", "delete")


def success(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The one 2xx response of an operation."""
    responses = spec["paths"][path][method]["responses"]
    (status,) = (s for s in responses if s.startswith("2"))
    response: dict[str, Any] = responses[status]
    return response


def resolve(spec: dict[str, Any], schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The schema of the member ``pointer`` (RFC 6901, without escapes) names in ``schema``."""
    for member in pointer.strip("/").split("/"):
        while "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        schema = schema["properties"][member]
    return schema


@pytest.mark.parametrize(("method", "path", "item"), REPRESENTATIONS, ids=str)
def test_representation_declares_etag(
    spec: dict[str, Any], method: str, path: str, item: str
) -> None:
    """Each operation answering a representation declares its ETag and Last-Modified."""
    headers = success(spec, method, path)["headers"]
    assert {"ETag", "Last-Modified"} <= set(headers)
    assert headers["ETag"]["required"] is True


@pytest.mark.parametrize(("method", "path", "item"), CREATES, ids=str)
def test_created_declares_location(spec: dict[str, Any], method: str, path: str, item: str) -> None:
    """Each create declares its 201 with a Location header."""
    assert spec["paths"][path][method]["responses"]["201"]["headers"]["Location"]["required"]


def test_only_representations_declare_etag(spec: dict[str, Any]) -> None:
    """No other 2xx (lists, 204, tokens, health) claims an ETag it does not send."""
    declared = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith("2") and "ETag" in response.get("headers", {})
    }
    assert declared == {(method, path) for method, path, _ in REPRESENTATIONS}


@pytest.mark.parametrize("field", ["X-Tenant-Id", "X-User-Role"])
def test_identity_headers_are_required_on_every_admin_operation(
    spec: dict[str, Any], field: str
) -> None:
    """Every /admin operation documents the gateway's identity headers as required strings."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/admin"):
                (parameter,) = (p for p in operation["parameters"] if p["name"] == field)
                assert parameter["required"] is True, (method, path)
                assert parameter["schema"]["type"] == "string", (method, path)


def test_csrf_header_is_required_on_every_admin_write(spec: dict[str, Any]) -> None:
    """Every unsafe /admin operation documents X-CSRF-Token as required."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/admin") and method != "get":
                names = {p["name"] for p in operation["parameters"] if p["required"]}
                assert "X-CSRF-Token" in names, (method, path)


@pytest.mark.anyio
async def test_a_missing_identity_header_is_still_the_service_s_401(service: Service) -> None:
    """Documented as required, a missing identity is answered by the service (401), not 422."""
    response = await service.client.get("/admin/users", headers={"X-User-Role": "admin"})
    assert response.status_code == 401
    assert response.json()["invalid_params"] == [{"name": "X-Tenant-Id", "reason": "required"}]


@pytest.mark.parametrize(("method", "path", "item"), REPRESENTATIONS, ids=str)
def test_representation_links_to_every_write_of_its_resource(
    spec: dict[str, Any], method: str, path: str, item: str
) -> None:
    """A representation links to each PUT, PATCH and DELETE of its resource, by operationId."""
    ids = {
        operation["operationId"]: (m, p)
        for p, operations in spec["paths"].items()
        for m, operation in operations.items()
    }
    links = success(spec, method, path)["links"].values()
    targets = {ids[link["operationId"]] for link in links}
    assert targets == {(write, item) for write in WRITES if write in spec["paths"][item]}


@pytest.mark.parametrize(("method", "path", "item"), REPRESENTATIONS, ids=str)
def test_links_pass_the_etag_as_if_match(
    spec: dict[str, Any], method: str, path: str, item: str
) -> None:
    """Each link sets If-Match to the response's ETag, and the path to the same resource."""
    response = success(spec, method, path)
    (parameter,) = (p for p in spec["paths"][item]["get"]["parameters"] if p["in"] == "path")
    name = parameter["name"]
    for link in response["links"].values():
        values = link["parameters"]
        assert values["header.If-Match"] == "$response.header.ETag"
        if method == "post":
            pointer = values[name].removeprefix("$response.body#")
            schema = response["content"]["application/json"]["schema"]
            assert resolve(spec, schema, pointer)["type"] == "string"
        else:
            assert values[name] == f"$request.path.{name}"


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    """The document, links included, validates against the OpenAPI 3.1 schema."""
    assert spec["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(copy.deepcopy(spec)).validate()

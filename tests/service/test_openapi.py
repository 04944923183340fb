"""The OpenAPI document: every status a route can answer, with the problem schema."""

from __future__ import annotations

from typing import Any

import pytest
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

"""``/admin/roles``: creates, unique names, permissions, merge patches, allowed methods."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.admin import WEAK_ETAG, identity, problem, writer
from tests.support.service import Service

pytestmark = pytest.mark.anyio

ROLE = "/admin/roles/1"


async def create(service: Service, body: dict[str, Any], tenant: str = "1") -> Any:
    """POST /admin/roles as admin of ``tenant``."""
    headers = await writer(service.client, tenant=tenant)
    return await service.client.post("/admin/roles", headers=headers, json=body)


async def patch(service: Service, body: dict[str, Any]) -> Any:
    """PATCH the demo role as admin."""
    return await service.client.patch(ROLE, headers=await writer(service.client), json=body)


async def test_demo_role_reads_as_the_spec_says(service: Service) -> None:
    """A role is {id, name, permissions, updated_at}."""
    response = await service.client.get(ROLE, headers=identity("viewer"))
    role = response.json()
    assert set(role) == {"id", "name", "permissions", "updated_at"}
    assert (role["id"], role["name"]) == ("1", "editor")
    assert role["permissions"] == ["feature-flags:write", "users:read"]


async def test_create_answers_201_with_location_and_etag(service: Service) -> None:
    """POST /admin/roles: 201, Location and ETag; the server chooses the id."""
    response = await create(service, {"name": "auditor", "permissions": ["users:read"]})
    assert response.status_code == 201
    role = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", role["id"])
    assert (role["name"], role["permissions"]) == ("auditor", ["users:read"])
    assert response.headers["location"] == f"/admin/roles/{role['id']}"
    assert WEAK_ETAG.fullmatch(response.headers["etag"])
    read = await service.client.get(response.headers["location"], headers=identity())
    assert read.headers["etag"] == response.headers["etag"]


async def test_permissions_default_to_none(service: Service) -> None:
    """A role created without permissions has an empty list."""
    assert (await create(service, {"name": "nobody"})).json()["permissions"] == []


async def test_duplicate_name_in_tenant_is_409(service: Service) -> None:
    """A second role named like one the tenant has is a 409 naming it."""
    response = await create(service, {"name": "editor"})
    assert "editor" in problem(response, 409)["detail"]


async def test_same_name_in_another_tenant_is_fine(service: Service) -> None:
    """Role names are unique per tenant."""
    assert (await create(service, {"name": "editor"}, tenant="2")).status_code == 201


async def test_rename_to_a_taken_name_is_409(service: Service) -> None:
    """PATCH to another role's name is a 409; nothing is written."""
    await create(service, {"name": "auditor"})
    problem(await patch(service, {"name": "auditor"}), 409)
    assert (await service.client.get(ROLE, headers=identity())).json()["name"] == "editor"


async def test_patch_replaces_the_permissions_array(service: Service) -> None:
    """A merge patch replaces an array whole (RFC 7396 §2)."""
    response = await patch(service, {"permissions": ["roles:read"]})
    assert response.json()["permissions"] == ["roles:read"]
    assert response.json()["name"] == "editor"


async def test_patch_null_empties_the_permissions(service: Service) -> None:
    """null removes the permissions: the role has none."""
    assert (await patch(service, {"permissions": None})).json()["permissions"] == []


async def test_patch_null_cannot_remove_the_name(service: Service) -> None:
    """Every role has a name: null for it is a 422."""
    response = await patch(service, {"name": None})
    assert problem(response, 422)["invalid_params"][0]["name"] == "body.name"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "r" * 101}, "body.name"),
        ({"name": "a\x00b"}, "body.name"),
        ({"name": "ok", "permissions": "users:read"}, "body.permissions"),
        ({"name": "ok", "permissions": ["has space"]}, "body.permissions.0"),
        ({"name": "ok", "permissions": [""]}, "body.permissions.0"),
        ({"name": "ok", "permissions": [7]}, "body.permissions.0"),
        ({"name": "ok", "permissions": ["p" * 101]}, "body.permissions.0"),
        ({"name": "ok", "permissions": [f"p{n}" for n in range(101)]}, "body.permissions"),
        ({"name": "ok", "id": "1"}, "body.id"),
    ],
    ids=[
        "no-name",
        "empty-name",
        "long-name",
        "nul-in-name",
        "permissions-not-list",
        "permission-space",
        "permission-empty",
        "permission-number",
        "permission-long",
        "too-many",
        "client-id",
    ],
)
async def test_invalid_role_is_422(service: Service, body: dict[str, Any], name: str) -> None:
    """Names of 1 to 100 characters, up to 100 printable permissions, nothing else."""
    response = await create(service, body)
    assert name in [param["name"] for param in problem(response, 422)["invalid_params"]]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_roles_cannot_be_replaced_or_deleted(service: Service, method: str) -> None:
    """Roles answer GET and PATCH only (seed 002's table): 405 with Allow."""
    headers = await writer(service.client, If_Match="*")
    response = await service.client.request(method, ROLE, headers=headers, json={"name": "x"})
    problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "PATCH"}
    assert method not in response.headers["allow"]

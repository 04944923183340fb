"""``/admin/users``: creates, unique emails, validation, merge patches and replacements."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.admin import TIMESTAMP, USER, WEAK_ETAG, etag_of, identity, problem, writer
from tests.support.service import Service

pytestmark = pytest.mark.anyio

NEW = {"email": "new@example.com", "name": "New User", "role": "viewer"}


async def create(service: Service, body: dict[str, Any], tenant: str = "1") -> Any:
    """POST /admin/users as admin of ``tenant``."""
    headers = await writer(service.client, tenant=tenant)
    return await service.client.post("/admin/users", headers=headers, json=body)


async def current(service: Service) -> dict[str, Any]:
    """User 123 as it is now."""
    body: dict[str, Any] = (await service.client.get(USER, headers=identity())).json()
    return body


async def test_create_answers_201_with_location_and_etag(service: Service) -> None:
    """POST /admin/users: 201, Location of the new user, its ETag, the id chosen by the server."""
    response = await create(service, NEW)
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "email", "name", "role", "created_at", "updated_at"}
    assert {key: user[key] for key in NEW} == NEW
    assert re.fullmatch(r"[0-9a-f]{32}", user["id"])
    assert TIMESTAMP.fullmatch(user["created_at"])
    assert response.headers["location"] == f"/admin/users/{user['id']}"
    assert WEAK_ETAG.fullmatch(response.headers["etag"])
    read = await service.client.get(response.headers["location"], headers=identity())
    assert read.json() == user
    assert read.headers["etag"] == response.headers["etag"]


async def test_create_ids_differ(service: Service) -> None:
    """Two creates get two ids."""
    first = (await create(service, NEW)).json()
    second = (await create(service, {**NEW, "email": "other@example.com"})).json()
    assert first["id"] != second["id"]


async def test_name_defaults_to_empty(service: Service) -> None:
    """A user created without a name has the empty name."""
    response = await create(service, {"email": "new@example.com", "role": "admin"})
    assert response.json()["name"] == ""


async def test_duplicate_email_in_tenant_is_409(service: Service) -> None:
    """A second user with an email the tenant already has is a 409 naming the email."""
    response = await create(service, {**NEW, "email": "user@example.com"})
    assert "user@example.com" in problem(response, 409)["detail"]
    listed = await service.client.get("/admin/users", headers=identity())
    assert len(listed.json()["data"]) == 1


@pytest.mark.parametrize(
    "email", ["USER@example.com", "User@Example.COM"], ids=["upper-case", "mixed-case"]
)
async def test_email_in_another_case_is_the_same_email(service: Service, email: str) -> None:
    """Uniqueness ignores case: USER@example.com beside user@example.com is a 409."""
    response = await create(service, {**NEW, "email": email})
    assert "user@example.com" in problem(response, 409)["detail"]
    listed = await service.client.get("/admin/users", headers=identity())
    assert [user["email"] for user in listed.json()["data"]] == ["user@example.com"]


async def test_email_keeps_the_case_it_was_given(service: Service) -> None:
    """The address is stored and shown as sent; only uniqueness ignores its case."""
    response = await create(service, {**NEW, "email": "New.User@Example.com"})
    assert response.json()["email"] == "New.User@Example.com"


async def test_same_email_in_another_tenant_is_fine(service: Service) -> None:
    """Emails are unique per tenant: tenant 2 may have user@example.com too."""
    response = await create(service, {**NEW, "email": "user@example.com"}, tenant="2")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        ".a@example.com",
        "a..b@example.com",
        "a@example..com",
        "a@-example.com",
        "a@example.c",
        f"{'a' * 65}@example.com",
        f"a@{'b' * 320}.com",
        "a@exämple.com",
        "",
    ],
)
async def test_invalid_email_is_422(service: Service, email: str) -> None:
    """An email that is not an address is a 422 naming body.email."""
    response = await create(service, {**NEW, "email": email})
    assert problem(response, 422)["invalid_params"][0]["name"] == "body.email"


@pytest.mark.parametrize("email", ["first.last+tag@sub.example.co", "o'neil@example.org"])
async def test_valid_email_shapes_are_accepted(service: Service, email: str) -> None:
    """Dot-atom local parts and multi-label domains are addresses."""
    assert (await create(service, {**NEW, "email": email})).status_code == 201


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"email": "a@example.com"}, "body.role"),
        ({"role": "admin"}, "body.email"),
        ({**NEW, "role": "superuser"}, "body.role"),
        ({**NEW, "role": "Admin"}, "body.role"),
        ({**NEW, "name": "n" * 201}, "body.name"),
        ({**NEW, "name": 7}, "body.name"),
        ({**NEW, "id": "chosen"}, "body.id"),
        ({**NEW, "created_at": "2025-01-15T10:30:00Z"}, "body.created_at"),
    ],
    ids=[
        "no-role",
        "no-email",
        "unknown-role",
        "role-case",
        "long-name",
        "name-not-string",
        "client-id",
        "server-member",
    ],
)
async def test_invalid_create_is_422(service: Service, body: dict[str, Any], name: str) -> None:
    """Missing members, unknown roles, long or mistyped names and server members are 422."""
    response = await create(service, body)
    names = [param["name"] for param in problem(response, 422)["invalid_params"]]
    assert name in names


async def test_patch_sets_only_the_members_given(service: Service) -> None:
    """PATCH changes the members it names and leaves the others (RFC 7396)."""
    before = await current(service)
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={"name": "Renamed"})
    assert response.status_code == 200
    after = response.json()
    assert after["name"] == "Renamed"
    assert {k: after[k] for k in ("id", "email", "role", "created_at")} == {
        k: before[k] for k in ("id", "email", "role", "created_at")
    }


async def test_patch_accepts_merge_patch_media_type(service: Service) -> None:
    """PATCH takes application/merge-patch+json (RFC 7396 §4)."""
    headers = {**await writer(service.client), "Content-Type": "application/merge-patch+json"}
    response = await service.client.patch(USER, headers=headers, content=b'{"role": "viewer"}')
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


async def test_patch_null_removes_the_name(service: Service) -> None:
    """A merge patch's null removes the name: it becomes empty."""
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={"name": None})
    assert response.json()["name"] == ""


@pytest.mark.parametrize("member", ["email", "role"])
async def test_patch_null_cannot_remove_required_members(service: Service, member: str) -> None:
    """email and role cannot be removed: null for them is a 422, nothing written."""
    before = await current(service)
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={member: None})
    assert problem(response, 422)["invalid_params"][0]["name"] == f"body.{member}"
    assert await current(service) == before


async def test_patch_to_a_taken_email_is_409(service: Service) -> None:
    """Changing the email to another user's is a 409; nothing is written."""
    await create(service, NEW)
    before = await current(service)
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={"email": NEW["email"]})
    problem(response, 409)
    assert await current(service) == before


async def test_patch_to_a_taken_email_in_another_case_is_409(service: Service) -> None:
    """Changing the email to another user's, in other letters' case, is a 409 too."""
    await create(service, NEW)
    before = await current(service)
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={"email": "NEW@example.com"})
    problem(response, 409)
    assert await current(service) == before


async def test_own_email_in_another_case_is_no_conflict(service: Service) -> None:
    """A user may change the case of its own address."""
    headers = await writer(service.client)
    response = await service.client.patch(USER, headers=headers, json={"email": "USER@example.com"})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "USER@example.com"


async def test_put_replaces_every_editable_member(service: Service) -> None:
    """PUT replaces email, name and role; a name left out becomes empty; created_at stays."""
    before = await current(service)
    old_etag = await etag_of(service.client)
    headers = await writer(service.client)
    body = {"email": "replaced@example.com", "role": "admin"}
    response = await service.client.put(USER, headers=headers, json=body)
    assert response.status_code == 200
    after = response.json()
    assert (after["email"], after["name"], after["role"]) == ("replaced@example.com", "", "admin")
    assert after["created_at"] == before["created_at"]
    assert response.headers["etag"] != old_etag
    assert await etag_of(service.client) == response.headers["etag"]


async def test_put_missing_a_required_member_is_422(service: Service) -> None:
    """PUT without email is a 422: a replacement must be whole."""
    headers = await writer(service.client)
    response = await service.client.put(USER, headers=headers, json={"role": "admin"})
    assert problem(response, 422)["invalid_params"][0]["name"] == "body.email"


async def test_put_to_an_unknown_user_is_404(service: Service) -> None:
    """PUT never creates: the id is the server's to choose."""
    headers = await writer(service.client)
    response = await service.client.put("/admin/users/nobody", headers=headers, json=NEW)
    problem(response, 404)

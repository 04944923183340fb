"""``/admin/feature-flags``: client-chosen keys, create-if-absent, rollout, merge patches."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.admin import WEAK_ETAG, etag_of, identity, problem, writer
from tests.support.service import Service

pytestmark = pytest.mark.anyio

FLAG = "/admin/feature-flags/new-dashboard"
NEW = {"key": "dark-mode", "enabled": True, "description": "Dark theme", "rollout_percentage": 10}


async def create(service: Service, body: dict[str, Any], tenant: str = "1", **more: str) -> Any:
    """POST /admin/feature-flags as an editor of ``tenant``."""
    headers = await writer(service.client, "editor", tenant, **more)
    return await service.client.post("/admin/feature-flags", headers=headers, json=body)


async def patch(service: Service, body: dict[str, Any]) -> Any:
    """PATCH the demo flag as an editor."""
    headers = await writer(service.client, "editor")
    return await service.client.patch(FLAG, headers=headers, json=body)


async def test_demo_flag_reads_as_the_spec_says(service: Service) -> None:
    """A flag is {key, enabled, description, rollout_percentage, updated_at}."""
    flag = (await service.client.get(FLAG, headers=identity("viewer"))).json()
    assert set(flag) == {"key", "enabled", "description", "rollout_percentage", "updated_at"}
    assert (flag["key"], flag["enabled"], flag["rollout_percentage"]) == ("new-dashboard", True, 50)


async def test_create_answers_201_with_location_and_etag(service: Service) -> None:
    """POST /admin/feature-flags: 201 at the client's key, with Location and ETag."""
    response = await create(service, NEW)
    assert response.status_code == 201
    flag = response.json()
    assert {key: flag[key] for key in NEW} == NEW
    assert response.headers["location"] == "/admin/feature-flags/dark-mode"
    assert WEAK_ETAG.fullmatch(response.headers["etag"])
    assert await etag_of(service.client, response.headers["location"]) == response.headers["etag"]


async def test_create_defaults(service: Service) -> None:
    """Only the key is required: disabled, no description, 0 % rollout."""
    flag = (await create(service, {"key": "bare"})).json()
    assert (flag["enabled"], flag["description"], flag["rollout_percentage"]) == (False, "", 0)


async def test_create_if_absent_creates_a_new_key(service: Service) -> None:
    """If-None-Match: * creates a key that is free (RFC 9110 §13.1.2)."""
    assert (await create(service, NEW, If_None_Match="*")).status_code == 201


async def test_create_if_absent_on_a_taken_key_is_412(service: Service) -> None:
    """If-None-Match: * on an existing key is a 412 with the existing flag's ETag."""
    existing = await etag_of(service.client, FLAG)
    response = await create(service, {"key": "new-dashboard"}, If_None_Match="*")
    body = problem(response, 412)
    assert response.headers["etag"] == existing
    assert body["current_etag"] == existing
    assert body["detail"] == "A feature flag with this key already exists."
    assert await etag_of(service.client, FLAG) == existing


async def test_create_on_a_taken_key_is_409(service: Service) -> None:
    """Without If-None-Match, an existing key is a 409 naming it; nothing is overwritten."""
    existing = await etag_of(service.client, FLAG)
    response = await create(service, {"key": "new-dashboard", "enabled": False})
    assert "new-dashboard" in problem(response, 409)["detail"]
    assert await etag_of(service.client, FLAG) == existing


async def test_keys_are_per_tenant(service: Service) -> None:
    """Tenant 2 may create a flag with a key tenant 1 uses; tenant 1's stays as it was."""
    existing = await etag_of(service.client, FLAG)
    response = await create(service, {"key": "new-dashboard"}, tenant="2", If_None_Match="*")
    assert response.status_code == 201, response.text
    assert await etag_of(service.client, FLAG) == existing
    assert await etag_of(service.client, FLAG, tenant="2") == response.headers["etag"]


@pytest.mark.parametrize("rollout", [0, 100])
async def test_rollout_bounds_are_inclusive(service: Service, rollout: int) -> None:
    """rollout_percentage may be 0 and 100."""
    response = await patch(service, {"rollout_percentage": rollout})
    assert response.json()["rollout_percentage"] == rollout


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"rollout_percentage": -1}, "body.rollout_percentage"),
        ({"rollout_percentage": 101}, "body.rollout_percentage"),
        ({"rollout_percentage": 50.5}, "body.rollout_percentage"),
        ({"rollout_percentage": "50"}, "body.rollout_percentage"),
        ({"rollout_percentage": True}, "body.rollout_percentage"),
        ({"rollout_percentage": None}, "body.rollout_percentage"),
        ({"enabled": "yes"}, "body.enabled"),
        ({"enabled": 1}, "body.enabled"),
        ({"enabled": None}, "body.enabled"),
        ({"description": "d" * 1001}, "body.description"),
        ({"key": "renamed"}, "body.key"),
    ],
    ids=[
        "negative",
        "over-100",
        "fraction",
        "string",
        "boolean",
        "null-rollout",
        "enabled-string",
        "enabled-number",
        "null-enabled",
        "long-description",
        "key-not-editable",
    ],
)
async def test_invalid_patch_is_422(service: Service, body: dict[str, Any], name: str) -> None:
    """Rollout is an integer 0 to 100, enabled a boolean, neither removable; key is fixed."""
    before = await etag_of(service.client, FLAG)
    response = await patch(service, body)
    assert problem(response, 422)["invalid_params"][0]["name"] == name
    assert await etag_of(service.client, FLAG) == before


async def test_patch_null_empties_the_description(service: Service) -> None:
    """null removes the description: it becomes empty; other members stay."""
    flag = (await patch(service, {"description": None})).json()
    assert (flag["description"], flag["enabled"], flag["rollout_percentage"]) == ("", True, 50)


@pytest.mark.parametrize(
    "key", ["", "has space", "a/b", "k" * 101, "ünïcode", "semi;colon", ".", ".."], ids=repr
)
async def test_invalid_key_is_422(service: Service, key: str) -> None:
    """A key is 1 to 100 of A-Z a-z 0-9 . _ ~ -, so it is its own URL path segment, and
    not . or .., which clients remove from a path (RFC 3986 §5.2.4)."""
    response = await create(service, {"key": key})
    assert problem(response, 422)["invalid_params"][0]["name"] == "body.key"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_flags_cannot_be_replaced_or_deleted(service: Service, method: str) -> None:
    """Feature flags answer GET and PATCH only (seed 002's table): 405."""
    headers = await writer(service.client, If_Match="*")
    response = await service.client.request(method, FLAG, headers=headers, json={})
    problem(response, 405)

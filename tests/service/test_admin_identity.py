"""The admin API's identity headers (401), roles (403) and CSRF tokens (403)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from optimist.starlette import GATEWAY_CHALLENGE
from optimist.tokens import TokenSigner
from tests.support.admin import USER, csrf_token, identity, problem, writer
from tests.support.service import Service, running, settings_for

pytestmark = pytest.mark.anyio

FLAG = "/admin/feature-flags/new-dashboard"
ROLE = "/admin/roles/1"


def forged(service: Service, audience: str, *, age: timedelta, key: str | None = None) -> str:
    """A token made with the deployment's key (or ``key``), issued ``age`` ago."""
    secret = key or service.runtime.settings.secret_key
    assert secret is not None
    issued = datetime.now(UTC) - age
    return TokenSigner([secret], clock=lambda: issued).dumps({}, audience=audience)


# -- 401: who is asking ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-User-Role": "admin"}, "X-Tenant-Id"),
        ({"X-Tenant-Id": "1"}, "X-User-Role"),
        ({}, "X-Tenant-Id"),
        ({"X-Tenant-Id": "1", "X-User-Role": "root"}, "X-User-Role"),
        ({"X-Tenant-Id": "1", "X-User-Role": "Admin"}, "X-User-Role"),
        ({"X-Tenant-Id": "1", "X-User-Role": ""}, "X-User-Role"),
        ({"X-Tenant-Id": "", "X-User-Role": "admin"}, "X-Tenant-Id"),
        ({"X-Tenant-Id": "1:admin", "X-User-Role": "admin"}, "X-Tenant-Id"),
        ({"X-Tenant-Id": "t" * 65, "X-User-Role": "admin"}, "X-Tenant-Id"),
        ({b"X-Tenant-Id": "é".encode(), b"X-User-Role": b"admin"}, "X-Tenant-Id"),
    ],
    ids=[
        "no-tenant",
        "no-role",
        "neither",
        "unknown-role",
        "role-case",
        "empty-role",
        "empty-tenant",
        "tenant-separator",
        "tenant-too-long",
        "tenant-non-ascii",
    ],
)
async def test_missing_or_unknown_identity_is_401(
    service: Service, headers: Mapping[str, str] | Mapping[bytes, bytes], field: str
) -> None:
    """A missing or unknown X-Tenant-Id / X-User-Role is a 401 naming the header."""
    response = await service.client.get(USER, headers=headers)
    body = problem(response, 401)
    assert body["invalid_params"][0]["name"] == field


async def test_a_401_for_identity_carries_the_gateways_challenge(service: Service) -> None:
    """A missing identity's 401 names the gateway as the source of credentials
    (RFC 9110 §11.6.1: a 401 carries a challenge)."""
    response = await service.client.get(USER, headers={"X-User-Role": "admin"})
    problem(response, 401)
    assert response.headers["www-authenticate"] == GATEWAY_CHALLENGE


@pytest.mark.parametrize("name", ["X-Tenant-Id", "X-User-Role"])
async def test_repeated_identity_header_is_401(service: Service, name: str) -> None:
    """An identity header sent twice is ambiguous: 401, whichever value came first."""
    headers = [(key, value) for key, value in identity().items() if key != name]
    value = "1" if name == "X-Tenant-Id" else "admin"
    response = await service.client.get(USER, headers=[*headers, (name, value), (name, value)])
    assert problem(response, 401)["invalid_params"][0]["name"] == name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/csrf-token"),
        ("GET", "/admin/users"),
        ("GET", USER),
        ("POST", "/admin/roles"),
        ("PATCH", FLAG),
        ("PUT", USER),
        ("DELETE", USER),
        ("GET", "/admin/users/nobody"),
    ],
    ids=["csrf-token", "list", "read", "create", "patch", "put", "delete", "missing"],
)
async def test_every_admin_route_needs_an_identity(
    service: Service, method: str, path: str
) -> None:
    """Every /admin route answers 401 first without identity, even for a missing resource."""
    response = await service.client.request(method, path, content=b"{not json")
    problem(response, 401)


async def test_untrusted_peer_is_refused_before_its_identity_is_read(service: Service) -> None:
    """From an untrusted peer even a malformed identity is the peer's 401, with a challenge
    and no word on what the fields take."""
    transport = httpx.ASGITransport(app=service.app, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(USER, headers=identity(role="root"))
    body = problem(response, 401)
    assert response.headers["www-authenticate"] == GATEWAY_CHALLENGE
    assert "invalid_params" not in body


# -- 403: roles ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_reads_are_open_to_every_role(service: Service, role: str) -> None:
    """Every role may list and read users, roles and feature flags."""
    for path in ("/admin/users", USER, "/admin/roles", ROLE, "/admin/feature-flags", FLAG):
        response = await service.client.get(path, headers=identity(role))
        assert response.status_code == 200, (path, response.text)


WRITES: list[tuple[str, str, dict[str, object] | None]] = [
    ("POST", "/admin/users", {"email": "new@example.com", "role": "viewer"}),
    ("PATCH", USER, {"name": "Changed"}),
    ("PUT", USER, {"email": "user@example.com", "role": "viewer"}),
    ("DELETE", USER, None),
    ("POST", "/admin/roles", {"name": "auditor"}),
    ("PATCH", ROLE, {"permissions": []}),
    ("POST", "/admin/feature-flags", {"key": "fresh"}),
    ("PATCH", FLAG, {"enabled": False}),
]
WRITE_IDS = [
    "create-user",
    "patch-user",
    "put-user",
    "delete-user",
    "create-role",
    "patch-role",
    "create-flag",
    "patch-flag",
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(
    ("role", "flags_allowed", "others_allowed"),
    [("admin", True, True), ("editor", True, False), ("viewer", False, False)],
    ids=["admin", "editor", "viewer"],
)
async def test_writes_need_the_resources_role(
    service: Service,
    method: str,
    path: str,
    body: dict[str, object] | None,
    role: str,
    flags_allowed: bool,
    others_allowed: bool,
) -> None:
    """Users and roles are written by admin; feature flags by admin or editor; else 403."""
    headers = await writer(service.client, role)
    if method == "DELETE":
        headers["If-Match"] = "*"
    response = await service.client.request(method, path, headers=headers, json=body)
    allowed = flags_allowed if "feature-flags" in path else others_allowed
    if allowed:
        assert response.status_code < 300, response.text
    else:
        assert "needs" in problem(response, 403)["detail"]


async def test_role_403_comes_before_404(service: Service) -> None:
    """A viewer's PATCH of a user that does not exist is a 403, not a 404."""
    headers = await writer(service.client, "viewer")
    response = await service.client.patch("/admin/users/nobody", headers=headers, json={})
    problem(response, 403)


# -- 403: CSRF -------------------------------------------------------------------------


async def test_csrf_token_is_issued_uncached(service: Service) -> None:
    """GET /admin/csrf-token answers {"csrf_token": ...}, never to be cached."""
    response = await service.client.get("/admin/csrf-token", headers=identity("viewer"))
    assert response.status_code == 200
    assert list(response.json()) == ["csrf_token"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "malformed",
        "tampered",
        "other-key",
        "other-tenant",
        "other-role",
        "expired",
        "a-cursor",
        "twice",
    ],
)
async def test_invalid_csrf_token_is_403_and_writes_nothing(service: Service, case: str) -> None:
    """A write without a genuine, fresh token of its tenant and role is a 403."""
    client = service.client
    before = (await client.get(USER, headers=identity())).headers["etag"]
    token = await csrf_token(client)
    hour = timedelta(hours=1)
    tokens = {
        "empty": "",
        "malformed": "not-a-token",
        "tampered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "other-key": forged(service, "csrf:1:admin", age=timedelta(0), key="another-secret"),
        "other-tenant": await csrf_token(client, tenant="2"),
        "other-role": await csrf_token(client, role="editor"),
        "expired": forged(service, "csrf:1:admin", age=hour + timedelta(minutes=1)),
        "a-cursor": (await client.get("/admin/feature-flags?limit=1", headers=identity())).json()[
            "next_cursor"
        ],
    }
    headers: list[tuple[str, str]] = list(identity().items())
    if case == "twice":
        headers += [("X-CSRF-Token", token), ("X-CSRF-Token", token)]
    elif case != "missing":
        headers.append(("X-CSRF-Token", tokens[case]))
    response = await client.patch(USER, headers=headers, json={"name": "Changed"})
    body = problem(response, 403)
    assert body["invalid_params"][0]["name"] == "X-CSRF-Token"
    assert "/admin/csrf-token" in body["detail"]
    assert (await client.get(USER, headers=identity())).headers["etag"] == before


async def test_csrf_token_is_valid_until_its_max_age(service: Service) -> None:
    """A token issued 59 minutes ago still works (the default max age is one hour)."""
    token = forged(service, "csrf:1:admin", age=timedelta(minutes=59))
    headers = {**identity(), "X-CSRF-Token": token}
    response = await service.client.patch(USER, headers=headers, json={"name": "Changed"})
    assert response.status_code == 200, response.text


async def test_csrf_max_age_is_a_setting(database_url: str) -> None:
    """settings.csrf_max_age bounds a token's age."""
    settings = settings_for(database_url, csrf_max_age=timedelta(seconds=30))
    async with running(settings) as service:
        token = forged(service, "csrf:1:admin", age=timedelta(seconds=31))
        headers = {**identity(), "X-CSRF-Token": token}
        response = await service.client.patch(USER, headers=headers, json={"name": "Changed"})
        problem(response, 403)


async def test_csrf_403_comes_before_404(service: Service) -> None:
    """A write to a missing user without a CSRF token is a 403, not a 404."""
    response = await service.client.patch("/admin/users/nobody", headers=identity(), json={})
    problem(response, 403)


async def test_csrf_token_verifies_in_every_worker(database_url: str) -> None:
    """Two workers of one deployment (the key generated once, kept in the database)
    accept each other's tokens."""
    settings = settings_for(database_url, secret_key=None)
    async with running(settings) as first, running(settings) as second:
        token = await csrf_token(first.client)
        headers = {**identity(), "X-CSRF-Token": token}
        response = await second.client.patch(USER, headers=headers, json={"name": "Changed"})
        assert response.status_code == 200, response.text

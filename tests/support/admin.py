"""Helpers for the admin API's tests: identities, CSRF tokens, problems, the seed's bodies."""

from __future__ import annotations

import re
from typing import Any, Final

import httpx

from tests.support.service import problem_of

PROBLEM: Final = "application/problem+json"
#: Seed 002's 412 detail and its 400 body, verbatim.
MODIFIED_DETAIL: Final = "Resource has been modified. Please fetch the latest version and retry."
SEED_400: Final = {
    "type": "about:blank",
    "title": "Bad Request",
    "status": 400,
    "detail": "If-Match header required for DELETE operations",
    "invalid_params": [{"name": "If-Match", "reason": "required"}],
}
#: A weak entity tag over a hex hash, as seed 002 shows them (W/"a1b2c3d4e5f6").
WEAK_ETAG: Final = re.compile(r'W/"[0-9a-f]{8,64}"')
#: RFC 3339 in UTC with Z, as seed 002's "2025-01-15T10:30:00Z".
TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
USER: Final = "/admin/users/123"


def identity(role: str = "admin", tenant: str = "1") -> dict[str, str]:
    """The gateway's identity headers."""
    return {"X-User-Role": role, "X-Tenant-Id": tenant}


async def csrf_token(client: httpx.AsyncClient, role: str = "admin", tenant: str = "1") -> str:
    """A CSRF token for ``role`` in ``tenant``, fetched as a client would."""
    response = await client.get("/admin/csrf-token", headers=identity(role, tenant))
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


async def writer(
    client: httpx.AsyncClient, role: str = "admin", tenant: str = "1", **more: str
) -> dict[str, str]:
    """Headers of a write: identity, a fresh CSRF token, and ``more`` (If-Match=...)."""
    headers = {**identity(role, tenant), "X-CSRF-Token": await csrf_token(client, role, tenant)}
    headers.update({name.replace("_", "-"): value for name, value in more.items()})
    return headers


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and media type."""
    return problem_of(response, status)


async def etag_of(client: httpx.AsyncClient, path: str = USER, tenant: str = "1") -> str:
    """The current ETag of the resource at ``path``."""
    response = await client.get(path, headers=identity(tenant=tenant))
    assert response.status_code == 200, response.text
    return response.headers["etag"]

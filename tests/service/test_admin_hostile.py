"""Hostile requests to the admin API: each is a 4xx problem+json and changes nothing."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.admin import PROBLEM, identity, writer
from tests.support.service import Service

pytestmark = pytest.mark.anyio

USER = "/admin/users/123"
FLAG = "/admin/feature-flags/new-dashboard"
KB10 = 10 * 1024
JSON = {"Content-Type": b"application/json"}

# (method, path, header overrides (None removes a header), body, expected status)
HOSTILE: list[tuple[str, str, Mapping[str, bytes | None], bytes | None, int]] = [
    ("PATCH", USER, JSON, b'{"name": ', 422),
    ("PATCH", USER, JSON, b'{"name": ["not", "a", "string"]}', 422),
    ("PATCH", USER, JSON, b'{"role": {"$ne": null}}', 422),
    ("PATCH", FLAG, JSON, b'{"rollout_percentage": 1e999999}', 422),
    ("PATCH", FLAG, JSON, b'{"rollout_percentage": 1' + b"0" * 5000 + b"}", 422),
    ("PATCH", USER, JSON, b"[" * 30_000 + b"]" * 30_000, 422),
    ("PATCH", USER, JSON, b'{"name": "' + b"x" * 1_000_000 + b'"}', 413),
    ("PATCH", USER, JSON, b'{"name": "\xff\xfe\xfd"}', 422),
    ("PATCH", USER, JSON, b'{"name": "\\ud800"}', 422),
    ("PATCH", USER, JSON, b'{"name": "a\\u0000b"}', 422),
    ("PATCH", USER, JSON, b'{"name": "x", "is_superuser": true}', 422),
    (
        "POST",
        "/admin/users",
        JSON,
        b'{"email": "x@example.com", "role": "admin", "id": "123"}',
        422,
    ),
    ("PATCH", USER, {**JSON, "Content-Type": b"text/html"}, b"<b>x</b>", 415),
    ("PATCH", USER, {"If-Match": b'W/"' + b"a" * KB10 + b'"'}, b'{"name": "x"}', 412),
    ("PATCH", USER, {"If-Match": b'"a", ' * (KB10 // 5)}, b'{"name": "x"}', 412),
    ("PATCH", USER, {"If-Match": b"\x00\x01\x02\x7f"}, b'{"name": "x"}', 412),
    ("PATCH", USER, {"If-Match": b'*, W/"x"'}, b'{"name": "x"}', 412),
    ("DELETE", USER, {"If-Unmodified-Since": b"\xff" * 64}, None, 400),
    ("DELETE", USER, {"If-Match": b"W/" * KB10}, None, 412),
    ("PATCH", USER, {"X-Tenant-Id": b"1" * KB10}, b'{"name": "x"}', 401),
    ("PATCH", USER, {"X-Tenant-Id": b"1\x00"}, b'{"name": "x"}', 401),
    ("PATCH", USER, {"X-User-Role": b"\xff\xfeadmin"}, b'{"name": "x"}', 401),
    ("PATCH", USER, {"X-CSRF-Token": b"A" * KB10}, b'{"name": "x"}', 403),
    ("PATCH", USER, {"X-CSRF-Token": b"\x80\x81.\x82"}, b'{"name": "x"}', 403),
    ("PATCH", USER, {"X-CSRF-Token": None}, b'{"name": "x"}', 403),
    ("GET", "/admin/users?cursor=not-a-cursor", {}, None, 400),
    ("GET", "/admin/users?cursor=" + "A" * KB10, {}, None, 400),
    ("GET", "/admin/users?cursor=" + base64.urlsafe_b64encode(b"{}" * 40).decode(), {}, None, 400),
    ("GET", "/admin/users?cursor=%00%ff", {}, None, 400),
    ("GET", "/admin/users?limit=1000000000000000000000000000", {}, None, 422),
    ("GET", "/admin/roles?limit=-1", {}, None, 422),
    ("GET", "/admin/feature-flags?limit=NaN", {}, None, 422),
    ("GET", "/admin/users/" + "9" * KB10, {}, None, 404),
    ("PATCH", "/admin/users/%00", JSON, b'{"name": "x"}', 404),
    ("DELETE", "/admin/users/..%2F..%2Fetc", {"If-Match": b"*"}, None, 404),
    ("GET", "/admin/feature-flags/%F0%9F%92%A9", {}, None, 404),
]
IDS = [
    "truncated-json",
    "wrong-type",
    "operator-injection",
    "float-overflow",
    "integer-5000-digits",
    "deep-nesting",
    "1mb-body",
    "invalid-utf8",
    "lone-surrogate",
    "nul-in-string",
    "extra-field",
    "client-chosen-id",
    "wrong-media-type",
    "10kb-if-match",
    "2000-tag-if-match",
    "binary-if-match",
    "star-in-list",
    "binary-date-delete",
    "10kb-garbage-if-match",
    "10kb-tenant",
    "nul-tenant",
    "binary-role",
    "10kb-csrf-token",
    "binary-csrf-token",
    "no-csrf-token",
    "random-cursor",
    "10kb-cursor",
    "base64-cursor",
    "binary-cursor",
    "absurd-limit",
    "negative-limit",
    "nan-limit",
    "10kb-id",
    "nul-id",
    "traversal-id",
    "emoji-key",
]


async def snapshot(service: Service) -> dict[str, Any]:
    """Every admin resource of tenants 1 and 2, with its ETag."""
    found: dict[str, Any] = {}
    for tenant in ("1", "2"):
        for path, key in (
            ("/admin/users", "id"),
            ("/admin/roles", "id"),
            ("/admin/feature-flags", "key"),
        ):
            listed = await service.client.get(f"{path}?limit=100", headers=identity(tenant=tenant))
            for item in listed.json()["data"]:
                one = await service.client.get(
                    f"{path}/{item[key]}", headers=identity(tenant=tenant)
                )
                found[f"{tenant}{path}/{item[key]}"] = (one.headers["etag"], one.json())
    return found


@pytest.mark.parametrize(("method", "path", "overrides", "body", "status"), HOSTILE, ids=IDS)
async def test_hostile_request_is_a_4xx_problem_and_changes_nothing(
    service: Service,
    method: str,
    path: str,
    overrides: Mapping[str, bytes | None],
    body: bytes | None,
    status: int,
) -> None:
    """A hostile request gets the 4xx its flaw calls for, as problem+json, and writes nothing."""
    before = await snapshot(service)
    sent: dict[str, bytes | None] = {
        name: value.encode() for name, value in (await writer(service.client)).items()
    }
    sent.update(overrides)
    headers = [(name.encode(), value) for name, value in sent.items() if value is not None]
    response = await service.client.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert isinstance(problem["detail"], str)
    assert len(response.content) < 4096  # hostile input is not echoed back at length
    assert await snapshot(service) == before

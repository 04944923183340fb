"""Seed 002's requests and responses, verbatim, against the service's demo data.

The seed elides the ETag ("a1b2c3d4e5f6") and the timestamp; for those the tests check
the shape and that the tag changes when the resource does. The seed's 400 and 412
examples leave the identity and CSRF headers out for brevity; SPEC §4.1 checks those
first, so the requests here carry them.
"""

from __future__ import annotations

import httpx
import pytest

from optimist.httpx import AsyncClient, Updated
from optimist.service.clients import AdminApi
from tests.support.admin import (
    MODIFIED_DETAIL,
    PROBLEM,
    SEED_400,
    TIMESTAMP,
    USER,
    WEAK_ETAG,
    csrf_token,
    identity,
    problem,
    writer,
)
from tests.support.service import Service

pytestmark = pytest.mark.anyio


async def test_get_user_answers_with_a_weak_etag(service: Service) -> None:
    """GET /admin/users/123 as admin of tenant 1: 200, W/"<hash>", the seed's members."""
    response = await service.client.get(
        "/admin/users/123", headers={"X-User-Role": "admin", "X-Tenant-Id": "1"}
    )
    assert response.status_code == 200
    assert WEAK_ETAG.fullmatch(response.headers["ETag"])
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert {key: body[key] for key in ("id", "email", "role")} == {
        "id": "123",
        "email": "user@example.com",
        "role": "editor",
    }
    assert TIMESTAMP.fullmatch(body["updated_at"])
    assert body["updated_at"].endswith("Z")


async def test_patch_with_if_match_answers_a_new_etag(service: Service) -> None:
    """PATCH /admin/users/123 with the ETag just read as If-Match: 200 and a new ETag."""
    client = service.client
    etag = (await client.get(USER, headers=identity())).headers["ETag"]
    response = await client.patch(
        "/admin/users/123",
        headers={
            "X-User-Role": "admin",
            "X-Tenant-Id": "1",
            "X-CSRF-Token": await csrf_token(client),
            "If-Match": etag,
            "Content-Type": "application/json",
        },
        content=b'{\n  "role": "admin"\n}',
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    assert WEAK_ETAG.fullmatch(response.headers["ETag"])
    assert response.headers["ETag"] != etag
    reread = await client.get(USER, headers=identity())
    assert reread.headers["ETag"] == response.headers["ETag"]


async def test_delete_without_if_match_is_the_seeds_400(service: Service) -> None:
    """DELETE /admin/users/123 without If-Match: 400 with exactly the seed's body."""
    response = await service.client.delete(USER, headers=await writer(service.client))
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json() == SEED_400
    assert (await service.client.get(USER, headers=identity())).status_code == 200


async def test_patch_with_outdated_etag_is_the_seeds_412(service: Service) -> None:
    """PATCH with If-Match: W/"outdated-etag": 412, the seed's members plus current_etag."""
    client = service.client
    current = (await client.get(USER, headers=identity())).headers["ETag"]
    response = await client.patch(
        USER,
        headers=await writer(client, If_Match='W/"outdated-etag"'),
        json={"role": "admin"},
    )
    assert response.status_code == 412
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["ETag"] == current
    assert response.json() == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": MODIFIED_DETAIL,
        "current_etag": current,
    }
    assert (await client.get(USER, headers=identity())).json()["role"] == "editor"


async def test_seed_client_workflow(service: Service) -> None:
    """The seed's client: fetch, modify, PATCH with If-Match (200), the old ETag again (412)."""
    client = service.client
    # 1. Fetch current state
    resp = await client.get(USER, headers={"X-User-Role": "admin", "X-Tenant-Id": "1"})
    user = resp.json()
    etag = resp.headers["ETag"]
    # 2. Modify
    user["role"] = "admin"
    # 3. Update with ETag
    headers = {
        "X-User-Role": "admin",
        "X-Tenant-Id": "1",
        "X-CSRF-Token": await csrf_token(client),
        "If-Match": etag,
    }
    resp = await client.patch(USER, json={"role": user["role"]}, headers=headers)
    assert resp.status_code == 200
    new_etag = resp.headers["ETag"]
    assert new_etag != etag
    # Another client still holding the old ETag is told the resource changed.
    stale = await client.patch(USER, json={"role": "viewer"}, headers=headers)
    assert problem(stale, 412)["detail"] == MODIFIED_DETAIL
    assert stale.headers["ETag"] == new_etag
    assert (await client.get(USER, headers=identity())).json()["role"] == "admin"


async def test_conflict_aware_client_merges_a_concurrent_change(service: Service) -> None:
    """optimist.httpx's AdminApi client: another writer's change between its read and its
    PATCH is a 412; it refetches, merges three-way, retries, and both changes survive."""
    interleaved: list[str] = []

    async def other_writer_first(request: httpx.Request) -> None:
        if request.method == "PATCH" and not interleaved:
            interleaved.append(request.headers["If-Match"])
            headers = await writer(service.client)
            response = await service.client.patch(USER, json={"name": "Renamed"}, headers=headers)
            assert response.status_code == 200

    transport = httpx.ASGITransport(app=service.app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            event_hooks={"request": [other_writer_first]},
        ) as http,
        AsyncClient(http, api=AdminApi(tenant="1", role="admin")) as optimist,
    ):
        outcome = await optimist.update(USER, {"role": "viewer"})
    assert isinstance(outcome, Updated)
    assert outcome.attempts == 2
    assert interleaved
    final = (await service.client.get(USER, headers=identity())).json()
    assert (final["name"], final["role"]) == ("Renamed", "viewer")

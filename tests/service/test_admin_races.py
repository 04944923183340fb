"""Concurrent writers through the admin API: one wins, the others are told why."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from tests.support.admin import USER, etag_of, identity, writer
from tests.support.service import Service, running, settings_for

pytestmark = pytest.mark.anyio

WRITERS = 8


async def race(
    requests: list[tuple[httpx.AsyncClient, str, str, dict[str, str], Any]],
) -> list[httpx.Response]:
    """Send every request at once; the responses in the order given."""
    responses: list[httpx.Response | None] = [None] * len(requests)
    start = anyio.Event()

    async def send(index: int) -> None:
        client, method, path, headers, body = requests[index]
        await start.wait()
        responses[index] = await client.request(method, path, headers=headers, json=body)

    async with anyio.create_task_group() as group:
        for index in range(len(requests)):
            group.start_soon(send, index)
        await anyio.sleep(0)
        start.set()
    return [response for response in responses if response is not None]


async def test_concurrent_patches_with_one_etag_have_one_winner(service: Service) -> None:
    """N PATCHes with the same If-Match: exactly one 200, the rest 412; the winner's
    change and ETag are what is stored."""
    client = service.client
    headers = await writer(client, If_Match=await etag_of(client))
    responses = await race(
        [(client, "PATCH", USER, headers, {"name": f"writer {n}"}) for n in range(WRITERS)]
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 412: WRITERS - 1}
    (winner,) = [r for r in responses if r.status_code == 200]
    stored = await client.get(USER, headers=identity())
    assert stored.json()["name"] == winner.json()["name"]
    assert stored.headers["etag"] == winner.headers["etag"]
    assert all(r.headers["etag"] == winner.headers["etag"] for r in responses)


async def test_concurrent_patches_across_workers_have_one_winner(database_url: str) -> None:
    """The same race split between two workers of one deployment: still one winner."""
    settings = settings_for(database_url)
    async with running(settings) as first, running(settings) as second:
        headers = await writer(first.client, If_Match=await etag_of(first.client))
        clients = [first.client, second.client] * (WRITERS // 2)
        responses = await race(
            [(c, "PATCH", USER, headers, {"name": f"writer {n}"}) for n, c in enumerate(clients)]
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 412: WRITERS - 1}


async def test_concurrent_deletes_delete_once(service: Service) -> None:
    """N DELETEs with the current ETag: one 204; the others find nothing (404)."""
    client = service.client
    headers = await writer(client, If_Match=await etag_of(client))
    responses = await race([(client, "DELETE", USER, headers, None)] * WRITERS)
    assert Counter(r.status_code for r in responses) == {204: 1, 404: WRITERS - 1}


async def test_concurrent_creates_if_absent_create_once(service: Service) -> None:
    """N POSTs of one flag key with If-None-Match: *: one 201, the rest 412."""
    client = service.client
    headers = await writer(client, "editor", If_None_Match="*")
    body = {"key": "contested", "rollout_percentage": 5}
    responses = await race([(client, "POST", "/admin/feature-flags", headers, body)] * WRITERS)
    assert Counter(r.status_code for r in responses) == {201: 1, 412: WRITERS - 1}
    (winner,) = [r for r in responses if r.status_code == 201]
    assert await etag_of(client, "/admin/feature-flags/contested") == winner.headers["etag"]


async def test_concurrent_creates_of_one_email_create_once(service: Service) -> None:
    """N POSTs of users with one email: one 201, the rest 409."""
    client = service.client
    headers = await writer(client)
    body = {"email": "contested@example.com", "role": "viewer"}
    responses = await race([(client, "POST", "/admin/users", headers, body)] * WRITERS)
    assert Counter(r.status_code for r in responses) == {201: 1, 409: WRITERS - 1}

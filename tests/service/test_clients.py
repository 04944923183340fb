"""The client adapters of the reference service (optimist.service.clients).

Each adapter against an in-memory fake of its API (tests/support/fake_api.py), through
both clients; then the client against the real service, merges that keep every change:
in-process (the ASGI app through httpx) for behaviour, ``optimist serve`` processes for
the race: 16 clients × 12 increments of different members of one project, through
``update()``, must all be kept.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from optimist.errors import MergeConflict
from optimist.etag import EntityTag
from optimist.httpx import AsyncClient
from optimist.service.clients import AdminApi, ProjectsApi, SessionsApi
from tests.support.fake_api import FakeServer, Rig, setting
from tests.support.servers import free_port, optimist_command, serving
from tests.support.service import Service

pytestmark = pytest.mark.anyio

CLIENTS = 16
INCREMENTS = 12


# -- each adapter against a fake of its API -------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest) -> Rig:
    """A fresh fake server, with clients of one kind: each test runs sync and async."""
    return Rig(request.param)


async def test_projects_api_unwraps_the_envelope_and_puts_changes(rig: Rig) -> None:
    """Projects: documents come in ``{"result": ...}``; a PUT carries changed fields only."""
    rig.server = FakeServer(envelope=True, partial_put=True)
    rig.server.store("p", {"name": "Sign", "status": "draft", "etag": "v1"})
    api = ProjectsApi(server_owned=frozenset({"id", "version", "etag"}))
    updated = await rig.client(api=api).update("/items/p", setting(name="Main Street Sign"))
    (put,) = rig.server.sent("PUT")
    assert json.loads(put.content) == {"name": "Main Street Sign"}
    assert updated.document == rig.server.doc("p")


async def test_projects_api_paginates_the_envelope(rig: Rig) -> None:
    """Projects lists are ``{"result": {"items": [...], "next_cursor": ...}}``."""
    rig.server = FakeServer(envelope=True)
    for key in "abc":
        rig.server.store(key, {})
    items = await rig.client(api=ProjectsApi()).items("/items")
    assert [item["id"] for item in items] == ["a", "b", "c"]


def test_projects_api_never_writes_back_the_body_etag() -> None:
    """The bare ``etag`` member, ids and timestamps of a project are the server's."""
    project = {"project_id": "proj_1", "name": "n", "status": "draft", "etag": "abc",
               "created_at": "t", "updated_at": "t"}  # fmt: skip
    assert ProjectsApi().writable(project) == {"name": "n", "status": "draft"}


async def test_admin_api_sends_identity_and_csrf_token(rig: Rig) -> None:
    """Admin: identity on every request, a CSRF token fetched once for writes."""
    rig.server = FakeServer(csrf=True)
    rig.server.store("u", {"role": "editor"})
    api = AdminApi(tenant="1", role="admin", server_owned=frozenset({"id", "version"}))
    client = rig.client(api=api)
    await client.update("/items/u", setting(role="admin"))
    await client.update("/items/u", setting(role="viewer"))
    paths = [r.url.path for r in rig.server.requests]
    assert paths.count("/admin/csrf-token") == 1
    assert all(r.headers["X-Tenant-Id"] == "1" for r in rig.server.requests)
    assert all(r.headers["X-User-Role"] == "admin" for r in rig.server.requests)
    assert all(r.headers["X-CSRF-Token"] == "token-1" for r in rig.server.sent("PATCH"))
    assert rig.server.doc("u")["role"] == "viewer"


async def test_admin_api_refreshes_an_expired_csrf_token(rig: Rig) -> None:
    """A 403 on a write fetches a new token and sends the write again, once."""
    rig.server = FakeServer(csrf=True)
    rig.server.store("u", {"role": "editor"})
    client = rig.client(
        api=AdminApi(tenant="1", role="admin", server_owned=frozenset({"id", "version"}))
    )
    await client.update("/items/u", setting(role="admin"))
    rig.server.csrf_token = "token-2"
    await client.update("/items/u", setting(role="viewer"))
    assert [r.headers["X-CSRF-Token"] for r in rig.server.sent("PATCH")] == [
        "token-1",
        "token-2",
        "token-2",
    ]
    assert rig.server.doc("u")["role"] == "viewer"


async def test_sessions_api_sends_the_vector_clock_etag_back(rig: Rig) -> None:
    """Sessions: the clock-bearing ETag goes back verbatim, the clock member never does."""
    rig.server.store("s", {"status": "scheduled", "vector_clock": {"node-a": 3}})
    tag = EntityTag("vc.bm9kZS1hOjM")
    rig.server.docs["s"] = (rig.server.docs["s"][0], tag)
    api = SessionsApi(server_owned=frozenset({"id", "version", "vector_clock"}))
    await rig.client(api=api).update("/items/s", setting(status="in_progress"))
    (patch,) = rig.server.sent("PATCH")
    assert patch.headers["If-Match"] == '"vc.bm9kZS1hOjM"'
    assert json.loads(patch.content) == {"status": "in_progress"}


# -- the client against the real service --------------------------------------------------


class Interfering(httpx.AsyncBaseTransport):
    """Forwards to the app, but lets another writer in just before our first write."""

    def __init__(self, app: Any, url: str, theirs: dict[str, Any]) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.url, self.theirs, self.done = url, theirs, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and not self.done:
            self.done = True
            async with httpx.AsyncClient(transport=self.inner, base_url="http://test") as other:
                answer = await other.put(self.url, json=self.theirs)
                assert answer.status_code == 200, answer.text
        return await self.inner.handle_async_request(request)


async def no_sleep(_seconds: float) -> None:
    """Backoff without waiting: the tests care about what is retried, not when."""


async def new_project(http: httpx.AsyncClient, **fields: Any) -> str:
    response = await http.post("/projects", json={"name": "Sign", **fields})
    assert response.status_code == 201, response.text
    project_id: str = response.json()["result"]["project_id"]
    return f"/projects/{project_id}"


async def test_concurrent_change_to_another_field_is_merged(service: Service) -> None:
    """A 412 caused by a change elsewhere is refetched, merged and retried: both stay."""
    url = await new_project(service.client, metadata={"mine": 0, "theirs": 0})
    transport = Interfering(service.app, url, {"metadata": {"mine": 0, "theirs": 1}})
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = AsyncClient(http, api=ProjectsApi(), sleep=no_sleep)
        updated = await client.update(url, increment("mine"))
    final = (await service.client.get(url)).json()["result"]
    assert final["metadata"] == {"mine": 1, "theirs": 1}
    assert updated.attempts == 2


async def test_same_field_changed_differently_raises_merge_conflict(service: Service) -> None:
    """When both sides change one field differently, the error holds both values."""
    url = await new_project(service.client)
    transport = Interfering(service.app, url, {"name": "Their sign"})
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = AsyncClient(http, api=ProjectsApi(), sleep=no_sleep)
        with pytest.raises(MergeConflict) as raised:
            await client.update(url, {"name": "My sign"})
    conflict = raised.value
    assert conflict.paths == (("name",),)
    assert (conflict.base["name"], conflict.theirs["name"], conflict.mine["name"]) == (
        "Sign",
        "Their sign",
        "My sign",
    )
    final = (await service.client.get(url)).json()["result"]
    assert final["name"] == "Their sign"


def increment(key: str) -> Any:
    """A change that adds one to ``metadata[key]``."""

    def change(document: Any) -> Any:
        metadata = dict(document["metadata"])
        metadata[key] = metadata.get(key, 0) + 1
        return {**document, "metadata": metadata}

    return change


@pytest.mark.slow
async def test_sixteen_clients_increment_their_own_fields_and_keep_every_change(
    database_url: str, tmp_path: Path
) -> None:
    """16 clients × 12 increments of different members through update(): all kept."""
    sqlite = make_url(database_url).get_backend_name() == "sqlite"
    url_option = database_url if not sqlite else f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    port = free_port()
    command = optimist_command(
        "serve", "--port", str(port), "--workers", "2", "--database-url", url_option,
        "--no-demo-data",
    )  # fmt: skip
    env = {"OPTIMIST_SECRET_KEY": "race", "OPTIMIST_NODE_ID": "race"}
    with serving(
        command, port=port, log=tmp_path / "serve.log", ready="/healthz", env=env, cwd=tmp_path
    ) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            url = await new_project(http)
            conflicts: list[MergeConflict] = []

            async def worker(index: int) -> None:
                client = AsyncClient(http, api=ProjectsApi(), max_attempts=200)
                for _ in range(INCREMENTS):
                    try:
                        await client.update(url, increment(f"client-{index}"))
                    except MergeConflict as conflict:
                        conflicts.append(conflict)

            await asyncio.gather(*(worker(index) for index in range(CLIENTS)))
            final = (await http.get(url)).json()["result"]
    assert conflicts == []
    assert final["metadata"] == {f"client-{index}": INCREMENTS for index in range(CLIENTS)}
    assert " 500 " not in server.output()

"""The client against the real reference service: merges that keep every change.

In-process (the ASGI app through httpx) for behaviour; ``optimist serve`` processes for
the race: 16 clients × 25 increments of different members of one project, through
``update()``, must all be kept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from optimist.errors import MergeConflict
from optimist.httpx import AsyncClient, ProjectsApi
from tests.support.servers import free_port, optimist_command, serving
from tests.support.service import Service

pytestmark = pytest.mark.anyio

CLIENTS = 16
INCREMENTS = 25


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
    """16 clients × 25 increments of different members through update(): all kept."""
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

"""Racing requests through the projects API, on each backend: no lost update, and no
transition applied from a status other than the one it was checked against.

The requests run concurrently in one event loop, each on a connection of its own from
the service's pool. Each test fails if the service (or the library under it) checks in
Python and then writes, instead of writing with the check in the statement.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.support.service import Service

pytestmark = pytest.mark.anyio


async def new_project(service: Service, name: str = "Race") -> dict[str, Any]:
    """A fresh draft project."""
    response = await service.client.post("/projects", json={"name": name})
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()["result"]
    return project


async def submitted(service: Service) -> dict[str, Any]:
    """A fresh project moved to ``submitted``."""
    project = await new_project(service)
    for step in ("estimating", "submitted"):
        response = await service.client.put(
            f"/projects/{project['project_id']}", json={"status": step}
        )
        assert response.status_code == 200, response.text
        project = response.json()["result"]
    return project


async def stored(service: Service, project_id: str) -> dict[str, Any]:
    """The project as stored now."""
    response = await service.client.get(f"/projects/{project_id}")
    assert response.status_code == 200, response.text
    project: dict[str, Any] = response.json()["result"]
    return project


@pytest.mark.parametrize("count", [2, 8], ids=lambda n: f"{n}-writers")
async def test_same_if_match_exactly_one_put_wins(service: Service, count: int) -> None:
    """N concurrent PUTs with one If-Match: one 200, the rest 412 naming the winner's ETag."""
    project = await new_project(service)
    path = f"/projects/{project['project_id']}"
    responses = await asyncio.gather(
        *(
            service.client.put(path, headers={"If-Match": project["etag"]}, json={"name": f"w{i}"})
            for i in range(count)
        )
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: count - 1}, statuses
    (winner,) = [r.json()["result"] for r in responses if r.status_code == 200]
    for refused in (r for r in responses if r.status_code == 412):
        assert refused.headers["etag"] == f'"{winner["etag"]}"'
        assert refused.json()["detail"] == (
            f"ETag mismatch: expected {winner['etag']}, got {project['etag']}"
        )
    final = await stored(service, project["project_id"])
    assert (final["name"], final["etag"]) == (winner["name"], winner["etag"])


async def test_same_if_match_exactly_one_delete_wins(service: Service) -> None:
    """Concurrent DELETEs with one If-Match: one 204; the others 412 or 404, never 5xx."""
    project = await new_project(service)
    path = f"/projects/{project['project_id']}"
    responses = await asyncio.gather(
        *(service.client.delete(path, headers={"If-Match": project["etag"]}) for _ in range(6))
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses[204] == 1, statuses
    assert set(statuses) <= {204, 404, 412}, statuses
    assert (await service.client.get(path)).status_code == 404


async def race_transitions(
    service: Service, project: dict[str, Any], targets: tuple[str, ...]
) -> list[httpx.Response]:
    """PUT each of ``targets`` to ``project`` at once, without If-Match."""
    path = f"/projects/{project['project_id']}"
    return list(
        await asyncio.gather(
            *(service.client.put(path, json={"status": target}) for target in targets)
        )
    )


@pytest.mark.parametrize(
    "targets",
    [("accepted", "rejected"), ("accepted", "estimating"), ("rejected", "estimating", "accepted")],
    ids=["accept-reject", "accept-reopen", "three-ways"],
)
async def test_concurrent_transitions_from_one_status_apply_once(
    service: Service, targets: tuple[str, ...]
) -> None:
    """Transitions out of ``submitted`` raced on several projects: one each, never two."""
    projects = [await submitted(service) for _ in range(4)]
    rounds = await asyncio.gather(
        *(race_transitions(service, project, targets) for project in projects)
    )
    for project, responses in zip(projects, rounds, strict=True):
        statuses = [response.status_code for response in responses]
        assert statuses.count(200) == 1, statuses
        assert set(statuses) <= {200, 412, 422}, statuses
        (winner,) = [r.json()["result"] for r in responses if r.status_code == 200]
        for target, response in zip(targets, responses, strict=True):
            if response.status_code == 422:
                detail = response.json()["detail"]
                assert detail == f"Invalid transition: {winner['status']} → {target}"
        final = await stored(service, project["project_id"])
        assert (final["status"], final["etag"]) == (winner["status"], winner["etag"])

"""Reads from a streaming replica (``read_database_url``): stale at worst, never a lost update.

The replica is a standby of the test's own (tests/support/replicas.py) whose replay the
tests pause and resume. ``replica`` is the service reading from it; ``primary`` the same
deployment (same database, same secret) reading from the primary, which issues cursors
a replica may not have replayed yet, as a better caught-up replica would. No assertion
depends on how far the replay gets: a paused replay is waited for, and a walk or a race
under a replay that runs holds whatever the replay reaches.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import pytest

from optimist.service import schema
from optimist.sqlalchemy import get
from tests.support.replicas import Replication, replication
from tests.support.servers import optimist_command
from tests.support.service import Service, running, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres]

#: Read-modify-write clients of the race, and the increments each has acknowledged.
CLIENTS: Final = 16
INCREMENTS: Final = 3
#: Projects that exist before a walk starts, and the walk's page size.
EXISTING: Final = 30
PAGE: Final = 4


@pytest.fixture(scope="module")
def standby() -> Iterator[Replication]:
    """A primary and its streaming standby, for the module."""
    with replication() as pair:
        yield pair


@dataclass(frozen=True)
class Deployment:
    """One deployment seen through a service reading the replica and one reading the
    primary, and the replication under them."""

    replica: Service
    primary: Service
    replication: Replication


@pytest.fixture
async def deployment(standby: Replication) -> AsyncIterator[Deployment]:
    """Both services, the standby caught up with the migrated primary; replay resumed
    at the end."""
    url = standby.primary.url()
    async with running(settings_for(url)) as primary:
        await standby.caught_up()
        settings = settings_for(url, read_database_url=standby.standby.url())
        async with running(settings) as replica:
            try:
                yield Deployment(replica, primary, standby)
            finally:
                await standby.resume()


async def new_project(service: Service, name: str = "replicated") -> dict[str, Any]:
    """A fresh project with empty metadata, created through ``service`` (on the primary)."""
    response = await service.client.post("/projects", json={"name": name})
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()["result"]
    return project


async def renamed(service: Service, project: dict[str, Any], name: str) -> dict[str, Any]:
    """``project`` renamed to ``name`` on the primary, under its ETag."""
    response = await service.client.put(
        f"/projects/{project['project_id']}",
        json={"name": name},
        headers={"If-Match": f'"{project["etag"]}"'},
    )
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()["result"]
    return changed


async def stored(deployment: Deployment, project_id: str) -> dict[str, Any]:
    """The project as the primary holds it."""
    record = await get(deployment.replica.runtime.engine, schema.projects, project_id)
    return dict(record.values)


async def test_a_get_reads_the_replica(deployment: Deployment) -> None:
    """With the replay paused, a GET answers the version the replica holds."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    await renamed(deployment.replica, project, "changed on the primary")
    response = await deployment.replica.client.get(f"/projects/{project['project_id']}")
    assert response.status_code == 200
    assert response.json()["result"]["name"] == "replicated"
    assert response.headers["etag"] == f'"{project["etag"]}"'


async def test_a_304_is_the_replicas(deployment: Deployment) -> None:
    """If-None-Match of the version the replica holds is a 304, however new the primary's."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    await renamed(deployment.replica, project, "changed on the primary")
    response = await deployment.replica.client.get(
        f"/projects/{project['project_id']}", headers={"If-None-Match": f'"{project["etag"]}"'}
    )
    assert response.status_code == 304


async def test_a_client_holding_a_newer_version_never_gets_an_older_one(
    deployment: Deployment,
) -> None:
    """If-None-Match of a version the replica lacks (the client's own write) is decided
    by the primary: a 304, not the replica's older version."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    changed = await renamed(deployment.replica, project, "the client's own write")
    response = await deployment.replica.client.get(
        f"/projects/{project['project_id']}", headers={"If-None-Match": f'"{changed["etag"]}"'}
    )
    assert response.status_code == 304
    assert response.headers["etag"] == f'"{changed["etag"]}"'


async def test_a_write_with_the_replicas_etag_is_412_with_the_primarys(
    deployment: Deployment,
) -> None:
    """A PUT under the stale ETag the replica served is a 412 naming the primary's ETag."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    current = await renamed(deployment.replica, project, "first")
    path = f"/projects/{project['project_id']}"
    stale = await deployment.replica.client.get(path)
    response = await deployment.replica.client.put(
        path, json={"name": "second"}, headers={"If-Match": stale.headers["etag"]}
    )
    assert response.status_code == 412
    assert response.headers["etag"] == f'"{current["etag"]}"'
    assert (await stored(deployment, project["project_id"]))["name"] == "first"


async def test_a_write_with_the_primarys_etag_succeeds(deployment: Deployment) -> None:
    """The ETag a 412 names (the primary's) makes the retried PUT succeed, replay paused."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    current = await renamed(deployment.replica, project, "first")
    path = f"/projects/{project['project_id']}"
    refused = await deployment.replica.client.put(
        path, json={"name": "lost?"}, headers={"If-Match": f'"{project["etag"]}"'}
    )
    assert refused.status_code == 412
    response = await deployment.replica.client.put(
        path, json={"name": "second"}, headers={"If-Match": refused.headers["etag"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["etag"] != current["etag"]
    assert (await stored(deployment, project["project_id"]))["name"] == "second"


async def test_a_get_under_an_etag_the_replica_lacks_reads_the_primary(
    deployment: Deployment,
) -> None:
    """A GET whose If-Match names a version only the primary has answers that version."""
    project = await new_project(deployment.replica)
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    current = await renamed(deployment.replica, project, "newer")
    response = await deployment.replica.client.get(
        f"/projects/{project['project_id']}", headers={"If-Match": f'"{current["etag"]}"'}
    )
    assert response.status_code == 200
    assert response.json()["result"]["name"] == "newer"


async def test_a_resource_the_replica_lacks_is_read_from_the_primary(
    deployment: Deployment,
) -> None:
    """A project created while the replay is paused is a 200, not a 404."""
    await deployment.replication.pause()
    project = await new_project(deployment.replica, "only on the primary")
    response = await deployment.replica.client.get(f"/projects/{project['project_id']}")
    assert response.status_code == 200
    assert response.json()["result"]["name"] == "only on the primary"


async def test_a_missing_resource_is_a_404(deployment: Deployment) -> None:
    """A project neither server has is a 404."""
    response = await deployment.replica.client.get("/projects/proj_0000000000000000")
    assert response.status_code == 404


async def increment(service: Service, path: str, member: str) -> int:
    """Increment ``metadata[member]`` once, read-modify-write under If-Match, until a PUT is
    acknowledged; the PUTs refused with 412 on the way."""
    refused = 0
    known: str | None = None
    while True:
        # After a 412, the ETag it names is the one to read: the primary answers it
        # when the replica has not replayed it yet.
        headers = {} if known is None else {"If-Match": known}
        read = await service.client.get(path, headers=headers)
        if read.status_code == 412:
            known = None
            continue
        assert read.status_code == 200, read.text
        metadata = read.json()["result"]["metadata"]
        wanted = {**metadata, member: metadata.get(member, 0) + 1}
        written = await service.client.put(
            path, json={"metadata": wanted}, headers={"If-Match": read.headers["etag"]}
        )
        if written.status_code == 200:
            return refused
        assert written.status_code == 412, written.text
        refused += 1
        known = written.headers["etag"]


async def counter(service: Service, path: str, member: str) -> int:
    """``INCREMENTS`` acknowledged increments; the 412s met on the way."""
    refused = 0
    for _ in range(INCREMENTS):
        refused += await increment(service, path, member)
    return refused


@pytest.mark.parametrize("replay", ["paused", "running"])
async def test_racing_increments_through_the_replica_lose_none(
    deployment: Deployment, replay: str
) -> None:
    """16 clients reading through the replica and writing under If-Match: every
    acknowledged increment is counted once on the primary."""
    project = await new_project(deployment.replica, "counters")
    path = f"/projects/{project['project_id']}"
    await deployment.replication.caught_up()
    if replay == "paused":
        await deployment.replication.pause()
    members = [f"c{index}" for index in range(CLIENTS)]
    await asyncio.gather(*(counter(deployment.replica, path, m) for m in members))
    metadata = (await stored(deployment, project["project_id"]))["metadata"]
    assert metadata == dict.fromkeys(members, INCREMENTS)


async def items(service: Service, path: str, cursor: str | None) -> tuple[list[str], str | None]:
    """The ids of the projects of one page, and its next cursor."""
    params = {"limit": str(PAGE), **({} if cursor is None else {"cursor": cursor})}
    response = await service.client.get(path, params=params)
    assert response.status_code == 200, response.text
    page = response.json()["result"]
    return [item["project_id"] for item in page["items"]], page["next_cursor"]


@dataclass
class Writer:
    """Creates, renames and deletes projects on the primary until stopped."""

    service: Service
    existing: list[dict[str, Any]]
    created_after: set[str]
    first_page_served: asyncio.Event

    async def run(self, stop: asyncio.Event) -> None:
        ours: list[dict[str, Any]] = []
        turn = 0
        while not stop.is_set():
            turn += 1
            served = self.first_page_served.is_set()
            project = await new_project(self.service, f"during {turn}")
            if served:
                self.created_after.add(project["project_id"])
            ours.append(project)
            target = self.existing[turn % len(self.existing)]
            self.existing[turn % len(self.existing)] = await renamed(
                self.service, target, f"renamed {turn}"
            )
            if turn % 3 == 0:
                gone = ours.pop(0)
                response = await self.service.client.delete(
                    f"/projects/{gone['project_id']}",
                    headers={"If-Match": f'"{gone["etag"]}"'},
                )
                assert response.status_code in {204, 412}, response.text
            await asyncio.sleep(0)


@pytest.mark.parametrize("first", ["replica", "primary"])
async def test_a_walk_under_writes_and_lag_repeats_and_misses_nothing(
    deployment: Deployment, first: str
) -> None:
    """Pages read through the replica while projects are created, renamed and deleted and
    the replay pauses and resumes between pages: no project twice, every one that existed
    before the walk once, none created after its first page."""
    existing = [await new_project(deployment.replica, f"existing {i}") for i in range(EXISTING)]
    await deployment.replication.caught_up()
    if first == "primary":
        # The first page's snapshot is then ahead of the replica.
        await deployment.replication.pause()
        await new_project(deployment.replica, "ahead of the replica")
    served = asyncio.Event()
    writer = Writer(deployment.replica, list(existing), set(), served)
    stop = asyncio.Event()
    writing = asyncio.create_task(writer.run(stop))
    try:
        starter = deployment.primary if first == "primary" else deployment.replica
        seen, cursor = await items(starter, "/projects", None)
        served.set()
        turn = 0
        while cursor is not None:
            turn += 1
            if turn % 2:
                await deployment.replication.pause()
            else:
                await deployment.replication.resume()
            page, cursor = await items(deployment.replica, "/projects", cursor)
            seen += page
    finally:
        stop.set()
        await writing
    assert len(seen) == len(set(seen))
    assert {project["project_id"] for project in existing} <= set(seen)
    assert writer.created_after.isdisjoint(seen)


async def test_a_page_ahead_of_the_replica_is_read_from_the_primary(
    deployment: Deployment,
) -> None:
    """A cursor whose snapshot the paused replica lacks gets its page from the primary:
    it lists the projects only the primary has."""
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    fresh = {(await new_project(deployment.replica, f"new {i}"))["project_id"] for i in range(6)}
    seen, cursor = await items(deployment.primary, "/projects", None)
    while cursor is not None:
        page, cursor = await items(deployment.replica, "/projects", cursor)
        seen += page
    assert fresh <= set(seen)
    assert len(seen) == len(set(seen))


async def test_a_page_the_replica_has_is_read_from_the_replica(deployment: Deployment) -> None:
    """A cursor whose snapshot the replica has replayed gets its page from the replica:
    a project renamed on the primary since shows its replica's name."""
    projects = [await new_project(deployment.replica, "as replicated") for _ in range(PAGE + 1)]
    await deployment.replication.caught_up()
    _, cursor = await items(deployment.replica, "/projects", None)
    await deployment.replication.pause()
    for project in projects:
        await renamed(deployment.replica, project, "renamed on the primary")
    names: dict[str, str] = {}
    while cursor is not None:
        response = await deployment.replica.client.get(
            "/projects", params={"limit": str(PAGE), "cursor": cursor}
        )
        page = response.json()["result"]
        names |= {item["project_id"]: item["name"] for item in page["items"]}
        cursor = page["next_cursor"]
    assert names[projects[-1]["project_id"]] == "as replicated"


@pytest.fixture
async def replica_down(deployment: Deployment) -> AsyncIterator[Deployment]:
    """The deployment with its standby stopped; started again, and caught up, after."""
    standby = deployment.replication.standby
    await anyio.to_thread.run_sync(standby.stop)
    try:
        yield deployment
    finally:
        await anyio.to_thread.run_sync(standby.start)
        await deployment.replication.caught_up()


async def test_reads_go_on_while_the_replica_is_down(replica_down: Deployment) -> None:
    """With the replica stopped, an item and a list are read from the primary: 200s."""
    project = await new_project(replica_down.replica, "read while the replica is down")
    item = await replica_down.replica.client.get(f"/projects/{project['project_id']}")
    listed = await replica_down.replica.client.get("/projects", params={"limit": "2"})
    assert (item.status_code, listed.status_code) == (200, 200), listed.text
    assert item.json()["result"]["name"] == "read while the replica is down"


async def test_the_sessions_api_reads_the_replica(deployment: Deployment) -> None:
    """A test session changed on the primary keeps its replica's notes in GET and list."""
    client: httpx.AsyncClient = deployment.replica.client
    created = await client.post(
        "/v1/tests/sessions", json={"building_id": str(uuid.uuid4()), "notes": "as replicated"}
    )
    assert created.status_code == 201, created.text
    path = created.headers["location"]
    await deployment.replication.caught_up()
    await deployment.replication.pause()
    changed = await client.patch(
        path,
        json={"notes": "changed on the primary"},
        headers={"If-Match": created.headers["etag"], "Content-Type": "application/json"},
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get(path)).json()["notes"] == "as replicated"
    listed: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({} if cursor is None else {"cursor": cursor})}
        page = (await client.get("/v1/tests/sessions", params=params)).json()
        listed |= {item["id"]: item["notes"] for item in page["data"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed[created.json()["id"]] == "as replicated"


def test_a_url_with_no_primary_is_said_at_start(standby: Replication) -> None:
    """A multi-host URL asking for a primary whose hosts are all standbys: exit 2, saying
    no server there accepts writes."""
    port = standby.standby.port
    url = f"postgresql://root@/optimist?host=127.0.0.1:{port}&target_session_attrs=read-write"
    done = subprocess.run(
        optimist_command("migrate", "--database-url", url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"no PostgreSQL server at 127.0.0.1:{port} accepts writes" in done.stderr

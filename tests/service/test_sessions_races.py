"""Concurrency of the test-sessions API on each backend: seed 000's integration test,
traversals while other clients write, and racing writers with one clock or several nodes."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from optimist.httpx import AsyncClient, Updated
from optimist.merge import JSON
from optimist.service.clients import SessionsApi
from tests.support.service import Service, running, settings_for

pytestmark = pytest.mark.anyio

SESSIONS = "/v1/tests/sessions"
NODE = "test-node"
WRITERS = 8  # concurrent writers of one session: enough to race, bounded for 2 cores


async def new_session(client: httpx.AsyncClient) -> dict[str, Any]:
    """Create a session with a random building and return it."""
    response = await client.post(SESSIONS, json={"building_id": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def traverse(
    client: httpx.AsyncClient,
    limit: int,
    between: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """The ids of every page of one traversal, calling ``between`` after each page."""
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(SESSIONS, params=params)
        assert response.status_code == 200, response.text
        data = response.json()
        ids.extend(item["id"] for item in data["data"])
        if not data.get("next_cursor"):
            return ids
        cursor = data["next_cursor"]
        if between is not None:
            await between()


# -- seed 000 --------------------------------------------------------------------------


def refused(responses: list[httpx.Response]) -> list[str]:
    """What the answers other than 200 said: the reason a 503 names, for a failure."""
    return [f"{r.status_code} {r.text}" for r in responses if r.status_code != 200]


async def test_vector_clock_pagination_consistency(service: Service) -> None:
    """Seed 000 step 2.5: 50 concurrent creates, then pages of 10: every session exactly once."""
    client = service.client
    # Create multiple sessions concurrently
    tasks = []
    for _ in range(50):
        tasks.append(client.post(SESSIONS, json={"building_id": str(uuid.uuid4())}))
    responses = await asyncio.gather(*tasks)
    assert [response.status_code for response in responses] == [201] * 50
    created = {response.json()["id"] for response in responses}

    # Paginate through results
    all_items = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(SESSIONS, params=params)
        data = response.json()
        all_items.extend(data["data"])
        if not data.get("next_cursor"):
            break
        cursor = data["next_cursor"]

    # Verify no duplicates despite concurrent writes
    ids = [item["id"] for item in all_items]
    assert len(ids) == len(set(ids))
    # And more than the seed asks: all 50 appear, and nothing else.
    assert set(ids) == created
    assert len(ids) == 50


async def test_a_traversal_is_a_snapshot_while_others_write(service: Service) -> None:
    """Creates, updates and deletes run during a traversal: each session of the first
    page's snapshot that was never deleted appears exactly once, no later one appears."""
    client = service.client
    initial = [(await new_session(client))["id"] for _ in range(40)]
    victims = random.Random(7).sample(initial, 12)
    deleted: set[str] = set()
    created: set[str] = set()
    updates = 0
    done = asyncio.Event()

    async def creator() -> None:
        while not done.is_set():
            created.add((await new_session(client))["id"])

    async def updater(seed: int) -> None:
        nonlocal updates
        chooser = random.Random(seed)
        while not done.is_set():
            target = chooser.choice(initial)
            status = chooser.choice(["in_progress", "completed", "cancelled"])
            response = await client.patch(f"{SESSIONS}/{target}", json={"status": status})
            assert response.status_code in (200, 404), response.text
            updates += response.status_code == 200

    async def deleter() -> None:
        for victim in victims:
            if done.is_set():
                return
            response = await client.delete(f"{SESSIONS}/{victim}")
            assert response.status_code == 204, response.text
            deleted.add(victim)

    writes_seen: list[int] = []

    async def let_others_write() -> None:
        before = len(created) + len(deleted) + updates
        # Wait until some write has landed since the last page (bounded).
        for _ in range(200):
            await asyncio.sleep(0.005)
            if len(created) + len(deleted) + updates > before:
                break
        writes_seen.append(len(created) + len(deleted) + updates - before)

    first = (await client.get(SESSIONS, params={"limit": 10})).json()
    writers = [creator(), updater(1), updater(2), deleter()]
    background = asyncio.gather(*writers)
    try:
        rest = await traverse_from(client, first, 10, let_others_write)
    finally:
        done.set()
        await background
    seen = [item["id"] for item in first["data"]] + rest
    assert [id_ for id_, count in Counter(seen).items() if count > 1] == []
    assert not set(seen) & created
    assert set(initial) - deleted <= set(seen) <= set(initial)
    # The traversal really ran among writes: some landed between its pages.
    assert sum(writes_seen) > 0
    assert created
    assert deleted


async def traverse_from(
    client: httpx.AsyncClient,
    first: dict[str, Any],
    limit: int,
    between: Callable[[], Awaitable[None]],
) -> list[str]:
    """The ids of the pages after ``first``, calling ``between`` before each."""
    ids: list[str] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        await between()
        response = await client.get(SESSIONS, params={"limit": limit, "cursor": cursor})
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["data"])
        cursor = page["next_cursor"]
    return ids


async def test_pages_between_writes_in_lockstep(service: Service) -> None:
    """Between every two pages a create, an update and a delete: the snapshot holds."""
    client = service.client
    initial = [(await new_session(client))["id"] for _ in range(25)]
    created: list[str] = []
    deleted: list[str] = []
    order = iter(initial[::-1])  # deletes from the end reach pages not yet served

    async def between() -> None:
        created.append((await new_session(client))["id"])
        response = await client.patch(f"{SESSIONS}/{initial[0]}", json={"notes": "x"})
        assert response.status_code == 200
        victim = next(order)
        assert (await client.delete(f"{SESSIONS}/{victim}")).status_code == 204
        deleted.append(victim)

    seen = await traverse(client, 5, between)
    assert len(seen) == len(set(seen))
    assert not set(seen) & set(created)
    assert seen == [id_ for id_ in initial if id_ not in deleted]
    assert len(deleted) == 4  # five pages, four gaps


# -- racing writers ----------------------------------------------------------------------


async def test_racing_writers_with_one_clock_exactly_one_wins(service: Service) -> None:
    """N concurrent PATCHes with the same clock: one 200, the rest 412 "stale"."""
    client = service.client
    session = await new_session(client)
    url = f"{SESSIONS}/{session['id']}"

    async def write(number: int) -> httpx.Response:
        return await client.patch(
            url, headers={"If-Match": f'"{NODE}=1"'}, json={"notes": f"writer {number}"}
        )

    responses = await asyncio.gather(*(write(number) for number in range(WRITERS)))
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 412: WRITERS - 1}
    (winner,) = [r for r in responses if r.status_code == 200]
    for loser in (r for r in responses if r.status_code == 412):
        problem = loser.json()
        assert problem["conflict"] == "stale"
        assert problem["current_vector_clock"] == {NODE: 2}
        assert loser.headers["etag"] == f'"{NODE}=2"'
    stored = (await client.get(url)).json()
    assert stored["vector_clock"] == {NODE: 2}
    assert stored["notes"] == winner.json()["notes"]


async def test_writers_without_a_clock_lose_no_increment(service: Service) -> None:
    """N concurrent PATCHes without If-Match: all apply, the counter counts every one."""
    client = service.client
    session = await new_session(client)
    url = f"{SESSIONS}/{session['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, json={"notes": str(n)}) for n in range(WRITERS))
    )
    assert [response.status_code for response in responses] == [200] * WRITERS, refused(responses)
    tags = {response.headers["etag"] for response in responses}
    assert tags == {f'"{NODE}={n}"' for n in range(2, WRITERS + 2)}
    assert (await client.get(url)).json()["vector_clock"] == {NODE: WRITERS + 1}


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Unmodified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"If-None-Match": '"other=1"'},
        {"If-Match": "*", "If-None-Match": '"other=1"'},
    ],
    ids=["if-unmodified-since", "if-none-match", "star-and-if-none-match"],
)
async def test_writers_with_other_preconditions_lose_no_increment(
    service: Service, headers: dict[str, str]
) -> None:
    """Writes whose preconditions hold, evaluated on a held row: all apply, none lost."""
    client = service.client
    session = await new_session(client)
    url = f"{SESSIONS}/{session['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, headers=headers, json={"notes": str(n)}) for n in range(WRITERS))
    )
    assert [response.status_code for response in responses] == [200] * WRITERS, refused(responses)
    assert len({response.headers["etag"] for response in responses}) == WRITERS
    assert (await client.get(url)).json()["vector_clock"] == {NODE: WRITERS + 1}


async def test_writers_with_one_clock_and_if_none_match_exactly_one_wins(
    service: Service,
) -> None:
    """The held path keeps If-Match's compare-and-set: one winner, the rest "stale"."""
    client = service.client
    session = await new_session(client)
    url = f"{SESSIONS}/{session['id']}"
    headers = {"If-Match": f'"{NODE}=1"', "If-None-Match": '"other=1"'}
    responses = await asyncio.gather(
        *(client.patch(url, headers=headers, json={"notes": str(n)}) for n in range(WRITERS))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 412: WRITERS - 1}
    assert {r.json()["conflict"] for r in responses if r.status_code == 412} == {"stale"}


async def test_writers_that_reread_and_retry_apply_every_change(service: Service) -> None:
    """Clients that refetch on 412 and retry: every one of N appends lands once."""
    client = service.client
    session = await new_session(client)
    url = f"{SESSIONS}/{session['id']}"

    async def append(word: str) -> None:
        for _ in range(200):
            current = await client.get(url)
            notes = current.json()["notes"] or ""
            response = await client.patch(
                url, headers={"If-Match": current.headers["etag"]}, json={"notes": notes + word}
            )
            if response.status_code == 200:
                return
            assert response.json()["conflict"] == "stale"
        pytest.fail("no attempt succeeded")

    words = [f"{n};" for n in range(WRITERS)]
    await asyncio.gather(*(append(word) for word in words))
    stored = (await client.get(url)).json()
    assert sorted(stored["notes"].split(";")[:-1]) == sorted(w[:-1] for w in words)
    assert stored["vector_clock"] == {NODE: WRITERS + 1}


# -- several nodes -----------------------------------------------------------------------


async def test_nodes_advance_their_own_counters(database_url: str) -> None:
    """Two nodes writing one session: the clock counts each node's writes."""
    async with (
        running(settings_for(database_url, node_id="node-a")) as a,
        running(settings_for(database_url, node_id="node-b")) as b,
    ):
        session = await new_session(a.client)
        url = f"{SESSIONS}/{session['id']}"
        via_b = await b.client.patch(url, headers={"If-Match": '"node-a=1"'}, json={"notes": "b"})
        assert via_b.json()["vector_clock"] == {"node-a": 1, "node-b": 1}
        assert via_b.headers["etag"] == '"node-a=1;node-b=1"'
        via_a = await a.client.patch(url, headers={"If-Match": via_b.headers["etag"]}, json={})
        assert via_a.json()["vector_clock"] == {"node-a": 2, "node-b": 1}


@pytest.mark.parametrize(
    ("sent", "conflict"),
    [
        ({"node-a": 1}, "stale"),
        ({"node-a": 2}, "stale"),
        ({"node-b": 1}, "stale"),
        ({}, "stale"),
        ({"node-a": 3, "node-b": 1}, "concurrent"),
        ({"node-a": 1, "node-b": 2}, "concurrent"),
        ({"node-a": 2, "node-c": 1}, "concurrent"),
        ({"node-a": 2, "node-b": 1, "node-c": 1}, "concurrent"),
    ],
    ids=[
        "missed-both",
        "missed-b",
        "missed-a",
        "empty",
        "ahead-on-a",
        "ahead-on-b",
        "unknown-node",
        "current-plus-one",
    ],
)
async def test_conflicts_between_nodes_say_stale_or_concurrent(
    database_url: str, sent: dict[str, int], conflict: str
) -> None:
    """Against a stored {node-a: 2, node-b: 1}: dominated → "stale", otherwise "concurrent"."""
    async with (
        running(settings_for(database_url, node_id="node-a")) as a,
        running(settings_for(database_url, node_id="node-b")) as b,
    ):
        session = await new_session(a.client)
        url = f"{SESSIONS}/{session['id']}"
        await b.client.patch(url, json={"notes": "b"})
        await a.client.patch(url, json={"notes": "a"})
        stored = (await a.client.get(url)).json()
        assert stored["vector_clock"] == {"node-a": 2, "node-b": 1}
        for node in (a, b):
            response = await node.client.patch(
                url, headers={"If-Match": json.dumps(sent)}, json={"notes": "lost"}
            )
            assert response.status_code == 412
            problem = response.json()
            assert problem["conflict"] == conflict
            assert problem["current_vector_clock"] == {"node-a": 2, "node-b": 1}
            assert problem["current_etag"] == '"node-a=2;node-b=1"'
        assert (await b.client.get(url)).json() == stored


async def test_stale_and_concurrent_writers_race_a_current_one(database_url: str) -> None:
    """Three writers at once through two nodes: the current clock wins, the stale one
    is told "stale", the concurrent one "concurrent"."""
    async with (
        running(settings_for(database_url, node_id="node-a")) as a,
        running(settings_for(database_url, node_id="node-b")) as b,
    ):
        session = await new_session(a.client)
        url = f"{SESSIONS}/{session['id']}"
        current = (await b.client.patch(url, json={"notes": "b"})).headers["etag"]
        assert current == '"node-a=1;node-b=1"'
        stale, concurrent = '{"node-a": 1}', '{"node-a": 1, "node-c": 4}'
        responses = await asyncio.gather(
            a.client.patch(url, headers={"If-Match": stale}, json={"notes": "stale"}),
            b.client.patch(url, headers={"If-Match": concurrent}, json={"notes": "concurrent"}),
            a.client.patch(url, headers={"If-Match": current}, json={"notes": "current"}),
        )
        assert [response.status_code for response in responses] == [412, 412, 200]
        assert responses[0].json()["conflict"] == "stale"
        assert responses[1].json()["conflict"] == "concurrent"
        stored = (await b.client.get(url)).json()
        assert stored["notes"] == "current"
        assert stored["vector_clock"] == {"node-a": 2, "node-b": 1}


async def test_racing_writers_on_two_nodes_exactly_one_wins(database_url: str) -> None:
    """The same clock sent through two nodes at once: one write applies, on one node."""
    async with (
        running(settings_for(database_url, node_id="node-a")) as a,
        running(settings_for(database_url, node_id="node-b")) as b,
    ):
        session = await new_session(a.client)
        url = f"{SESSIONS}/{session['id']}"
        responses = await asyncio.gather(
            *(
                (a if number % 2 else b).client.patch(
                    url, headers={"If-Match": '"node-a=1"'}, json={"notes": str(number)}
                )
                for number in range(WRITERS)
            )
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 412: WRITERS - 1}
        assert {r.json()["conflict"] for r in responses if r.status_code == 412} == {"stale"}
        clock = (await a.client.get(url)).json()["vector_clock"]
        assert clock in ({"node-a": 2}, {"node-a": 1, "node-b": 1})


# -- the conflict-aware client -----------------------------------------------------------


async def test_conflict_aware_clients_merge_their_changes(service: Service) -> None:
    """optimist.httpx with SessionsApi: writers of different fields, all at once, each
    refetch, merge and retry on "stale"; every change survives."""
    session = await new_session(service.client)
    url = f"{SESSIONS}/{session['id']}"
    building = str(uuid.uuid4())
    changes: list[dict[str, JSON]] = [
        {"status": "in_progress"},
        {"notes": "checked"},
        {"building_id": building},
    ]
    transport = httpx.ASGITransport(app=service.app)

    async def write(change: dict[str, JSON]) -> Updated:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
            AsyncClient(http, api=SessionsApi(), sleep=lambda _: asyncio.sleep(0)) as client,
        ):
            return await client.update(url, change)

    outcomes = await asyncio.gather(*(write(change) for change in changes))
    # They really collided: some write was refused "stale" and retried.
    assert max(outcome.attempts for outcome in outcomes) > 1
    stored = (await service.client.get(url)).json()
    assert (stored["status"], stored["notes"], stored["building_id"]) == (
        "in_progress",
        "checked",
        building,
    )
    assert stored["vector_clock"] == {NODE: 1 + len(changes)}
    assert {str(outcome.etag) for outcome in outcomes} <= {
        f'"{NODE}={n}"' for n in range(2, 2 + len(changes))
    }

"""Writes whose answer never reached the client, against ``optimist serve --workers 2``.

A client whose answer was lost cannot tell whether its write landed. Resent under the
same Idempotency-Key it must get the first answer (status, ETag, body) marked as a
replay, and the change must be applied once: never a 412 that sends the client back to
refetch and apply it again, never a second application.

The answers are lost for real: a TCP proxy (:mod:`tests.support.proxy`) between the
``optimist.httpx`` client and the server keeps the answer to the client's write, then
closes the client's connection: with nothing else happening (a dropped response), or
after every process of the deployment was killed with SIGKILL and the deployment
started again (a crash between the commit and the answer reaching the client). The
proxy holds the answer only once the server has sent it, which it does after the write
committed; the change is an increment of one member of a project's metadata.

Then duplicates: sixteen clients each send every write twice at once, on two
connections (so, often, to both workers), under the same key and If-Match; every change
must be applied exactly once and no answer be a 5xx. Both backends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from optimist.httpx import Client, OnConflict, Updated
from optimist.service.clients import ProjectsApi
from tests.support.deployments import PATIENCE, Deployment, deployment, group_members
from tests.support.load import REQUEST_TIMEOUT, final_counts, new_project
from tests.support.proxy import Held, Proxy, proxy
from tests.support.servers import wait_until

pytestmark = pytest.mark.slow

#: The member of the project's metadata the increments count on.
MEMBER: Final = "count"
#: An increment is computed from what it read: after a 412 the client computes it again on
#: the current document (a three-way merge would take the landed copy for the same change
#: and hide a second application).
REAPPLY: Final = OnConflict.REAPPLY
#: Clients sending duplicates, and how many changes each makes.
CLIENTS: Final = 16
CHANGES: Final = 5


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """``optimist serve --workers 2`` on one backend, for this module's tests."""
    url = request.getfixturevalue("fault_database") if request.param == "postgres" else None
    with deployment(tmp_path_factory.mktemp(f"lost-{request.param}"), database_url=url) as running:
        yield running


@pytest.fixture
def front(served: Deployment) -> Iterator[Proxy]:
    """A proxy in front of the deployment, for one test."""
    with proxy(served.port) as running:
        yield running


def increment(document: Any) -> Any:
    """The change: one more in ``metadata[MEMBER]``."""
    metadata = document["metadata"]
    return {**document, "metadata": {**metadata, MEMBER: metadata.get(MEMBER, 0) + 1}}


@dataclass
class Writer:
    """One ``optimist.httpx`` update through the proxy, in a thread of its own."""

    url: str
    path: str
    outcome: Updated | None = None
    failure: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            http = httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT)
            with Client(http, api=ProjectsApi()) as client:
                self.outcome = client.update(self.path, increment, on_conflict=REAPPLY)
        except BaseException as error:
            self.failure = error

    def result(self) -> Updated:
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the update never ended"
        assert self.failure is None, repr(self.failure)
        assert self.outcome is not None
        return self.outcome


def held_write(served: Deployment, front: Proxy) -> tuple[str, Held, Writer]:
    """A new project and an update of it whose write's answer the proxy holds."""
    path = new_project(served.url, f"lost-{uuid.uuid4().hex[:8]}")
    held = front.hold("PUT")
    writer = Writer(front.url, path)
    held.wait()
    return path, held, writer


def kill_everything(served: Deployment) -> None:
    """SIGKILL to every process of the running start, master and workers at once."""
    group = served.groups[-1]
    os.killpg(group, signal.SIGKILL)
    assert served.process is not None
    served.process.wait()
    served.process = None
    wait_until(lambda: not group_members(group), timeout=PATIENCE, what="the group gone")


def test_a_dropped_answer_is_replayed_on_resend(served: Deployment, front: Proxy) -> None:
    """The resend gets the first answer's status, ETag and body, marked as a replay."""
    _, held, writer = held_write(served, front)
    held.cut()
    outcome = writer.result()
    assert (held.status, outcome.replayed) == (200, True)
    assert outcome.etag is not None
    assert str(outcome.etag) == held.headers["etag"]
    assert outcome.document == ProjectsApi().document(json.loads(held.body))


def test_a_dropped_answer_leaves_the_change_applied_once(served: Deployment, front: Proxy) -> None:
    """The increment whose answer was lost and which was resent counts once."""
    path, held, writer = held_write(served, front)
    held.cut()
    writer.result()
    assert final_counts(served.url, path) == {MEMBER: 1}


def test_an_answer_lost_in_a_crash_is_replayed_after_restart(
    served: Deployment, front: Proxy
) -> None:
    """kill -9 of every process after the commit, a restart: the resend is a replay of
    the first answer, and the increment counts once."""
    path, held, writer = held_write(served, front)
    kill_everything(served)
    served.start()
    held.cut()
    outcome = writer.result()
    assert (outcome.replayed, str(outcome.etag)) == (True, held.headers["etag"])
    assert final_counts(served.url, path) == {MEMBER: 1}


def test_a_key_reused_with_another_body_is_422(served: Deployment) -> None:
    """The same key on a write of another body is refused, and nothing is written."""
    path = new_project(served.url, "reused")
    with httpx.Client(base_url=served.url, timeout=REQUEST_TIMEOUT) as http:
        etag = http.get(path).headers["ETag"]
        key = {"Idempotency-Key": f'"{uuid.uuid4()}"', "If-Match": etag}
        first = http.put(path, json={"metadata": {MEMBER: 1}}, headers=key)
        reused = http.put(path, json={"metadata": {MEMBER: 2}}, headers=key)
    assert (first.status_code, reused.status_code) == (200, 422), reused.text
    assert reused.headers["Content-Type"] == "application/problem+json"
    assert final_counts(served.url, path) == {MEMBER: 1}


# -- duplicates --------------------------------------------------------------------------------


@dataclass
class Duplicates:
    """What the duplicating clients saw, and the project's final counts."""

    #: Each client's changes that were answered 2xx (applied), by member.
    applied: Counter[str]
    final: dict[str, int]
    statuses: Counter[int]
    #: Pairs whose two 2xx answers named different ETags (a change applied twice would).
    split: list[tuple[str, str]]
    #: Pairs of which both copies were 2xx, one of them a replay.
    replays: int


async def send_twice(
    copies: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str, member: str, into: Duplicates
) -> None:
    """Make one change: read, then the write sent twice at once under one key, until a
    pair is answered 2xx (412: another client wrote first; read again, new key)."""
    first, second = copies
    while True:
        current = await first.get(path)
        into.statuses[current.status_code] += 1
        if current.status_code != 200:
            continue
        metadata = current.json()["result"]["metadata"]
        body = {"metadata": {**metadata, member: metadata.get(member, 0) + 1}}
        headers = {"If-Match": current.headers["ETag"], "Idempotency-Key": f'"{uuid.uuid4()}"'}
        while True:
            answers = await asyncio.gather(
                first.put(path, json=body, headers=headers),
                second.put(path, json=body, headers=headers),
            )
            into.statuses.update(answer.status_code for answer in answers)
            # 409: the other copy is still in flight; the same request again, later.
            if not any(answer.status_code in {409, 503} for answer in answers):
                break
        ok = [answer for answer in answers if answer.is_success]
        if ok:
            into.applied[member] += 1
            etags = {answer.headers["ETag"] for answer in ok}
            if len(etags) > 1:
                into.split.append((etags.pop(), etags.pop()))
            into.replays += len(ok) == 2 and any("idempotent-replayed" in a.headers for a in ok)
            return


async def duplicate(url: str, path: str) -> Duplicates:
    """:data:`CLIENTS` clients, :data:`CHANGES` changes each, every write sent twice."""
    seen = Duplicates(Counter(), {}, Counter(), [], 0)

    async def client(number: int) -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as first,
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as second,
        ):
            for _ in range(CHANGES):
                await send_twice((first, second), path, f"c{number}", seen)

    await asyncio.gather(*(client(number) for number in range(CLIENTS)))
    return seen


@pytest.fixture(scope="module")
def duplicates(served: Deployment) -> Duplicates:
    """The duplicating run, once per backend."""
    path = new_project(served.url, "duplicates")
    seen = asyncio.run(duplicate(served.url, path))
    seen.final = final_counts(served.url, path)
    print(f"duplicates: {dict(seen.statuses)}, {seen.replays} pairs answered twice")
    return seen


def test_duplicates_apply_every_change_exactly_once(duplicates: Duplicates) -> None:
    """Each member counts exactly the changes its client saw applied: none twice, none lost."""
    expected = {f"c{number}": CHANGES for number in range(CLIENTS)}
    assert (dict(duplicates.applied), duplicates.final) == (expected, expected)


def test_duplicates_get_no_server_error(duplicates: Duplicates) -> None:
    """No copy of any write is answered 5xx."""
    assert not [status for status in duplicates.statuses if status >= 500], duplicates.statuses


def test_both_answers_of_a_pair_name_one_version(duplicates: Duplicates) -> None:
    """When both copies are answered 2xx, they carry the same ETag: one write, replayed."""
    assert duplicates.split == []

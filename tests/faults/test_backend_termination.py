"""Every PostgreSQL backend of the service's database terminated, under load and idle.

An administrator (or a failover, or an idle-session reaper) ends the sessions of
``optimist serve --workers 2`` with ``pg_terminate_backend`` from a connection of its
own. A request whose connection dies is run again on a fresh one when that is safe (a
read, or a write that never left the process), and is otherwise a 503 with Retry-After
(a write that may have reached the database); a pooled connection found closed at
checkout is replaced with the rest of the pool, so no request sent after the
termination meets a dead connection.

:func:`terminated` terminates every backend :data:`TERMINATIONS` times while sixteen
read-modify-write clients run, then once more with the pools idle before
:data:`READS` sequential reads; each test checks one behaviour against that record.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import terminate_backends
from tests.support.deployments import deployment
from tests.support.load import Answer, Load, counting, new_project, since, tally, unacceptable
from tests.support.probes import database_probes, send
from tests.support.shared import once

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: How many times every backend is terminated under load.
TERMINATIONS = 3
#: Acknowledged writes awaited before each termination and after the last.
WRITES = 20
#: Sequential reads after a termination with the pools idle.
READS = 30


@dataclass(frozen=True)
class Terminated:
    """What the clients saw, and the reads after the termination with idle pools."""

    load: Load
    #: How many sessions each termination under load ended.
    ended: list[int]
    #: When the last termination under load was over (``time.monotonic()``).
    over: float
    reads: list[Answer]


def terminate(database: str) -> int:
    """End every session of ``database`` but the caller's; how many there were."""
    return len(asyncio.run(terminate_backends(database)))


def terminate_under_load_and_idle(directory: Path, database: str) -> Terminated:
    """The terminations under load, then the one with idle pools and the reads after it."""
    with deployment(directory, database_url=database) as running:
        path = new_project(running.url)
        ended = []
        with counting(running.url, path) as load:
            for _ in range(TERMINATIONS):
                load.progress(WRITES)
                ended.append(terminate(database))
            over = time.monotonic()
            load.progress(WRITES)
        gets = [probe for probe in database_probes(running.url) if probe.method == "GET"]
        terminate(database)
        reads: list[Answer] = []
        while len(reads) < READS:
            reads += send(running.url, gets)[: READS - len(reads)]
    later = since(load.answers(), over)
    written = [
        answer.started + answer.seconds for answer in later if answer.method == "PUT" and answer.ok
    ]
    first = min(written, default=float("nan")) - over
    print(f"backends terminated {ended} under load: {dict(tally(load.answers()))}; after the "
          f"last: {dict(tally(later))}, first write answered {first:.3f} s "
          f"after it; {READS} reads with idle pools: {dict(tally(reads))}")  # fmt: skip
    return Terminated(load, ended, over, reads)


@pytest.fixture(scope="module")
def terminated(fault_database: str, tmp_path_factory: pytest.TempPathFactory) -> Terminated:
    """The run, once per session, on a scratch database of the shared server."""
    return once(
        tmp_path_factory,
        "terminated",
        lambda: terminate_under_load_and_idle(
            tmp_path_factory.mktemp("terminated"), fault_database
        ),
    )


def test_each_termination_ends_the_services_sessions(terminated: Terminated) -> None:
    """The fault happened: every termination found sessions of the service to end."""
    assert len(terminated.ended) == TERMINATIONS
    assert all(terminated.ended), terminated.ended


def test_clients_see_only_2xx_412_or_503_with_retry_after(terminated: Terminated) -> None:
    """While every backend is terminated again and again under load, each answer is a 2xx,
    a 412 or a 503 problem with Retry-After: never a 500, a dropped connection or a hang."""
    assert unacceptable(terminated.load.answers()) == []


def test_requests_sent_after_a_termination_under_load_succeed(terminated: Terminated) -> None:
    """Once the terminated backends are gone, every request the clients send is a 2xx (or
    a 412 for a client that lost a race): no dead pooled connection reaches one."""
    later = since(terminated.load.answers(), terminated.over)
    assert later
    assert [answer for answer in later if not (answer.ok or answer.status == 412)] == []


def test_reads_after_a_termination_with_idle_pools_all_succeed(terminated: Terminated) -> None:
    """With the pools idle when every backend is terminated, the next 30 reads, each on a
    connection of its own so that both workers answer, are all 200."""
    assert [answer.status for answer in terminated.reads] == [200] * READS

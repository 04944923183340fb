"""Another process holds SQLite's write lock: reads go on, a write waits, then gets a 503.

``optimist serve --workers 2 --busy-timeout 3`` runs on a SQLite file of its own.
Another process takes the file's write lock (:mod:`tests.support.locks`) and
:func:`locked` sends a write to a project, which waits out the busy timeout, and
meanwhile reads in each API, ``/healthz`` and ``/readyz``, each on a connection of its
own, until the write is answered. The lock is held until then, however long that
takes, so the short busy timeout (the default is 30 s) only makes the run shorter: no
assertion depends on a duration. Then the lock is released and writes are sent again.
Each test checks one behaviour against that record.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.support.deployments import Deployment, deployment
from tests.support.load import REQUEST_TIMEOUT, Answer, ask, new_project, tally
from tests.support.locks import write_lock
from tests.support.probes import Probe, database_probes, send
from tests.support.shared import once

pytestmark = pytest.mark.slow

HEALTHZ, READYZ = Probe("GET", "/healthz"), Probe("GET", "/readyz")
#: Seconds the deployment's writes wait for the write lock (``--busy-timeout``).
BUSY_TIMEOUT = 3


@dataclass(frozen=True)
class Locked:
    """What the service answered while the lock was held, and after."""

    #: The write sent once the lock was taken.
    write: Answer
    #: Whether the other process still held the lock when the write was answered.
    held: bool
    #: Reads, /healthz and /readyz sent while the lock was held, until the write was answered.
    during: list[Answer]
    #: Creates and updates in each API once the lock was released.
    after: list[Answer]


def put(base_url: str, path: str, body: dict[str, str]) -> Answer:
    """PUT ``body`` to ``path`` on a connection of its own."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
        answer, _ = ask(http, "PUT", path, json=body)
    return answer


def lock_while_a_write_waits(service: Deployment) -> Locked:
    """Hold the write lock until a write waiting for it is answered, reading meanwhile
    (at least once, however soon the write is answered); then write again."""
    project = new_project(service.url, "locked")
    probes = database_probes(service.url)
    reads = [probe for probe in probes if probe.method == "GET"] + [HEALTHZ, READYZ]
    during: list[Answer] = []
    with write_lock(service.database) as holder, ThreadPoolExecutor(1) as executor:
        waiting = executor.submit(put, service.url, project, {"description": "waits"})
        while True:
            during += send(service.url, reads)
            if waiting.done():
                break
        write, held = waiting.result(), holder.holding()
    after = send(service.url, [probe for probe in probes if probe.method != "GET"])
    after.append(put(service.url, project, {"description": "after"}))
    slowest = max(answer.seconds for answer in during)
    print(f"write lock held: the write {write.status} after {write.seconds:.1f} s; "
          f"meanwhile {dict(tally(during))}, slowest {slowest:.3f} s; "
          f"after {dict(tally(after))}")  # fmt: skip
    return Locked(write, held, during, after)


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Locked:
    """The run, once per session, on ``optimist serve --workers 2 --busy-timeout 3`` and a
    SQLite file of its own."""

    def run() -> Locked:
        busy = ("--busy-timeout", str(BUSY_TIMEOUT))
        with deployment(tmp_path_factory.mktemp("locked"), *busy) as service:
            return lock_while_a_write_waits(service)

    return once(tmp_path_factory, "locked", run)


def test_reads_answer_200_while_another_process_holds_the_write_lock(locked: Locked) -> None:
    """Reads in each API take no write lock: all 200 while a write waits for it."""
    reads = [answer for answer in locked.during if answer.path not in {"/healthz", "/readyz"}]
    assert reads
    assert [answer.status for answer in reads] == [200] * len(reads)


def test_healthz_and_readyz_answer_200_while_another_process_holds_the_write_lock(
    locked: Locked,
) -> None:
    """Liveness needs no database and readiness only a read: both 200 throughout."""
    probes = [answer for answer in locked.during if answer.path in {"/healthz", "/readyz"}]
    assert {answer.path for answer in probes} == {"/healthz", "/readyz"}
    assert [answer.status for answer in probes] == [200] * len(probes)


def test_a_write_gets_503_with_retry_after_once_the_busy_timeout_runs_out(
    locked: Locked,
) -> None:
    """A write that cannot take the lock within the busy timeout is a 503 problem with
    Retry-After, answered while the lock is still held."""
    assert locked.held
    assert locked.write.unavailable, locked.write


def test_writes_succeed_once_the_lock_is_released(locked: Locked) -> None:
    """Creates and updates in each API, and the refused write sent again, are all 2xx
    once the other process lets go."""
    assert [answer.status for answer in locked.after if not answer.ok] == []

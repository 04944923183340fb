"""``optimist serve`` as a process group of its own, which a fault test may kill and restart.

:func:`tests.support.servers.serving` stops its server politely at the end of a
``with``. A fault test needs more: to kill the master with SIGKILL, as the OOM killer
or a crashed container runtime would, see whether its workers follow it, and start the
same deployment again on the same port and database. Every process the deployment
starts is in one process group (its own session), so the test can list them and, at
the end of the ``with`` of :func:`deployment`, whatever the test did, kill them all.

A deployment counts as started once every worker has finished its startup (uvicorn's
"Application startup complete." once per worker in the log of this start) and
``/readyz`` answers 200: a fault that began while a worker was still starting would
test the start, not the fault.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from tests.support.servers import ROOT, SERVE_ENV, free_port, optimist_command, wait_until

__all__ = ["PATIENCE", "STARTED", "Deployment", "deployment", "group_members"]

#: What uvicorn logs once per worker when the worker's startup is over.
STARTED: Final = "Application startup complete."
#: Seconds a start, or the exit of every process of a group, may take: only a broken
#: deployment reaches them, never a busy machine.
PATIENCE: Final = 120.0
#: How many answers of /healthz name the workers: enough that each of two is all but
#: certainly among them.
WORKER_PROBES: Final = 20

#: The environment of a fault test's ``optimist serve``: the tests' own (nothing of the
#: runner's), with the demo data, whose user the probes read.
_ENV: Final = {**SERVE_ENV, "OPTIMIST_DEMO_DATA": "1"}


def group_members(group: int) -> list[int]:
    """The live processes (zombies excluded) of process group ``group``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:  # gone meanwhile
            continue
        if int(pgrp) == group and state not in {"Z", "X"}:
            members.append(int(entry.name))
    return members


@dataclass
class Deployment:
    """One ``optimist serve --workers N`` deployment: its port, directory, log, processes."""

    directory: Path
    port: int
    workers: int
    database_url: str | None
    env: Mapping[str, str]
    #: Further options of ``optimist serve`` (``--busy-timeout 3``), given at every start.
    options: tuple[str, ...] = ()
    #: How many times it was started.
    starts: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: The process groups of every start, emptied when the ``with`` ends.
    groups: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "serve.log"

    @property
    def database(self) -> Path:
        """The SQLite file of a deployment without a database URL."""
        return self.directory / "optimist.db"

    def output(self) -> str:
        """Everything every start of the deployment printed."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def current_output(self) -> str:
        """What the latest start printed."""
        return self.output().rsplit(f"--- start {self.starts}:", 1)[-1]

    def start(self) -> None:
        """Start the deployment; return once every worker started and /readyz is 200."""
        assert self.process is None, "started twice"
        self.starts += 1
        arguments = ["serve", "--port", str(self.port), "--workers", str(self.workers)]
        if self.database_url is not None:
            arguments += ["--database-url", self.database_url]
        command = optimist_command(*arguments, *self.options)
        with self.log.open("ab") as sink:
            sink.write(f"\n--- start {self.starts}: {' '.join(command)}\n".encode())
            sink.flush()
            self.process = subprocess.Popen(
                command,
                env={
                    **os.environ,
                    **self.env,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                },
                cwd=self.directory,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(self.process.pid)
        process = self.process

        def started() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"optimist serve exited:\n{self.current_output()}")
            if self.current_output().count(STARTED) < self.workers:
                return False
            try:
                return httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(started, timeout=PATIENCE, what=f"{self.workers} workers of {self.url} ready")

    def running(self) -> bool:
        """Whether the latest start's master is still running."""
        return self.process is not None and self.process.poll() is None

    def worker_ids(self, *, answers: int = WORKER_PROBES) -> set[int]:
        """The process ids of the workers that answered ``answers`` GET /healthz, each on
        a connection of its own (the kernel hands each to either worker)."""
        seen = set()
        for _ in range(answers):
            response = httpx.get(f"{self.url}/healthz", timeout=PATIENCE)
            assert response.status_code == 200, response.text
            seen.add(int(response.json()["worker"]))
        return seen

    def kill_worker(self, pid: int) -> None:
        """SIGKILL to one worker of the running start; return once it is gone (its master
        starts another)."""
        assert pid != self.groups[-1], "the master"
        assert pid in group_members(self.groups[-1]), f"{pid} is no process of this start"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pid not in group_members(self.groups[-1]), timeout=PATIENCE)

    def kill_master(self) -> list[int]:
        """SIGKILL to the master alone; the processes of its group still alive once
        :data:`PATIENCE` seconds have passed, or none as soon as all are gone."""
        process = self.process
        assert process is not None, "not started"
        process.kill()
        process.wait()
        self.process = None
        with suppress(AssertionError):
            wait_until(lambda: not group_members(process.pid), timeout=PATIENCE)
        return group_members(process.pid)

    def stop(self) -> None:
        """SIGTERM to the master, as an operator stops it; then SIGKILL to whatever is left
        of every start, and return once nothing is."""
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for group in self.groups:
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if process is not None:
            process.wait()
        wait_until(
            lambda: not any(group_members(group) for group in self.groups),
            timeout=PATIENCE,
            what=f"process groups {self.groups} gone",
        )


@contextmanager
def deployment(
    directory: Path,
    *options: str,
    workers: int = 2,
    database_url: str | None = None,
) -> Iterator[Deployment]:
    """``optimist serve --workers N`` with ``options`` started in ``directory`` (its SQLite
    database there unless ``database_url`` names another) on a free port; stopped, and
    every process it started gone, at the end of the ``with``."""
    running = Deployment(directory, free_port(), workers, database_url, _ENV, options)
    try:
        running.start()
        yield running
    finally:
        running.stop()

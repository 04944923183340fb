"""A primary and its hot standby, both clusters of a test's own, and a failover between them.

:func:`replicated` makes a primary and a hot standby that streams from it
(:func:`tests.support.replicas.replication`), with replication either synchronous
(``synchronous_standby_names = '*'``, ``synchronous_commit = on``: a commit is
acknowledged once the standby has its WAL) or asynchronous (acknowledged once the
primary has it, the standby catching up when it can). The standby is made before
``synchronous_standby_names`` is set, so that once promoted it waits for no standby of
its own.

:meth:`Pair.crash_primary` is a host that dies: SIGKILL to the postmaster and every
process it started at once. A SIGKILL of the postmaster alone would leave its backends
to finish their statements, and answer them, before they notice and exit.
:meth:`Pair.promote` makes the standby the primary, as a failover manager would.
:meth:`Pair.url` is the multi-host URL a service uses to find whichever is the
primary. Everything is removed when the ``with`` ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from tests.support.clusters import DATABASE, PG_CTL_WAIT, SUPERUSER, Cluster
from tests.support.replicas import replication
from tests.support.servers import wait_until

__all__ = ["Pair", "replicated"]

#: Seconds replication may take to reach a state (streaming, promoted): a bound only a
#: broken cluster reaches.
PATIENCE: Final = 120.0


async def _value(cluster: Cluster, query: str) -> object:
    """The first value of ``query`` on a connection of its own to ``cluster``."""
    connection = await asyncpg.connect(
        host="127.0.0.1", port=cluster.port, user=SUPERUSER, database=DATABASE, timeout=5
    )
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def value(cluster: Cluster, query: str) -> object:
    """The first value of ``query`` on ``cluster``, or None if the cluster cannot answer."""
    try:
        return asyncio.run(_value(cluster, query))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None


def _state(pid: int) -> str | None:
    """The state letter of process ``pid`` in ``/proc`` (``T``: stopped, ``Z``: a zombie,
    which has exited), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _members(data: Path) -> list[int]:
    """The live processes (zombies excluded) of the cluster in ``data``: its postmaster
    and every process it started, since they all work in the data directory."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").readlink()
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if cwd == data and _state(int(entry.name)) not in {None, "Z", "X"}:
            members.append(int(entry.name))
    return members


@dataclass
class Pair:
    """A primary and its standby; which of them is the primary changes at a failover."""

    primary: Cluster
    standby: Cluster
    synchronous: bool

    def url(self) -> str:
        """The multi-host URL of the database: both hosts, the one that accepts writes."""
        hosts = "&".join(f"host=127.0.0.1:{cluster.port}" for cluster in self.clusters)
        return (
            f"postgresql+asyncpg://{SUPERUSER}@/{DATABASE}?{hosts}&target_session_attrs=read-write"
        )

    @property
    def clusters(self) -> tuple[Cluster, Cluster]:
        return self.primary, self.standby

    def crash_primary(self) -> None:
        """SIGKILL to the primary's postmaster and all its processes; return once all exited.

        The postmaster is stopped first, so that it starts no process while its own are
        killed: every process working in the cluster's data directory, until none is left
        (one a backend start left behind included). Its ``postmaster.pid`` and shared
        memory, which a crash leaves behind, are removed: the cluster counts as stopped.
        """
        data = self.primary.data.resolve()
        pid_file = data / "postmaster.pid"
        lines = pid_file.read_text().splitlines()
        postmaster = int(lines[0])
        os.kill(postmaster, signal.SIGSTOP)
        # A signal is delivered after kill() returns: until the postmaster shows as
        # stopped, it may still start a backend, which would outlive the kill below.
        wait_until(
            lambda: _state(postmaster) in {"T", None},
            timeout=PATIENCE,
            what="the primary's postmaster stopped",
        )

        def gone() -> bool:
            members = _members(data)
            for member in members:
                with suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
            return not members

        wait_until(gone, timeout=PATIENCE, what="the primary's processes gone")
        pid_file.unlink()
        # Line 7 of postmaster.pid: the key and id of the System V shared memory segment.
        segment = lines[6].split()[-1] if len(lines) > 6 and lines[6].split() else None
        if segment is not None:
            subprocess.run(["ipcrm", "-m", segment], capture_output=True, check=False)

    def promote(self) -> None:
        """Make the standby the primary; return once it accepts writes."""
        self.standby.run("pg_ctl", "promote", "-D", str(self.standby.data), "-w",
                         "-t", str(PG_CTL_WAIT))  # fmt: skip
        wait_until(
            lambda: value(self.standby, "SELECT pg_is_in_recovery()") is False,
            timeout=PATIENCE,
            what="the promoted standby out of recovery",
        )


def _replicating(pair: Pair) -> bool:
    """Whether the primary streams to the standby in the mode ``pair`` wants, and commits
    wait for the log to be where that mode says."""
    wanted = "sync" if pair.synchronous else "async"
    state = value(
        pair.primary,
        "SELECT state || ' ' || sync_state FROM pg_stat_replication"
        " WHERE state = 'streaming' LIMIT 1",
    )
    committing = value(pair.primary, "SHOW synchronous_commit")
    return state == f"streaming {wanted}" and committing == "on"


@contextmanager
def replicated(*, synchronous: bool) -> Iterator[Pair]:
    """A started primary with the empty database ``optimist`` and a standby streaming from
    it, synchronously or not; both stopped and removed when the ``with`` ends."""
    with replication() as replicas:
        pair = Pair(replicas.primary, replicas.standby, synchronous)
        if synchronous:
            with (pair.primary.data / "postgresql.conf").open("a") as conf:
                conf.write("synchronous_standby_names = '*'\n")
            pair.primary.run("pg_ctl", "reload", "-D", str(pair.primary.data))
        wait_until(
            lambda: _replicating(pair),
            timeout=PATIENCE,
            what=f"{'synchronous' if synchronous else 'asynchronous'} streaming to the standby",
        )
        yield pair

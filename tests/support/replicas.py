"""A PostgreSQL primary with a streaming standby of the test's own: read replicas.

The primary is a private cluster (:func:`tests.support.clusters.private_cluster`); the
standby is its ``pg_basebackup -R`` on another free port, streaming its write-ahead log
and open to reads (hot standby). Both are stopped and deleted when the ``with`` ends,
whatever happens. A test makes the standby lag at will: :meth:`Replication.pause`
stops the replay (the standby keeps receiving the log, and keeps what it had replayed),
:meth:`Replication.resume` lets it go on, and :meth:`Replication.caught_up` waits,
polling with a generous deadline, until it has replayed what the primary has written.
Where no PostgreSQL binaries are installed the test is skipped, except under CI, where
that is a failure (as for any private cluster).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import asyncpg
from sqlalchemy.engine import make_url

from tests.support.clusters import (
    DATABASE,
    SUPERUSER,
    Cluster,
    _start_on_a_free_port,
    private_cluster,
)
from tests.support.servers import free_port

__all__ = ["REPLAY_WAIT", "Replication", "replication"]

#: Seconds a standby may take to replay what the primary wrote, or to pause: generous,
#: only a broken standby takes that long, never a busy machine.
REPLAY_WAIT: Final = 120.0
#: Seconds between two polls of the standby's state.
_POLL: Final = 0.05


async def _value(url: str, query: str, *arguments: object) -> Any:
    """The one value ``query`` returns on the database at ``url``."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return await connection.fetchval(query, *arguments)
    finally:
        await connection.close()


@dataclass(frozen=True)
class Replication:
    """A primary and its streaming standby, both running."""

    primary: Cluster
    standby: Cluster

    async def primary_lsn(self) -> str:
        """The primary's current write-ahead log position."""
        return str(await _value(self.primary.url(), "SELECT pg_current_wal_lsn()::text"))

    async def replayed(self, lsn: str) -> bool:
        """Whether the standby has replayed the log up to ``lsn``."""
        query = "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)"
        return bool(await _value(self.standby.url(), query, lsn))

    async def caught_up(self) -> None:
        """Return once the standby has replayed everything the primary has written so far."""
        lsn = await self.primary_lsn()
        await self._until(lambda: self.replayed(lsn), f"the standby replays up to {lsn}")

    async def pause(self) -> None:
        """Stop the standby's replay; return once it is paused."""
        await _value(self.standby.url(), "SELECT pg_wal_replay_pause()")
        await self._until(self._paused, "the standby's replay pauses")

    async def resume(self) -> None:
        """Let the standby replay again."""
        await _value(self.standby.url(), "SELECT pg_wal_replay_resume()")

    async def _paused(self) -> bool:
        state = await _value(self.standby.url(), "SELECT pg_get_wal_replay_pause_state()")
        if state == "pause requested":
            # The startup process pauses at its next record: give it one (a commit).
            await _value(self.primary.url(), "SELECT txid_current()")
        return bool(state == "paused")

    async def _until(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + REPLAY_WAIT
        while not await condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {REPLAY_WAIT} s: {what}")
            await anyio.sleep(_POLL)


def _standby_settings(standby: Cluster) -> None:
    """The standby's own port and socket directory; reads that never conflict with replay."""
    settings = {
        "port": str(standby.port),
        "unix_socket_directories": f"'{standby.directory}'",
        "hot_standby": "on",
        # The primary keeps the rows a standby's read still sees, so that the replay
        # never cancels a read of the service's (a recovery conflict).
        "hot_standby_feedback": "on",
    }
    with (standby.data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


@contextmanager
def replication() -> Iterator[Replication]:
    """A running primary (with an empty database ``optimist``) and its streaming standby;
    both stopped and deleted, directories and all, when the ``with`` ends."""
    with private_cluster() as primary:
        # A commit is in the log the standby receives when it is answered, so that
        # "caught up with the primary" includes every write a test saw acknowledged.
        anyio.run(_value, primary.url(), f'ALTER DATABASE "{DATABASE}" SET synchronous_commit = on')
        directory = Path(tempfile.mkdtemp(prefix="optimist-standby-"))
        standby = Cluster(primary.bin, directory, free_port(), primary.owner)
        try:
            if standby.owner is not None:
                os.chown(directory, standby.owner.pw_uid, standby.owner.pw_gid)
            standby.run(
                "pg_basebackup", "-D", str(standby.data), "-R", "-X", "stream",
                "-c", "fast", "--no-sync", "-h", "127.0.0.1", "-p", str(primary.port),
                "-U", SUPERUSER,
            )  # fmt: skip
            _standby_settings(standby)
            # The same start as the primary's, on another free port if this one was taken.
            _start_on_a_free_port(standby)
            yield Replication(primary, standby)
        finally:
            try:
                if standby.data.exists() and standby.running():
                    standby.stop("immediate")
            finally:
                shutil.rmtree(directory, ignore_errors=True)

"""PostgreSQL clusters of a test's own, which it may stop and start: database outages.

The shared server (``OPTIMIST_TEST_POSTGRES_URL``) is never stopped; a test that needs
the database to go away makes a cluster of its own with the server's ``initdb`` and
``pg_ctl``, on a free port, in a temporary directory, and removes both when it ends,
whether it passed or not. PostgreSQL refuses to run as root: under root the cluster
belongs to the ``postgres`` system user (``runuser``), otherwise to the current user.
Where no PostgreSQL binaries are installed the test is skipped, except under CI, where
that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import execute
from tests.support.servers import free_port

__all__ = ["Cluster", "postgres_bin", "private_cluster"]

#: The superuser of a private cluster (the shared server's tests connect as root too).
SUPERUSER = "root"
#: The database the service uses in a private cluster.
DATABASE = "optimist"
#: Seconds pg_ctl may wait for a start or a stop: generous, a busy machine is slow.
PG_CTL_WAIT = 120


def postgres_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _owner() -> pwd.struct_passwd | None:
    """The system user the cluster runs as when this process is root, or None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


@dataclass
class Cluster:
    """A private PostgreSQL cluster: where it lives, its port, and its ``pg_ctl``."""

    bin: Path
    directory: Path
    port: int
    owner: pwd.struct_passwd | None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of ``database`` in this cluster."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *arguments: str, check: bool = True) -> int:
        """Run one of the server's programs as the cluster's owner; its exit status."""
        command: Sequence[str] = [str(self.bin / program), *arguments]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        result = subprocess.run(
            command,
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=PG_CTL_WAIT + 60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(arguments)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.output()}"
            )
        return result.returncode

    def output(self) -> str:
        """The server's log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> None:
        """Start the server; return once it accepts connections (``pg_ctl -w``)."""
        self.run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", str(PG_CTL_WAIT),
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are ended); return once it is down."""
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_CTL_WAIT))

    def running(self) -> bool:
        return self.run("pg_ctl", "status", "-D", str(self.data), check=False) == 0


def _configure(cluster: Cluster) -> None:
    """Settings for a throw-away cluster: its port, TCP on loopback only, no durability."""
    settings = {
        "port": str(cluster.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{cluster.directory}'",
        "max_connections": "100",
        "shared_buffers": "'16MB'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A started cluster of this test's own with an empty database ``optimist``; stopped
    and deleted, directory and all, when the ``with`` ends."""
    binaries = postgres_bin()
    owner = _owner()
    if binaries is None or (os.geteuid() == 0 and owner is None):
        reason = "no PostgreSQL server binaries (initdb, pg_ctl) to make a private cluster"
        if owner is None and binaries is not None:
            reason = "running as root without a postgres system user to own a private cluster"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the outage tests", pytrace=False)
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="optimist-cluster-"))
    cluster = Cluster(binaries, directory, free_port(), owner)
    try:
        if owner is not None:
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster.run(
            "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        _configure(cluster)
        _start_on_a_free_port(cluster)
        asyncio.run(execute(cluster.url("postgres"), f'CREATE DATABASE "{DATABASE}"'))
        yield cluster
    finally:
        try:
            if cluster.data.exists() and cluster.running():
                cluster.stop("immediate")
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _start_on_a_free_port(cluster: Cluster, attempts: int = 3) -> None:
    """Start ``cluster``, on another free port if another process took its own meanwhile."""
    for attempt in range(attempts):
        try:
            cluster.start()
            return
        except RuntimeError:
            if attempt == attempts - 1 or "could not bind" not in cluster.output():
                raise
        cluster.port = free_port()
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {cluster.port}\n")

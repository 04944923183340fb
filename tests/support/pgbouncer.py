"""A PgBouncer of the tests' own, in transaction pooling mode, in front of the test server.

The tests that prove the library and the service correct behind a transaction pooler
run their clients through a private ``pgbouncer`` process: configuration, user list,
log and pid file in a temporary directory, listening on a free port of 127.0.0.1 only
(no Unix socket), trusting every login of the server URL's user, with a pool of
:data:`POOL_SIZE` server connections per database so that statements of different
clients land on the same server connections. It is stopped, and its directory
removed, whether the tests passed or not. PgBouncer refuses to run as root: under root
it runs as the ``postgres`` system user (``-u``), otherwise as the current user.

Where no ``pgbouncer`` is installed the tests are skipped with the reason, except under
CI, where that is a failure (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support.servers import free_port

__all__ = [
    "POOL_SIZE",
    "Bouncer",
    "pgbouncer",
    "pgbouncer_binary",
    "pinned",
    "private_bouncer",
]

#: Server connections per database and user: fewer than the clients, so they share them.
POOL_SIZE: Final = 2
#: Seconds PgBouncer may take to answer after it started: generous, a busy machine is slow.
STARTUP: Final = 60.0
#: Seconds it may take to exit once told to.
SHUTDOWN: Final = 20.0
#: Parameters PgBouncer itself sets on a server connection for each client that it lends
#: it to (its documented startup parameters), which are no state of any client's.
TRACKED: Final = frozenset(
    {"client_encoding", "datestyle", "timezone", "standard_conforming_strings", "application_name"}
)


def pgbouncer_binary() -> str | None:
    """The ``pgbouncer`` program, if installed (Debian puts it in /usr/sbin)."""
    found = shutil.which("pgbouncer")
    if found is None and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    return found


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: its port, its directory (with its log) and its process."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

    def output(self) -> str:
        """Everything PgBouncer logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def url(self, database_url: str, *, pooler: str | None = "transaction") -> str:
        """``database_url`` (a database of the test server) reached through this bouncer,
        saying ``?pooler=`` unless ``pooler`` is None."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        if pooler is not None:
            url = url.update_query_dict({"pooler": pooler})
        return url.render_as_string(hide_password=False)


def _configure(
    directory: Path,
    port: int,
    server_url: str,
    listen: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
) -> Path:
    """Write the configuration and user list of a bouncer in front of ``server_url``,
    listening on 127.0.0.1 and the ``listen`` addresses, with further ``settings``."""
    server = make_url(server_url)
    user = server.username or "postgres"
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = {','.join(('127.0.0.1', *listen))}\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {POOL_SIZE}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        "max_client_conn = 2000\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
        f"pidfile = {directory / 'pgbouncer.pid'}\n"
        + "".join(f"{name} = {value}\n" for name, value in (settings or {}).items())
    )
    return ini


def _as_postgres() -> bool:
    """Whether PgBouncer must run as the ``postgres`` system user: it refuses root."""
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root without a postgres system user to run pgbouncer as")
    return True


async def _answers(port: int, server_url: str) -> bool:
    """Whether a bouncer on ``port`` passes a statement to the server's database."""
    server = make_url(server_url)
    try:
        connection = await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=server.username,
            database=server.database,
            statement_cache_size=0,
            timeout=5,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False  # not listening yet, or not passing logins on yet
    try:
        return bool(await connection.fetchval("SELECT 1"))
    finally:
        await connection.close()


def _start(
    binary: str,
    directory: Path,
    server_url: str,
    listen: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
) -> Bouncer:
    """Start a bouncer on a free port (another, if one was taken meanwhile); return once
    it passes statements through."""
    as_postgres = _as_postgres()
    for _ in range(3):
        port = free_port()
        ini = _configure(directory, port, server_url, listen, settings)
        command = [binary, *(["-u", "postgres"] if as_postgres else []), str(ini)]
        # Its files are read and written by the user it runs as.
        for path in (directory, *directory.iterdir()) if as_postgres else ():
            shutil.chown(path, "postgres")
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=directory
        )
        bouncer = Bouncer(port, directory, process)
        deadline = time.monotonic() + STARTUP
        while process.poll() is None and time.monotonic() < deadline:
            if asyncio.run(_answers(port, server_url)):
                return bouncer
            time.sleep(0.1)
        _stop(bouncer)
        if "Address already in use" not in bouncer.output():
            raise RuntimeError(f"pgbouncer did not start:\n{bouncer.output()}")
    raise RuntimeError(f"pgbouncer found no free port:\n{bouncer.output()}")


def _stop(bouncer: Bouncer) -> None:
    """Stop ``bouncer`` (SIGTERM: an immediate shutdown) and await its exit."""
    bouncer.process.terminate()
    try:
        bouncer.process.wait(timeout=SHUTDOWN)
    except subprocess.TimeoutExpired:
        bouncer.process.kill()
        bouncer.process.wait()


@contextmanager
def private_bouncer(
    server_url: str, *, listen: Sequence[str] = (), settings: Mapping[str, str] | None = None
) -> Iterator[Bouncer]:
    """A started PgBouncer in transaction mode in front of the server at ``server_url``,
    on 127.0.0.1 and the ``listen`` addresses, with further ``settings`` of its
    configuration; stopped, and its directory removed, when the ``with`` ends."""
    binary = pgbouncer_binary()
    if binary is None:
        reason = "no pgbouncer installed (apt-get install pgbouncer)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PgBouncer tests", pytrace=False)
        pytest.skip(f"{reason}: the PgBouncer tests need it")
    directory = Path(tempfile.mkdtemp(prefix="optimist-pgbouncer-"))
    try:
        bouncer = _start(binary, directory, server_url, listen, settings)
        try:
            yield bouncer
        finally:
            _stop(bouncer)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(postgres_server_url: str) -> Iterator[Bouncer]:
    """A PgBouncer of this test session's own in front of the test server."""
    with private_bouncer(postgres_server_url) as bouncer:
        yield bouncer


@asynccontextmanager
async def pinned(bouncer_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Every server connection of the bouncer's pool for the database of ``bouncer_url``,
    each held by a client in a transaction of its own, so that a test may look into
    each session; the transactions are rolled back at the end.

    :data:`POOL_SIZE` clients in open transactions hold the whole pool: none of them
    can be given a server connection another holds.
    """
    url = make_url(bouncer_url)
    clients = [
        await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            database=url.database,
            statement_cache_size=0,
            timeout=STARTUP,
        )
        for _ in range(POOL_SIZE)
    ]
    try:
        for client in clients:
            await client.execute("BEGIN")
        pids = {await client.fetchval("SELECT pg_backend_pid()") for client in clients}
        assert len(pids) == POOL_SIZE, f"{POOL_SIZE} transactions shared server connections"
        yield clients
    finally:
        for client in clients:
            # Ended before the client leaves: PgBouncer closes a server connection its
            # client left inside a transaction.
            if client.is_in_transaction():
                await client.execute("ROLLBACK")
            await client.close()

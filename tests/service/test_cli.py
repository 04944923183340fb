"""The command line: options over variables, migrate, --version and --help, and every
operator's mistake said in two lines with exit status 2 and no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import optimist
from optimist.service import command_line, server
from optimist.service.cli import main
from optimist.service.runtime import start
from optimist.service.settings import ENVIRONMENT, Settings
from tests.support.databases import scratch_database
from tests.support.issuers import Issuer
from tests.support.locks import write_lock
from tests.support.servers import free_port, optimist_command

#: A password in the URLs of the mistakes below: no message may show it.
SECRET = "s3cret-pa55"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """main() writes its settings into os.environ; undo that after each test (variables
    it sets that were not there before included). Run in a directory of the test's own,
    where the default database would go."""
    saved = dict(os.environ)
    for name in [*ENVIRONMENT.values(), *command_line.SERVER_ENVIRONMENT.values()]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    os.environ.clear()
    os.environ.update(saved)


@dataclass(frozen=True)
class Mistake:
    """A command line (split as a shell does) and environment, and fragments of the two
    lines it must print."""

    command: str
    what: str
    fix: str
    env: Mapping[str, str] = field(default_factory=dict)

    def filled(self, directory: Path) -> Mistake:
        """With ``{tmp}`` as ``directory`` and ``{closed}`` a port nothing listens on."""
        values = {"tmp": directory, "closed": free_port(), "secret": SECRET}
        return Mistake(
            self.command.format(**values),
            self.what.format(**values),
            self.fix.format(**values),
            {name: value.format(**values) for name, value in self.env.items()},
        )

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)


#: Mistakes run as the operator runs them: the ``optimist`` command, a process of its own.
IN_A_PROCESS = {
    "not-a-url": Mistake(
        "migrate --database-url postgresql://app:{secret}@db:five/app",
        "--database-url: not a database URL",
        "give --database-url a URL such as sqlite:///PATH or postgresql://USER@HOST/DATABASE",
    ),
    "unknown-scheme": Mistake(
        "migrate --database-url mysql://app:{secret}@db/app",
        "--database-url: mysql:// is not a database the service runs on",
        "give --database-url a URL such as sqlite:///PATH",
    ),
    "sync-driver": Mistake(
        "migrate --database-url sqlite+pysqlite:///{tmp}/x.db",
        "--database-url: the driver pysqlite is not one the service uses for sqlite",
        "write sqlite:// (or sqlite+aiosqlite://): the service uses aiosqlite",
    ),
    "sqlite-no-directory": Mistake(
        "migrate --database-url sqlite:///{tmp}/missing/x.db",
        "the directory of the SQLite database {tmp}/missing/x.db does not exist",
        "create it (mkdir -p {tmp}/missing) or give a path in a directory you may write to",
    ),
    "unreachable-server": Mistake(
        "migrate --database-url postgresql://root:{secret}@127.0.0.1:{closed}/optimist",
        "cannot connect to PostgreSQL at 127.0.0.1:{closed}: connection refused",
        "start the server, or correct the host and port in --database-url",
    ),
    "unreachable-servers": Mistake(
        "migrate --database-url 'postgresql://root@/optimist?host=127.0.0.1:{closed}"
        "&host=127.0.0.1:{closed}&target_session_attrs=read-write'",
        "cannot connect to PostgreSQL at 127.0.0.1:{closed}, 127.0.0.1:{closed}:",
        "start the server, or correct the host and port in --database-url",
    ),
    "port-variable": Mistake(
        "serve",
        "OPTIMIST_PORT: 'abc' is not a whole number",
        "set OPTIMIST_PORT to a TCP port number from 1 to 65535, or unset it",
        {"OPTIMIST_PORT": "abc"},
    ),
    "unknown-option": Mistake(
        "serve --prot 8080", "unrecognized arguments: --prot 8080", "see: optimist serve --help"
    ),
}

#: The other mistakes, through main() in this process.
IN_PROCESS = {
    "no-command": Mistake("", "the following arguments are required: command", "optimist --help"),
    "database-variable": Mistake(
        "migrate",
        "OPTIMIST_DATABASE_URL: foo:// is not a database the service runs on",
        "set OPTIMIST_DATABASE_URL to a URL such as sqlite:///PATH",
        {"OPTIMIST_DATABASE_URL": "foo://app:{secret}@db/app"},
    ),
    "sync-postgres-driver": Mistake(
        "migrate --database-url postgresql+psycopg2://app:{secret}@db/app",
        "--database-url: the driver psycopg2 is not one the service uses for postgresql",
        "write postgresql:// (or postgresql+asyncpg://): the service uses asyncpg",
    ),
    "sqlite-parent-is-a-file": Mistake(
        "migrate --database-url sqlite:///{tmp}/serve.log/y.db",
        "the SQLite database {tmp}/serve.log/y.db cannot be created: {tmp}/serve.log is not a",
        "give the database URL a path in a directory you may write to",
    ),
    "sqlite-is-a-directory": Mistake(
        "migrate --database-url sqlite:///{tmp}",
        "the SQLite database {tmp} is a directory",
        "give the database URL a path in a directory you may write to",
    ),
    "not-sqlite": Mistake(
        "migrate --database-url sqlite:///{tmp}/serve.log",
        "{tmp}/serve.log is not a SQLite database",
        "give --database-url another file, or a new one",
    ),
    "port-not-a-number": Mistake(
        "serve --port http", "--port: 'http' is not a whole number", "give --port a TCP port"
    ),
    "port-high": Mistake("serve --port 65536", "--port: 65536 is more than 65535", "1 to 65535"),
    "port-zero": Mistake("serve --port 0", "--port: 0 is less than 1", "from 1 to 65535"),
    "workers-variable": Mistake(
        "serve",
        "OPTIMIST_WORKERS: 'x' is not a whole number",
        "set OPTIMIST_WORKERS to a whole number of worker processes, 1 or more, or unset it",
        {"OPTIMIST_WORKERS": "x"},
    ),
    "workers-zero": Mistake(
        "serve --workers 0", "--workers: 0 is less than 1", "give --workers a whole number"
    ),
    "unknown-host": Mistake(
        "serve --host no-such-host.invalid",
        "--host no-such-host.invalid: no such host name or address",
        "give --host an address of this machine",
    ),
    "node-id": Mistake(
        "serve --node-id 'no spaces allowed'",
        "--node-id: node name 'no spaces allowed' must be 1 to 64 of",
        "give --node-id 1 to 64 letters, digits and . _ ~ -",
    ),
    "negative-timeout": Mistake(
        "serve --body-timeout -1",
        "--body-timeout: -1 is not a positive number of seconds",
        "give --body-timeout a positive number of seconds",
    ),
    "timeout-not-a-number": Mistake(
        "serve --ready-timeout soon", "--ready-timeout: 'soon' is not a number", "positive"
    ),
    "busy-timeout-zero": Mistake(
        "serve --busy-timeout 0",
        "--busy-timeout: 0 is not a positive number of seconds",
        "give --busy-timeout a positive number of seconds",
    ),
    "busy-timeout-infinite": Mistake(
        "migrate --busy-timeout inf",
        "--busy-timeout: inf is not a positive number of seconds",
        "give --busy-timeout a positive number of seconds",
    ),
    "busy-timeout-variable": Mistake(
        "migrate",
        "OPTIMIST_BUSY_TIMEOUT: nan is not a positive number of seconds",
        "set OPTIMIST_BUSY_TIMEOUT to a positive number of seconds, or unset it",
        {"OPTIMIST_BUSY_TIMEOUT": "nan"},
    ),
    "timeout-variable": Mistake(
        "serve",
        "OPTIMIST_HEAD_TIMEOUT: 'soon' is not a number",
        "set OPTIMIST_HEAD_TIMEOUT to a positive number of seconds, or unset it",
        {"OPTIMIST_HEAD_TIMEOUT": "soon"},
    ),
    "no-connections": Mistake(
        "serve --max-connections 0",
        "--max-connections: 0 is less than 1",
        "give --max-connections a whole number of connections, 1 or more",
    ),
    "max-age-variable": Mistake(
        "migrate",
        "OPTIMIST_CSRF_MAX_AGE: -5 is not positive",
        "set OPTIMIST_CSRF_MAX_AGE to a positive number of seconds, or unset it",
        {"OPTIMIST_CSRF_MAX_AGE": "-5"},
    ),
    "sqlite-read-url": Mistake(
        "serve --database-url postgresql://root@127.0.0.1/x --read-database-url sqlite:///r.db",
        "--read-database-url: SQLite has no replica to read from",
        "give --read-database-url the URL of a streaming replica of the PostgreSQL database",
    ),
    "read-url-of-a-sqlite-database": Mistake(
        "serve",
        "OPTIMIST_READ_DATABASE_URL: a replica needs a PostgreSQL database, and the database",
        "give the database URL the PostgreSQL primary, or leave the read URL unset",
        {"OPTIMIST_READ_DATABASE_URL": "postgresql://app:{secret}@replica/app"},
    ),
    "read-url-driver": Mistake(
        "serve --database-url postgresql://root@127.0.0.1/x "
        "--read-database-url postgresql+psycopg2://app:{secret}@replica/app",
        "--read-database-url: the driver psycopg2 is not one the service uses for postgresql",
        "write postgresql:// (or postgresql+asyncpg://): the service uses asyncpg",
    ),
    "cors-origin": Mistake(
        "serve --cors-origin https://app.example/",
        "--cors-origin: 'https://app.example/' is not an origin (without a path: no trailing /)",
        "give --cors-origin origins such as https://app.example.com",
    ),
    "trusted-peers-host-bits": Mistake(
        "serve --trusted-peers 10.0.0.1/8",
        "--trusted-peers: '10.0.0.1/8' has host bits set: give the network 10.0.0.0/8",
        "give --trusted-peers the gateway's addresses or networks separated by commas",
    ),
    "trusted-peers-not-a-network": Mistake(
        "serve --trusted-peers 10.0.0.5,gateway.internal",
        "--trusted-peers: 'gateway.internal' is not an IP address or network",
        "give --trusted-peers the gateway's addresses or networks separated by commas",
    ),
    "trusted-peers-variable": Mistake(
        "serve",
        "OPTIMIST_TRUSTED_PEERS: '10.0.0.0/33' is not an IP address or network",
        "set OPTIMIST_TRUSTED_PEERS to the gateway's addresses or networks",
        {"OPTIMIST_TRUSTED_PEERS": "10.0.0.0/33"},
    ),
    "cors-variable": Mistake(
        "serve",
        "OPTIMIST_CORS_ORIGINS: 'app.example' is not an origin",
        "set OPTIMIST_CORS_ORIGINS to origins such as https://app.example.com",
        {"OPTIMIST_CORS_ORIGINS": "https://ok.example app.example"},
    ),
    "auth-unknown": Mistake(
        "serve --auth cookie",
        "argument --auth: invalid choice: 'cookie'",
        "see: optimist serve --help",
    ),
    "auth-variable": Mistake(
        "serve",
        "OPTIMIST_AUTH: 'cookie' is not a mode",
        "set OPTIMIST_AUTH to gateway (identity header fields from the trusted peers) or token",
        {"OPTIMIST_AUTH": "cookie"},
    ),
    "token-without-keys": Mistake(
        "serve --auth token --jwt-audience api --jwt-issuer https://idp.example",
        "OPTIMIST_JWT_KEYS: not set, and token mode needs it",
        "give --jwt-keys the path of a PEM public key or certificate, or of a JWKS document, "
        "or set OPTIMIST_JWT_KEYS",
    ),
    "token-without-audience": Mistake(
        "serve --jwt-keys {tmp}/keys.pem --jwt-issuer https://idp.example",
        "OPTIMIST_JWT_AUDIENCE: not set, and token mode needs it",
        "give --jwt-audience the audience (aud)",
        {"OPTIMIST_AUTH": "token"},
    ),
    "token-without-issuer": Mistake(
        "serve --auth token --jwt-keys {tmp}/keys.pem --jwt-audience api",
        "OPTIMIST_JWT_ISSUER: not set, and token mode needs it",
        "give --jwt-issuer the identity provider's issuer (iss)",
    ),
    "jwt-keys-absent": Mistake(
        "serve --auth token --jwt-keys {tmp}/absent.pem --jwt-audience api --jwt-issuer idp",
        "--jwt-keys: {tmp}/absent.pem: No such file or directory",
        "give --jwt-keys a PEM public key or certificate, or a JWKS document",
    ),
    "jwt-keys-not-keys": Mistake(
        "serve --auth token --jwt-keys {tmp}/serve.log --jwt-audience api --jwt-issuer idp",
        "--jwt-keys: {tmp}/serve.log: neither a PEM public key or certificate nor a JWKS",
        "give --jwt-keys a PEM public key or certificate, or a JWKS document",
    ),
    "jwt-keys-variable": Mistake(
        "serve --auth token --jwt-audience api --jwt-issuer idp",
        "OPTIMIST_JWT_KEYS: {tmp}/absent.json: No such file or directory",
        "set OPTIMIST_JWT_KEYS to a PEM public key or certificate, or a JWKS document",
        {"OPTIMIST_JWT_KEYS": "{tmp}/absent.json"},
    ),
    "jwt-leeway-negative": Mistake(
        "serve --jwt-leeway -5",
        "--jwt-leeway: -5 is not a number of seconds, 0 or more",
        "give --jwt-leeway a number of seconds, 0 or more",
    ),
    "jwt-leeway-variable": Mistake(
        "serve",
        "OPTIMIST_JWT_LEEWAY: 'soon' is not a number",
        "set OPTIMIST_JWT_LEEWAY to a number of seconds, 0 or more",
        {"OPTIMIST_JWT_LEEWAY": "soon"},
    ),
}


def stopped(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What main(argv) printed on stderr, after checking that it stopped with status 2."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def assert_said(stderr: str, mistake: Mistake) -> None:
    """``stderr`` is the mistake's two lines, each as the command prints it, no password."""
    assert "Traceback" not in stderr
    assert SECRET not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert all(line.startswith("optimist: ") for line in lines), stderr
    assert mistake.what in lines[0]
    assert mistake.fix in lines[1]


def run_optimist(
    *arguments: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``optimist`` command, run to its end in a process of its own."""
    return subprocess.run(
        optimist_command(*arguments),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("mistake", IN_A_PROCESS.values(), ids=IN_A_PROCESS.keys())
def test_mistake_of_the_optimist_command(mistake: Mistake, tmp_path: Path) -> None:
    """The optimist command stops with status 2 and says what is wrong and what to do."""
    (tmp_path / "serve.log").write_text("not a database")
    mistake = mistake.filled(tmp_path)
    done = run_optimist(*mistake.argv, env=mistake.env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_said(done.stderr, mistake)


@pytest.mark.parametrize("mistake", IN_PROCESS.values(), ids=IN_PROCESS.keys())
def test_mistake_of_main(
    mistake: Mistake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """main() stops with status 2 and says what is wrong and what to do."""
    (tmp_path / "serve.log").write_text("not a database, but a file of text " * 100)
    mistake = mistake.filled(tmp_path)
    for name, value in mistake.env.items():
        monkeypatch.setenv(name, value)
    assert_said(stopped(mistake.argv, capsys), mistake)


@pytest.mark.parametrize(("module", "extra"), [("asyncpg", "postgres"), ("aiosqlite", "service")])
def test_missing_driver_names_the_extra_that_installs_it(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database whose driver is not installed: which driver, and the pip command."""
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    url = "postgresql://root@127.0.0.1/x" if module == "asyncpg" else "sqlite:///x.db"
    said = stopped(["migrate", "--database-url", url], capsys)
    assert_said(said, Mistake("", f"{module} is not installed", f"optimist-http[{extra}]"))


def test_port_in_use_is_said_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """A port another program listens on: which, and to choose another."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        said = stopped(["serve", "--port", str(port)], capsys)
    assert_said(said, Mistake("", f"127.0.0.1:{port} is in use by another", "--port another"))


def test_a_sqlite_database_locked_by_another_process_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Migrating while another process holds the write lock: who holds what, and the fix."""
    database = tmp_path / "locked.db"
    url = f"sqlite:///{database}"
    with write_lock(database):
        said = stopped(["migrate", "--database-url", url, "--busy-timeout", "0.1"], capsys)
    assert_said(said, Mistake("", "another process holds the write lock", "--busy-timeout"))


@pytest.mark.postgres
def test_missing_postgres_database_says_how_to_create_it(postgres_server_url: str) -> None:
    """A database that is not on the server: its name and createdb, from the command."""
    name = f"optimist_missing_{free_port()}"
    url = make_url(postgres_server_url).set(database=name, password=SECRET)
    done = run_optimist("migrate", "--database-url", url.render_as_string(hide_password=False))
    assert done.returncode == 2, done.stderr
    assert_said(
        done.stderr,
        Mistake("", f"the PostgreSQL database {name} does not exist", f"createdb {name}"),
    )


@pytest.mark.postgres
def test_unreachable_replica_is_said_before_serving(postgres_server_url: str) -> None:
    """A read database that does not answer: where, and to correct --read-database-url."""
    closed = free_port()
    replica = f"postgresql://root:{SECRET}@127.0.0.1:{closed}/optimist"
    for url in scratch_database(postgres_server_url, "optimist_cli"):
        done = run_optimist(
            "serve", "--port", str(free_port()), "--database-url", url,
            "--read-database-url", replica,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert_said(
            done.stderr,
            Mistake(
                "",
                f"cannot connect to PostgreSQL at 127.0.0.1:{closed}: connection refused",
                "correct the host and port in --read-database-url",
            ),
        )


@pytest.mark.postgres
def test_unknown_postgres_user_is_refused_login(
    postgres_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user the server does not know: PostgreSQL's refusal, and to correct the URL."""
    url = make_url(postgres_server_url).set(username=f"nobody_{free_port()}", password=SECRET)
    said = stopped(["migrate", "--database-url", url.render_as_string(hide_password=False)], capsys)
    assert_said(said, Mistake("", "PostgreSQL refused the", "--database-url"))


@pytest.fixture
def scratch_postgres(postgres_server_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of the test's own."""
    yield from scratch_database(postgres_server_url, "optimist_cli")


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_without_a_driver_use_asyncpg(
    scheme: str, scratch_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``postgres://`` and ``postgresql://`` migrate the database through asyncpg."""
    url = make_url(scratch_postgres).set(drivername=scheme).render_as_string(hide_password=False)
    main(["migrate", "--database-url", url, "--no-demo-data"])
    assert "database created (postgresql+asyncpg://" in capsys.readouterr().err
    main(["migrate", "--database-url", scratch_postgres])
    assert "database up to date" in capsys.readouterr().err


def test_migrate_creates_the_database_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    """``optimist migrate --database-url`` applies the schema (through aiosqlite) and returns."""
    path = Path.cwd() / "ops.db"
    main(["migrate", "--database-url", f"sqlite:///{path}", "--no-demo-data"])
    assert f"database created (sqlite+aiosqlite:///{path})" in capsys.readouterr().err
    tables = inspect(create_engine(f"sqlite:///{path}")).get_table_names()
    assert {"admin_users", "projects", "test_sessions", "alembic_version"} <= set(tables)
    main(["migrate", "--database-url", f"sqlite+aiosqlite:///{path}"])
    assert "up to date" in capsys.readouterr().err


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Settings, dict[str, object]]]:
    """What ``optimist serve`` would serve: uvicorn is not started, its arguments kept."""
    calls: list[tuple[Settings, dict[str, object]]] = []
    monkeypatch.setattr(server, "serve", lambda settings, **where: calls.append((settings, where)))
    return calls


def test_options_reach_the_server_and_the_workers(
    served: list[tuple[Settings, dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host, port and workers go to uvicorn; the origins, over the variable, to the workers."""
    monkeypatch.setenv("OPTIMIST_CORS_ORIGINS", "https://from-the-variable.example")
    port = free_port()
    origins = ["--cors-origin", "https://App.example", "--cors-origin", "http://localhost:5173"]
    main(["serve", "--port", str(port), "--workers", "3", "--host", "127.0.0.1", *origins])
    [(settings, where)] = served
    assert where == {"host": "127.0.0.1", "port": port, "workers": 3}
    assert settings.cors_origins == ("https://app.example", "http://localhost:5173")
    assert Settings.from_environment() == settings


async def sqlite_busy_timeout(settings: Settings) -> object:
    """PRAGMA busy_timeout (milliseconds) on a connection of a worker started with ``settings``."""
    runtime = await start(settings)
    try:
        async with runtime.engine.connect() as connection:
            return await connection.scalar(text("PRAGMA busy_timeout"))
    finally:
        await runtime.engine.dispose()


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_busy_timeout_reaches_the_sqlite_connections(
    command: str,
    served: list[tuple[Settings, dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--busy-timeout, written into the variables, is the busy timeout of SQLite connections."""
    monkeypatch.setenv("OPTIMIST_PORT", str(free_port()))
    main([command, "--busy-timeout", "2.5"])
    assert asyncio.run(sqlite_busy_timeout(Settings.from_environment())) == 2500


def test_server_variables_are_read_when_no_option_is_given(
    served: list[tuple[Settings, dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPTIMIST_HOST, OPTIMIST_PORT and OPTIMIST_WORKERS stand in for the options."""
    port = free_port()
    monkeypatch.setenv("OPTIMIST_HOST", "127.0.0.1")
    monkeypatch.setenv("OPTIMIST_PORT", str(port))
    monkeypatch.setenv("OPTIMIST_WORKERS", "2")
    main(["serve"])
    [(_, where)] = served
    assert where == {"host": "127.0.0.1", "port": port, "workers": 2}


def test_version_is_the_package_version() -> None:
    """``optimist --version`` prints ``optimist`` and optimist.__version__."""
    done = run_optimist("--version")
    assert (done.returncode, done.stdout) == (0, f"optimist {optimist.__version__}\n")


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["migrate"]], ids=["optimist", "serve", "migrate"]
)
def test_help_whatever_the_variables(command: list[str]) -> None:
    """Variables the service would refuse do not break --help."""
    bad = {"OPTIMIST_PORT": "abc", "OPTIMIST_WORKERS": "x", "OPTIMIST_HEAD_TIMEOUT": "soon"}
    done = run_optimist(*command, "--help", env=bad)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {' '.join(['optimist', *command])} ")


def test_help_imports_no_framework() -> None:
    """``optimist --help`` imports neither the web framework, SQLAlchemy nor uvicorn."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "optimist.service.cli", "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert done.stdout.startswith("usage: optimist ")
    assert "optimist.service.settings" in imported
    assert not {"fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic"} & imported


WARNING = "optimist: warning: serving on"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"], ids=["ipv4", "ipv6"])
def test_trusting_every_peer_off_loopback_is_said_in_one_warning(
    host: str, served: list[tuple[Settings, dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """--host on every interface with --trusted-peers '*' serves, after one warning line."""
    main(["serve", "--host", host, "--port", str(free_port()), "--trusted-peers", "*"])
    [(settings, _)] = served
    assert settings.trusted_peers.everyone
    warnings = [line for line in capsys.readouterr().err.splitlines() if WARNING in line]
    assert warnings == [
        f"{WARNING} {host} and believing X-Tenant-Id and X-User-Role from every peer: "
        "only the gateway may reach this port"
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ["--host", "127.0.0.1", "--trusted-peers", "*"],
        ["--host", "0.0.0.0"],
        ["--host", "0.0.0.0", "--trusted-peers", "10.0.0.0/8"],
    ],
    ids=["star-on-loopback", "default-peers", "listed-peers"],
)
def test_no_warning_otherwise(
    arguments: list[str],
    served: list[tuple[Settings, dict[str, object]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only every peer trusted on a reachable address is warned about."""
    main(["serve", "--port", str(free_port()), *arguments])
    assert served
    assert WARNING not in capsys.readouterr().err


def test_no_warning_for_every_peer_in_token_mode(
    tmp_path: Path,
    served: list[tuple[Settings, dict[str, object]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In token mode the identity fields are believed from no peer: no warning is due."""
    keys = tmp_path / "keys.pem"
    keys.write_bytes(Issuer().public_pem())
    token = ["--auth", "token", "--jwt-keys", str(keys), "--jwt-audience", "a", "--jwt-issuer", "i"]
    main(["serve", "--port", str(free_port()), "--host", "0.0.0.0", "--trusted-peers", "*", *token])
    assert served
    assert WARNING not in capsys.readouterr().err


def test_identity_options_reach_the_workers(
    tmp_path: Path, served: list[tuple[Settings, dict[str, object]]]
) -> None:
    """Token mode's options and --require-identity are what every worker builds with."""
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [Issuer().jwk()]}))
    main([
        "serve", "--port", str(free_port()), "--auth", "token", "--jwt-keys", str(keys),
        "--jwt-audience", "api", "--jwt-issuer", "https://idp.example", "--jwt-leeway", "7",
        "--tenant-claim", "org", "--role-claim", "perm", "--require-identity",
    ])  # fmt: skip
    [(settings, _)] = served
    chosen = (settings.auth, settings.jwt_keys, settings.jwt_audience, settings.jwt_issuer)
    assert chosen == ("token", keys, "api", "https://idp.example")
    assert settings.jwt_leeway.total_seconds() == 7
    assert (settings.tenant_claim, settings.role_claim) == ("org", "perm")
    assert settings.require_identity
    assert Settings.from_environment() == settings


def test_a_private_key_for_jwt_keys_is_a_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A private key given to verify with: refused at start, saying to give the public key."""
    keys = tmp_path / "private.pem"
    keys.write_bytes(Issuer().private_pem())
    token = ["--auth", "token", "--jwt-keys", str(keys), "--jwt-audience", "a", "--jwt-issuer", "i"]
    said = stopped(["serve", *token], capsys)
    assert_said(
        said, Mistake("", f"--jwt-keys: {keys} holds a private key", "give --jwt-keys a PEM")
    )


def test_trusted_peers_reach_the_workers(
    served: list[tuple[Settings, dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--trusted-peers, over the variable, is what every worker builds its settings with."""
    monkeypatch.setenv("OPTIMIST_TRUSTED_PEERS", "192.0.2.1")
    main(["serve", "--port", str(free_port()), "--trusted-peers", "10.0.0.5, 10.1.0.0/16"])
    [(settings, _)] = served
    assert str(settings.trusted_peers) == "10.0.0.5/32,10.1.0.0/16"
    assert Settings.from_environment() == settings

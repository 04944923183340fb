"""Secrets stay secret: no database password in any output, cursors a client cannot read."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import httpx
import pytest
from sqlalchemy.engine import make_url

from optimist.cursor import Cursor
from optimist.service.runtime import prepare
from optimist.service.settings import Settings
from tests.support.admin import identity, problem, writer
from tests.support.databases import execute
from tests.support.servers import free_port, optimist_command, optimist_serving
from tests.support.service import Service, settings_for

pytestmark = pytest.mark.anyio

#: A tenant id no random byte string contains by chance.
TENANT: Final = "tenant-5e1b0c7a9d"
#: The member names of a signed cursor's JSON: position, watermark, snapshot.
SIGNED_MEMBERS: Final = (b'"p"', b'"w"', b'"s"')
#: Seconds a command may take: generous, a busy machine is slow.
COMMAND_TIMEOUT: Final = 120
#: The environment of the commands: nothing of the test runner's own.
COMMAND_ENV: Final = {
    "OPTIMIST_DATABASE_URL": "",
    "OPTIMIST_SECRET_KEY": "test-secret",
    "OPTIMIST_NODE_ID": "test-node",
    "OPTIMIST_DEMO_DATA": "0",
}


def password() -> str:
    """A password that no other output contains by chance."""
    return f"pw-{uuid.uuid4().hex}"


def run(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``optimist`` with ``arguments``, its stdout and stderr as one text."""
    return subprocess.run(
        optimist_command(*arguments),
        cwd=cwd,
        env={**os.environ, **COMMAND_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


@dataclass(frozen=True)
class Login:
    """A PostgreSQL database owned by a role that logs in with a password."""

    url: str
    password: str


@pytest.fixture
def login(postgres_server_url: str) -> Iterator[Login]:
    """A scratch database and a role of its own with a password, dropped at the end."""
    name = f"optimist_secret_{uuid.uuid4().hex[:12]}"
    secret = password()
    asyncio.run(execute(postgres_server_url, f"CREATE ROLE {name} LOGIN PASSWORD '{secret}'"))
    try:
        asyncio.run(execute(postgres_server_url, f'CREATE DATABASE "{name}" OWNER {name}'))
        try:
            url = make_url(postgres_server_url).set(
                drivername="postgresql", username=name, password=secret, database=name
            )
            yield Login(url.render_as_string(hide_password=False), secret)
        finally:
            asyncio.run(execute(postgres_server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        asyncio.run(execute(postgres_server_url, f"DROP ROLE {name}"))


# -- the database URL ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_migrate_prints_no_password(login: Login, tmp_path: Path) -> None:
    """optimist migrate names the database it migrated with the password hidden."""
    done = run("migrate", "--database-url", login.url, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "***@" in done.stdout
    assert login.password not in done.stdout


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_logs_no_password(login: Login, tmp_path: Path) -> None:
    """optimist serve, from start to stop and through requests, never logs the password."""
    with optimist_serving(tmp_path, "--database-url", login.url) as server:
        for path in ("/readyz", "/projects", "/projects/proj_missing", "/admin/users"):
            httpx.get(f"{server.url}{path}", timeout=COMMAND_TIMEOUT)
    output = server.output()
    assert "Application startup complete" in output
    assert login.password not in output


@pytest.mark.slow
@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_unreachable_database_error_shows_no_password(command: str, tmp_path: Path) -> None:
    """A database that does not answer is an error that names it without its password."""
    secret = password()
    url = f"postgresql://optimist:{secret}@127.0.0.1:{free_port()}/optimist"
    server = ("--port", str(free_port())) if command == "serve" else ()
    done = run(command, *server, "--database-url", url, cwd=tmp_path)
    assert done.returncode != 0, done.stdout
    assert secret not in done.stdout


def test_settings_repr_shows_no_secret() -> None:
    """Settings, printed, hide the database password and the secret key."""
    secret, key = password(), password()
    shown = repr(Settings(f"postgresql://u:{secret}@db/x", "node", secret_key=key))
    assert secret not in shown
    assert key not in shown


async def test_new_database_file_is_owner_only(tmp_path: Path) -> None:
    """The SQLite file the service creates, where it keeps its secret, is 0600."""
    path = tmp_path / "optimist.db"
    await prepare(settings_for(f"sqlite+aiosqlite:///{path}", secret_key=None))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- sealed cursors --------------------------------------------------------------------


async def first_page(service: Service, path: str = "/admin/users") -> tuple[str, list[str]]:
    """The next_cursor of a one-item first page of TENANT's ``path``, and its item's id."""
    response = await service.client.get(f"{path}?limit=1", headers=identity(tenant=TENANT))
    assert response.status_code == 200, response.text
    page = response.json()
    cursor: str = page["next_cursor"]
    return cursor, [item["id"] for item in page["data"]]


@pytest.fixture
async def users(service: Service) -> Service:
    """The service with two users in TENANT: a first page of one has a next_cursor."""
    for name in ("first", "second"):
        response = await service.client.post(
            "/admin/users",
            json={"email": f"{name}@example.com", "name": name, "role": "viewer"},
            headers=await writer(service.client, tenant=TENANT),
        )
        assert response.status_code == 201, response.text
    return service


def decoded(token: str) -> bytes:
    """The bytes of a base64url token, as anyone holding it can decode it."""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except binascii.Error as error:
        raise AssertionError(f"not base64url: {token}") from error


async def test_cursor_reveals_nothing(users: Service) -> None:
    """A cursor, decoded, holds no tenant, no position and no member of a readable cursor."""
    cursor, ids = await first_page(users)
    raw = decoded(cursor)
    for secret in (TENANT.encode(), ids[0].encode(), *SIGNED_MEMBERS):
        assert secret not in raw, secret
        assert secret.decode() not in cursor
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        json.loads(raw)


async def test_cursors_of_one_page_differ(users: Service) -> None:
    """Two cursors for the same page differ: a cursor is no function of what it holds."""
    first, _ = await first_page(users)
    second, _ = await first_page(users)
    assert first != second


async def test_tampered_cursor_is_400(users: Service) -> None:
    """A cursor with one character changed is refused: 400 naming the cursor."""
    cursor, _ = await first_page(users)
    middle = len(cursor) // 2
    changed = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    response = await users.client.get(
        "/admin/users", params={"cursor": changed}, headers=identity(tenant=TENANT)
    )
    assert problem(response, 400)["invalid_params"][0]["name"] == "cursor"


@pytest.mark.parametrize(
    ("path", "tenant"),
    [("/admin/users", "1"), ("/admin/roles", TENANT), ("/admin/feature-flags", TENANT)],
    ids=["another-tenant", "another-collection", "another-collection-flags"],
)
async def test_foreign_cursor_is_400(users: Service, path: str, tenant: str) -> None:
    """A cursor used by another tenant or on another list is refused: 400."""
    cursor, _ = await first_page(users)
    response = await users.client.get(
        path, params={"cursor": cursor}, headers=identity(tenant=tenant)
    )
    assert problem(response, 400)["invalid_params"][0]["name"] == "cursor"


async def test_cursor_of_another_filter_is_400(users: Service) -> None:
    """A cursor sealed for the same list with another filter is refused: 400."""
    other = users.runtime.cursors.encode(
        Cursor((1,), 1, datetime.now(UTC)), query=f"/admin/users?tenant={TENANT}&role=viewer"
    )
    response = await users.client.get(
        "/admin/users", params={"cursor": other}, headers=identity(tenant=TENANT)
    )
    assert problem(response, 400)["invalid_params"][0]["name"] == "cursor"


async def test_expired_sealed_cursor_is_410(service: Service) -> None:
    """A sealed cursor whose snapshot is older than the cursor max age is 410."""
    runtime = service.runtime
    old = datetime.now(UTC) - runtime.settings.cursor_max_age - timedelta(minutes=1)
    token = runtime.cursors.encode(Cursor(("x",), 1, old), query="GET /projects")
    response = await service.client.get("/projects", params={"cursor": token})
    problem(response, 410)


async def test_csrf_token_is_no_store(service: Service) -> None:
    """A CSRF token is kept by no cache (RFC 9111 §5.2.2.5)."""
    response = await service.client.get("/admin/csrf-token", headers=identity())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"

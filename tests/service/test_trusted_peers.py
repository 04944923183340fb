"""Gateway mode: the admin API believes identity fields only from trusted peers.

In process, through httpx's ASGI transport with the peer a test chooses; and once over
real HTTP, ``optimist serve`` on a link's address reached from a network namespace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Final

import httpx
import pytest

from optimist.peers import TrustedPeers
from optimist.service.app import create_app
from optimist.service.settings import Settings
from optimist.starlette import GATEWAY_CHALLENGE
from tests.support.admin import USER, identity
from tests.support.hosts import SUBNET, network_hosts
from tests.support.servers import SERVE_ENV, free_port, optimist_command, wait_until
from tests.support.service import problem_of, settings_for

pytestmark = pytest.mark.anyio

#: An address of TEST-NET-3 (RFC 5737): a peer no deployment trusts by default.
OUTSIDER: Final = "203.0.113.7"

#: Every operation of the admin API, as its OpenAPI document lists them.
ADMIN_ROUTES: Final = [
    (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
    for path, operations in create_app(settings_for("sqlite://")).openapi()["paths"].items()
    if path.startswith("/admin")
    for method in operations
]


@pytest.fixture
def settings(service_template: Path, tmp_path: Path) -> Settings:
    """A deployment on a copy of the migrated SQLite database with the demo data."""
    path = tmp_path / "service.db"
    shutil.copy(service_template, path)
    return settings_for(f"sqlite+aiosqlite:///{path}")


@asynccontextmanager
async def reached_from(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app for ``settings`` whose requests come from ``peer``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def refused(response: httpx.Response) -> None:
    """``response`` is the 401 of an untrusted peer: problem+json with the challenge."""
    body = problem_of(response, 401)
    assert response.headers["www-authenticate"] == GATEWAY_CHALLENGE
    assert "gateway" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES]
)
async def test_every_admin_route_refuses_an_untrusted_peer(
    settings: Settings, method: str, path: str
) -> None:
    """From a peer outside the trusted ones, every admin operation is a 401 with a challenge."""
    async with reached_from(settings, OUTSIDER) as client:
        response = await client.request(method, path, headers=identity(), content=b"{}")
    refused(response)


async def test_untrusted_peer_without_identity_is_refused_too(settings: Settings) -> None:
    """An admin request needs identity: an untrusted peer is refused even without the fields."""
    async with reached_from(settings, OUTSIDER) as client:
        refused(await client.get(USER))


async def test_loopback_is_trusted_by_default(settings: Settings) -> None:
    """With the default, the gateway on this machine (an IPv6 loopback peer too) is believed."""
    async with reached_from(settings, "::1") as client:
        response = await client.get(USER, headers=identity())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("trusted", ["203.0.113.7", "203.0.113.0/24", "*"])
async def test_peers_trusted_by_the_setting_are_believed(settings: Settings, trusted: str) -> None:
    """A peer the setting names, by address, by network or as every peer, is believed."""
    chosen = replace(settings, trusted_peers=TrustedPeers.parse(trusted))
    async with reached_from(chosen, OUTSIDER) as client:
        response = await client.get(USER, headers=identity())
    assert response.status_code == 200, response.text


async def test_trusting_others_drops_loopback(settings: Settings) -> None:
    """The setting replaces the default: loopback is trusted only if it is listed."""
    chosen = replace(settings, trusted_peers=TrustedPeers.parse("10.0.0.5"))
    async with reached_from(chosen, "127.0.0.1") as client:
        refused(await client.get(USER, headers=identity()))


async def test_identity_fields_are_refused_where_they_are_not_read(settings: Settings) -> None:
    """A forged identity sent to another API is refused, not passed over in silence."""
    async with reached_from(settings, OUTSIDER) as client:
        refused(await client.get("/projects", headers=identity()))


async def test_other_apis_serve_an_untrusted_peer_without_identity(settings: Settings) -> None:
    """The projects API needs no identity: an untrusted peer sending none is served."""
    async with reached_from(settings, OUTSIDER) as client:
        response = await client.get("/projects")
    assert response.status_code == 200, response.text


# -- over real HTTP --------------------------------------------------------------------


def _from_namespace(command: list[str], url: str, forwarded: str) -> tuple[int, str]:
    """Status and WWW-Authenticate of GET ``url`` with the identity (and a forged
    X-Forwarded-For naming ``forwarded``), sent by ``command``'s process."""
    script = (
        "import sys, httpx\n"
        "r = httpx.get(sys.argv[1], headers={'X-Tenant-Id': '1', 'X-User-Role': 'admin', "
        "'X-Forwarded-For': sys.argv[2]}, timeout=30)\n"
        "print(r.status_code, r.headers.get('www-authenticate', ''))\n"
    )
    done = subprocess.run(
        [*command, sys.executable, "-c", script, url, forwarded],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, _, challenge = done.stdout.strip().partition(" ")
    return int(status), challenge


@pytest.mark.parametrize(
    ("trusted", "status"), [(False, 401), (True, 200)], ids=["default", "trusted-network"]
)
def test_served_on_a_network_address(tmp_path: Path, trusted: bool, status: int) -> None:
    """``optimist serve`` on a non-loopback address refuses a peer of that network, even
    one whose X-Forwarded-For names loopback (FORWARDED_ALLOW_IPS=* notwithstanding),
    until --trusted-peers names the network."""
    with network_hosts(1) as [host]:
        port = free_port()
        base = f"http://{host.gateway}:{port}"
        network = ("--trusted-peers", f"{SUBNET}.{host.number}.0/24") if trusted else ()
        command = optimist_command("serve", "--host", host.gateway, "--port", str(port), *network)
        with (tmp_path / "serve.log").open("wb") as log:
            process = subprocess.Popen(
                command,
                # uvicorn would take the peer from any X-Forwarded-For with this; the
                # service must not.
                env={**os.environ, **SERVE_ENV, "FORWARDED_ALLOW_IPS": "*"},
                cwd=tmp_path,
                stdout=log,
                stderr=log,
            )
        try:
            wait_until(lambda: _ready(base, process), what=f"{base} ready")
            answered, challenge = _from_namespace(
                host.command(), f"{base}/admin/users", "127.0.0.1"
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert answered == status
    assert challenge == (GATEWAY_CHALLENGE if status == 401 else "")


def _ready(base: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"optimist serve exited with status {process.returncode}")
    try:
        return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False

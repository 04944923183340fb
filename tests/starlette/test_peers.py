"""The peer guard: identity fields from an untrusted peer are a 401 with a challenge."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.peers import TrustedPeers
from optimist.starlette import GATEWAY_CHALLENGE, install_problem_handlers, peer_guard

pytestmark = pytest.mark.anyio

FIELDS = ("X-Tenant-Id", "X-User-Role")


def app(*, needed: bool) -> Starlette:
    """An endpoint behind the guard for the loopback default."""
    guard = peer_guard(TrustedPeers.LOOPBACK, FIELDS, needed=needed)

    async def endpoint(request: Request) -> Response:
        await guard(request)
        return JSONResponse({"tenant": request.headers.get("X-Tenant-Id")})

    application = Starlette(routes=[Route("/", endpoint)])
    install_problem_handlers(application)
    return application


def client(application: Starlette, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=(peer, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_untrusted_peer_with_identity_is_401_with_a_challenge() -> None:
    """Identity fields from an untrusted peer: 401 problem+json with WWW-Authenticate."""
    async with client(app(needed=False), "203.0.113.7") as http:
        response = await http.get("/", headers={"X-Tenant-Id": "1"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == GATEWAY_CHALLENGE
    assert "gateway" in response.json()["detail"]


async def test_untrusted_peer_without_identity_passes_where_none_is_needed() -> None:
    """A route that reads no identity lets an untrusted peer through when it sends none."""
    async with client(app(needed=False), "203.0.113.7") as http:
        response = await http.get("/")
    assert response.status_code == 200


async def test_untrusted_peer_is_401_where_identity_is_needed() -> None:
    """A route that needs identity refuses an untrusted peer even when it sends none."""
    async with client(app(needed=True), "203.0.113.7") as http:
        response = await http.get("/")
    assert response.status_code == 401


async def test_trusted_peer_is_believed() -> None:
    """The identity fields of a trusted peer reach the endpoint."""
    async with client(app(needed=True), "127.0.0.1") as http:
        response = await http.get("/", headers={"X-Tenant-Id": "1"})
    assert response.json() == {"tenant": "1"}

"""``optimist serve`` as an operator runs it: real processes, two workers, real HTTP.

The seeds' requests replayed over the wire; a CSRF token or a cursor issued by one
worker accepted by the other; an access log line per request; a clean exit on SIGTERM.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.admin import MODIFIED_DETAIL, SEED_400, WEAK_ETAG, identity
from tests.support.servers import Server, free_port, optimist_command, serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """``optimist serve --workers 2``: on SQLite as the README starts it, or on PostgreSQL."""
    port = free_port()
    arguments = ["serve", "--port", str(port), "--workers", "2"]
    if make_url(database_url).get_backend_name() != "sqlite":
        arguments += ["--database-url", database_url]
    env = {
        "OPTIMIST_DATABASE_URL": "",
        "OPTIMIST_SECRET_KEY": "",
        "OPTIMIST_NODE_ID": "",
        "OPTIMIST_DEMO_DATA": "1",
    }
    with serving(
        optimist_command(*arguments),
        port=port,
        log=tmp_path / "serve.log",
        ready="/healthz",
        env=env,
        cwd=tmp_path,
    ) as running:
        yield running
    assert running.process.returncode == 0, running.output()


def one_connection(server: Server) -> httpx.AsyncClient:
    """A client that keeps to one connection, hence to one worker."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30)


async def worker_of(client: httpx.AsyncClient) -> int:
    pid: int = (await client.get("/healthz")).json()["worker"]
    return pid


async def test_seed_002_requests_over_http(server: Server) -> None:
    """The admin seed's GET, PATCH with If-Match, strict DELETE and stale PATCH."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        user = await client.get("/admin/users/123", headers=identity())
        assert user.status_code == 200
        assert WEAK_ETAG.fullmatch(user.headers["ETag"])
        assert user.headers["Content-Type"] == "application/json"
        body = user.json()
        assert (body["id"], body["email"], body["role"]) == ("123", "user@example.com", "editor")
        token = (await client.get("/admin/csrf-token", headers=identity())).json()["csrf_token"]
        writer = {**identity(), "X-CSRF-Token": token}
        patched = await client.patch(
            "/admin/users/123",
            json={"role": "admin"},
            headers={**writer, "If-Match": user.headers["ETag"]},
        )
        assert patched.status_code == 200
        assert patched.headers["ETag"] != user.headers["ETag"]
        strict = await client.delete("/admin/users/123", headers=writer)
        assert (strict.status_code, strict.json()) == (400, SEED_400)
        assert strict.headers["Content-Type"] == "application/problem+json"
        stale = await client.patch(
            "/admin/users/123",
            json={"role": "admin"},
            headers={**writer, "If-Match": 'W/"outdated-etag"'},
        )
        assert stale.status_code == 412
        assert stale.json()["detail"] == MODIFIED_DETAIL
        assert stale.headers["ETag"] == patched.headers["ETag"]


async def test_seed_003_requests_over_http(server: Server) -> None:
    """The projects seed: fetch, update with the body's bare etag, stale update → 412."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        fetched = await client.get("/projects/proj_abc123")
        project = fetched.json()["result"]
        assert (project["name"], project["status"]) == ("Main Street Sign", "draft")
        assert fetched.headers["ETag"] == f'"{project["etag"]}"'
        updated = await client.put(
            "/projects/proj_abc123",
            json={"name": "Updated Main Street Sign"},
            headers={"If-Match": project["etag"]},
        )
        new = updated.json()["result"]["etag"]
        assert (updated.status_code, updated.json()["result"]["name"]) == (
            200,
            "Updated Main Street Sign",
        )
        stale = await client.put(
            "/projects/proj_abc123",
            json={"name": "Concurrent"},
            headers={"If-Match": project["etag"]},
        )
        assert stale.status_code == 412
        assert stale.headers["ETag"] == f'"{new}"'
        assert stale.json()["detail"] == f"ETag mismatch: expected {new}, got {project['etag']}"
        invalid = await client.put("/projects/proj_abc123", json={"status": "accepted"})
        assert invalid.status_code == 422
        assert invalid.json()["detail"] == "Invalid transition: draft → accepted"


async def test_seed_000_pagination_over_http(server: Server) -> None:
    """Seed 000's test over the wire: 50 concurrent creates, pages of 10, no duplicates."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await asyncio.gather(
            *(
                client.post("/v1/tests/sessions", json={"building_id": str(uuid.uuid4())})
                for _ in range(50)
            )
        )
        assert {response.status_code for response in created} == {201}
        ids: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/tests/sessions", params=params)).json()
            ids.extend(item["id"] for item in page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert len(ids) == len(set(ids)) == 50


async def test_tokens_from_one_worker_are_accepted_by_the_other(server: Server) -> None:
    """A CSRF token and a cursor issued by one worker work in the other worker."""
    crossed = 0
    for _ in range(60):
        async with one_connection(server) as issuer, one_connection(server) as user:
            issuing, using = await worker_of(issuer), await worker_of(user)
            token = (await issuer.get("/admin/csrf-token", headers=identity())).json()
            first = await issuer.get("/admin/users", params={"limit": 1}, headers=identity())
            cursor = first.json()["next_cursor"]
            created = await user.post(
                "/admin/roles",
                json={"name": f"role-{uuid.uuid4().hex}", "permissions": []},
                headers={**identity(), "X-CSRF-Token": token["csrf_token"]},
            )
            assert created.status_code == 201, created.text
            if cursor is not None:
                page = await user.get(
                    "/admin/users", params={"limit": 1, "cursor": cursor}, headers=identity()
                )
                assert page.status_code == 200, page.text
        crossed += issuing != using
        if crossed >= 3:
            return
    pytest.fail(f"only {crossed} of 60 token hand-overs crossed workers")


async def test_access_log_has_a_line_per_request(server: Server) -> None:
    """Every request leaves one access log line."""
    marker = f"/healthz?probe={uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):
            assert (await client.get(marker)).status_code == 200
    await asyncio.sleep(0.5)
    assert server.output().count(f'"GET {marker} HTTP/1.1" 200') == 3

"""Idempotency-Key on the service's writes, on each backend: a resend with the same key
gets the first answer byte for byte, marked as a replay, and the write is applied once;
a key reused for another request is a 422; a write without a key is as it always was;
the document offers the key on every unsafe operation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import select, update

from optimist.service import schema
from optimist.service.app import create_app
from optimist.sqlalchemy import create_engine
from tests.support.admin import identity, writer
from tests.support.service import Service, problem_of, running, settings_for

pytestmark = pytest.mark.anyio

REPLAYED: Final = "Idempotent-Replayed"
SESSIONS: Final = "/v1/tests/sessions"
UNSAFE: Final = frozenset({"post", "put", "patch", "delete"})


def new_key() -> str:
    """A fresh Idempotency-Key, as an sf-string."""
    return f'"{uuid.uuid4()}"'


def assert_replay(first: httpx.Response, again: httpx.Response) -> None:
    """``again`` is ``first`` sent again: status, body bytes and validators, marked."""
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in ("content-type", "etag", "last-modified", "location"):
        assert again.headers.get(name) == first.headers.get(name), name
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"


async def new_project(service: Service) -> str:
    """A fresh draft project's path."""
    response = await service.client.post("/projects", json={"name": "Keys"})
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


async def new_session(service: Service) -> str:
    """A fresh session's path."""
    response = await service.client.post(SESSIONS, json={"building_id": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


# -- projects: PUT ------------------------------------------------------------------------


async def test_project_put_resent_is_replayed_and_applied_once(service: Service) -> None:
    """A resent change gets its 200 again; written once (updated_at did not move)."""
    path = await new_project(service)
    headers = {"Idempotency-Key": new_key()}
    first = await service.client.put(path, json={"status": "estimating"}, headers=headers)
    assert first.status_code == 200, first.text
    again = await service.client.put(path, json={"status": "estimating"}, headers=headers)
    assert_replay(first, again)
    now = await service.client.get(path)
    assert now.headers["etag"] == first.headers["etag"]
    assert now.json()["result"]["updated_at"] == first.json()["result"]["updated_at"]


async def test_project_put_without_a_key_is_applied_again(service: Service) -> None:
    """Without a key nothing is replayed: the second change is written again."""
    path = await new_project(service)
    first = await service.client.put(path, json={"status": "estimating"})
    again = await service.client.put(path, json={"status": "estimating"})
    assert first.status_code == again.status_code == 200, again.text
    assert REPLAYED not in again.headers
    written = [response.json()["result"]["updated_at"] for response in (first, again)]
    assert written[1] > written[0]


async def test_project_key_reused_for_another_body_is_422(service: Service) -> None:
    """The same key with another body is refused, and nothing is written."""
    path = await new_project(service)
    headers = {"Idempotency-Key": new_key()}
    first = await service.client.put(path, json={"name": "One"}, headers=headers)
    assert first.status_code == 200, first.text
    reused = await service.client.put(path, json={"name": "Two"}, headers=headers)
    problem_of(reused, 422)
    assert (await service.client.get(path)).json()["result"]["name"] == "One"


async def test_expired_keys_are_purged_when_the_service_starts(
    service_database_url: str,
) -> None:
    """A starting worker deletes the records past their expiry and keeps the others."""
    settings = settings_for(service_database_url)
    keys = [new_key(), new_key()]
    async with running(settings) as service:
        path = await new_project(service)
        for key in keys:
            headers = {"Idempotency-Key": key}
            response = await service.client.put(path, json={"name": key}, headers=headers)
            assert response.status_code == 200, response.text
    records = schema.idempotency
    engine = create_engine(service_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(records)
                .where(records.c.key == keys[0].strip('"'))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        async with running(settings), engine.connect() as connection:
            kept = (await connection.execute(select(records.c.key))).scalars().all()
    finally:
        await engine.dispose()
    assert kept == [keys[1].strip('"')]


# -- test sessions: PATCH -----------------------------------------------------------------


async def test_session_patch_resent_is_replayed_and_applied_once(service: Service) -> None:
    """A resent patch gets its answer again; the clock moved once."""
    path = await new_session(service)
    headers = {"Idempotency-Key": new_key()}
    first = await service.client.patch(path, json={"notes": "checked"}, headers=headers)
    assert first.status_code == 200, first.text
    again = await service.client.patch(path, json={"notes": "checked"}, headers=headers)
    assert_replay(first, again)
    now = await service.client.get(path)
    assert now.headers["etag"] == first.headers["etag"]
    assert now.json()["vector_clock"] == first.json()["vector_clock"]


async def test_session_patch_without_a_key_moves_the_clock_each_time(service: Service) -> None:
    """Without a key each patch is a write of its own."""
    path = await new_session(service)
    first = await service.client.patch(path, json={"notes": "checked"})
    again = await service.client.patch(path, json={"notes": "checked"})
    assert first.status_code == again.status_code == 200
    assert REPLAYED not in again.headers
    assert again.headers["etag"] != first.headers["etag"]


async def test_session_key_reused_for_another_body_is_422(service: Service) -> None:
    """The same key on a patch with other notes is refused."""
    path = await new_session(service)
    headers = {"Idempotency-Key": new_key()}
    first = await service.client.patch(path, json={"notes": "one"}, headers=headers)
    assert first.status_code == 200, first.text
    problem_of(await service.client.patch(path, json={"notes": "two"}, headers=headers), 422)
    assert (await service.client.get(path)).json()["notes"] == "one"


# -- admin: POST /admin/users -------------------------------------------------------------

USER_BODY: Final = {"email": "keyed@example.com", "name": "Keyed", "role": "viewer"}


async def users_named(service: Service, tenant: str = "1") -> list[dict[str, Any]]:
    """The tenant's users with USER_BODY's email."""
    response = await service.client.get(
        "/admin/users", headers=identity(tenant=tenant), params={"limit": 100}
    )
    assert response.status_code == 200, response.text
    return [user for user in response.json()["data"] if user["email"] == USER_BODY["email"]]


async def test_user_create_resent_is_replayed_and_applied_once(service: Service) -> None:
    """A resent create gets its 201 and Location again, and one user exists."""
    headers = {**await writer(service.client), "Idempotency-Key": new_key()}
    first = await service.client.post("/admin/users", json=USER_BODY, headers=headers)
    assert first.status_code == 201, first.text
    again = await service.client.post("/admin/users", json=USER_BODY, headers=headers)
    assert_replay(first, again)
    assert [user["id"] for user in await users_named(service)] == [first.json()["id"]]


async def test_user_create_without_a_key_is_applied_again(service: Service) -> None:
    """Without a key the second create meets the first's email: 409."""
    headers = await writer(service.client)
    first = await service.client.post("/admin/users", json=USER_BODY, headers=headers)
    assert first.status_code == 201, first.text
    problem_of(await service.client.post("/admin/users", json=USER_BODY, headers=headers), 409)


async def test_user_key_reused_for_another_body_is_422(service: Service) -> None:
    """The same key on a create of another user is refused, and creates nothing."""
    key = new_key()
    headers = {**await writer(service.client), "Idempotency-Key": key}
    first = await service.client.post("/admin/users", json=USER_BODY, headers=headers)
    assert first.status_code == 201, first.text
    other = {**USER_BODY, "email": "other@example.com"}
    problem_of(await service.client.post("/admin/users", json=other, headers=headers), 422)


async def test_admin_keys_are_the_tenants_own(service: Service) -> None:
    """One key in two tenants is two requests: each tenant's create is applied."""
    key = new_key()
    for tenant in ("1", "2"):
        headers = {**await writer(service.client, tenant=tenant), "Idempotency-Key": key}
        response = await service.client.post("/admin/users", json=USER_BODY, headers=headers)
        assert response.status_code == 201, response.text
        assert REPLAYED not in response.headers
        assert len(await users_named(service, tenant)) == 1


# -- the document -------------------------------------------------------------------------


def test_document_offers_the_key_on_every_unsafe_operation(tmp_path: Any) -> None:
    """Every POST, PUT, PATCH and DELETE lists Idempotency-Key, optional; no read does."""
    app = create_app(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
    document = app.openapi()
    unsafe = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"]: parameter for parameter in operation.get("parameters", [])}
            if method in UNSAFE:
                unsafe += 1
                assert "Idempotency-Key" in names, (method, path)
                assert names["Idempotency-Key"]["required"] is False
                assert {"400", "409", "422"} <= set(operation["responses"])
            else:
                assert "Idempotency-Key" not in names, (method, path)
    assert unsafe >= 12

"""What users, roles and feature flags share: validators, conditional requests, tenant
isolation, the order of checks, and cursor pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimist.cursor import Cursor
from optimist.httpdate import http_date
from tests.support.admin import MODIFIED_DETAIL, SEED_400, USER, etag_of, identity, problem, writer
from tests.support.service import Service, statements

pytestmark = pytest.mark.anyio

# One resource of each collection in the demo data, and a valid patch of it.
RESOURCES = [
    pytest.param(USER, {"name": "Changed"}, id="user"),
    pytest.param("/admin/roles/1", {"name": "renamed"}, id="role"),
    pytest.param("/admin/feature-flags/new-dashboard", {"rollout_percentage": 75}, id="flag"),
]
LISTS = [
    pytest.param("/admin/users", {"email": "u{}@example.com", "role": "viewer"}, id="users"),
    pytest.param("/admin/roles", {"name": "role-{}"}, id="roles"),
    pytest.param("/admin/feature-flags", {"key": "flag-{}"}, id="flags"),
]


def numbered(template: dict[str, str], number: int) -> dict[str, str]:
    """A create body with ``{}`` in its values replaced by ``number``."""
    return {key: value.format(number) for key, value in template.items()}


# -- validators on reads ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_read_carries_weak_etag_and_last_modified(
    service: Service, path: str, patch: dict[str, Any]
) -> None:
    """A single-resource GET always answers its ETag (weak) and Last-Modified."""
    response = await service.client.get(path, headers=identity("viewer"))
    assert response.headers["etag"].startswith('W/"')
    updated = datetime.fromisoformat(response.json()["updated_at"])
    assert response.headers["last-modified"] == http_date(updated)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_matching_if_none_match_is_304(
    service: Service, method: str, path: str, patch: dict[str, Any]
) -> None:
    """A matching If-None-Match is 304 with the ETag and no body, for GET and HEAD."""
    etag = await etag_of(service.client, path)
    headers = {**identity(), "If-None-Match": etag}
    response = await service.client.request(method, path, headers=headers)
    assert response.status_code == 304
    assert response.headers["etag"] == etag
    assert response.content == b""


@pytest.mark.parametrize(
    "sent", ["*", '"x", {etag}', "{strong}"], ids=["star", "in-list", "strong-form"]
)
async def test_if_none_match_forms_that_match(service: Service, sent: str) -> None:
    """``*``, a list holding the tag, and the tag without W/ all match (RFC 9110 §13.1.2)."""
    etag = await etag_of(service.client)
    headers = {**identity(), "If-None-Match": sent.format(etag=etag, strong=etag[2:])}
    response = await service.client.get(USER, headers=headers)
    assert response.status_code == 304
    assert response.headers["etag"] == etag


async def test_head_answers_get_headers_without_body(service: Service) -> None:
    """HEAD of a resource has GET's status, ETag and length, and no body."""
    get = await service.client.get(USER, headers=identity())
    head = await service.client.head(USER, headers=identity())
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == b""


async def test_stale_if_none_match_reads_normally(service: Service) -> None:
    """An If-None-Match naming another version answers 200 with the representation."""
    headers = {**identity(), "If-None-Match": 'W/"other"'}
    response = await service.client.get(USER, headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == "123"


# -- conditional writes ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_every_write_changes_the_etag(
    service: Service, path: str, patch: dict[str, Any]
) -> None:
    """Ten writes of the same change give ten different ETags, each served afterwards."""
    seen = {await etag_of(service.client, path)}
    for _ in range(10):
        response = await service.client.patch(
            path, headers=await writer(service.client), json=patch
        )
        assert response.status_code == 200, response.text
        assert await etag_of(service.client, path) == response.headers["etag"]
        seen.add(response.headers["etag"])
    assert len(seen) == 11


@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_stale_if_match_is_412_with_current_etag(
    service: Service, path: str, patch: dict[str, Any]
) -> None:
    """A PATCH with an ETag that was current once is a 412 carrying the current one."""
    old = await etag_of(service.client, path)
    first = await service.client.patch(path, headers=await writer(service.client), json=patch)
    headers = await writer(service.client, If_Match=old)
    response = await service.client.patch(path, headers=headers, json=patch)
    body = problem(response, 412)
    current = first.headers["etag"]
    assert response.headers["etag"] == current
    assert body == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": MODIFIED_DETAIL,
        "current_etag": current,
    }
    assert await etag_of(service.client, path) == current


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("{etag}", 200),
        ("{strong}", 200),
        ('"nope", {etag}', 200),
        ("*", 200),
        ('W/"nope"', 412),
        ("{etag}x", 412),
        ("not a tag", 412),
        ("", 412),
    ],
    ids=["same", "opaque-equal", "in-list", "star", "other", "malformed-suffix", "bare", "empty"],
)
async def test_if_match_compares_by_opaque_tag(
    service: Service, if_match: str, status: int
) -> None:
    """If-Match compares weakly in this profile (SPEC §4.1); a malformed one is false."""
    etag = await etag_of(service.client)
    sent = if_match.format(etag=etag, strong=etag[2:])
    headers = await writer(service.client, If_Match=sent)
    response = await service.client.patch(USER, headers=headers, json={"name": "Changed"})
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("offset", "status"),
    [(timedelta(days=1), 200), (timedelta(days=-1), 412)],
    ids=["after", "before"],
)
async def test_if_unmodified_since_guards_a_write(
    service: Service, offset: timedelta, status: int
) -> None:
    """If-Unmodified-Since (without If-Match) is honoured: a date before the last write is 412."""
    headers = await writer(
        service.client, If_Unmodified_Since=http_date(datetime.now(UTC) + offset)
    )
    response = await service.client.patch(USER, headers=headers, json={"name": "Changed"})
    assert response.status_code == status, response.text


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_patch_and_put_without_if_match_write_unconditionally(
    service: Service, method: str
) -> None:
    """PATCH and PUT are lenient (seed 002): without If-Match they just write."""
    body = {"email": "user@example.com", "role": "admin"}
    response = await service.client.request(
        method, USER, headers=await writer(service.client), json=body
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"


async def test_delete_with_current_if_match_is_204_then_gone(service: Service) -> None:
    """DELETE with the current ETag answers 204; the user is gone, a replay is 404."""
    headers = await writer(service.client, If_Match=await etag_of(service.client))
    response = await service.client.delete(USER, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    problem(await service.client.get(USER, headers=identity()), 404)
    problem(await service.client.delete(USER, headers=headers), 404)


async def test_delete_with_stale_if_match_is_412_and_keeps_the_user(service: Service) -> None:
    """DELETE with an outdated ETag is a 412 and deletes nothing."""
    headers = await writer(service.client, If_Match='W/"outdated-etag"')
    response = await service.client.delete(USER, headers=headers)
    assert response.headers["etag"] == problem(response, 412)["current_etag"]
    assert (await service.client.get(USER, headers=identity())).status_code == 200


# -- tenant isolation ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("with_etag", [False, True], ids=["no-etag", "its-etag"])
async def test_another_tenants_user_is_404_for_every_method(
    service: Service, method: str, with_etag: bool
) -> None:
    """Tenant 2 cannot see or touch tenant 1's user, even holding its current ETag."""
    etag = await etag_of(service.client)
    headers = await writer(service.client, tenant="2")
    headers["If-Match"] = etag if with_etag else "*"
    body = {"email": "x@example.com", "role": "admin"} if method in ("PATCH", "PUT") else None
    response = await service.client.request(method, USER, headers=headers, json=body)
    assert response.status_code == 404
    if method != "HEAD":
        problem(response, 404)
    assert await etag_of(service.client) == etag


@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_another_tenants_roles_and_flags_are_404(
    service: Service, path: str, patch: dict[str, Any]
) -> None:
    """Every collection is tenant-scoped: tenant 2 gets 404 to read or patch."""
    problem(await service.client.get(path, headers=identity(tenant="2")), 404)
    headers = await writer(service.client, tenant="2")
    problem(await service.client.patch(path, headers=headers, json=patch), 404)


# -- the order of checks ---------------------------------------------------------------

MISSING = "/admin/users/nobody"
BAD_BODY = b'{"role": "superuser"}'


@pytest.mark.parametrize(
    ("role", "csrf", "method", "path", "body", "if_match", "status"),
    [
        (None, False, "PATCH", MISSING, BAD_BODY, 'W/"old"', 401),
        ("viewer", True, "PATCH", MISSING, BAD_BODY, 'W/"old"', 403),
        ("admin", False, "PATCH", MISSING, BAD_BODY, 'W/"old"', 403),
        ("admin", True, "PATCH", MISSING, BAD_BODY, 'W/"old"', 404),
        ("admin", True, "PATCH", MISSING, b"{", "not a tag", 404),
        ("admin", True, "PATCH", USER, BAD_BODY, 'W/"old"', 422),
        ("admin", True, "PATCH", USER, b"{", 'W/"old"', 422),
        ("admin", True, "PUT", USER, b'{"role": "admin"}', 'W/"old"', 422),
        ("admin", True, "PATCH", USER, b'{"role": "admin"}', 'W/"old"', 412),
        ("admin", True, "DELETE", MISSING, None, None, 404),
        ("admin", True, "DELETE", USER, None, None, 400),
        ("admin", True, "DELETE", USER, None, 'W/"old"', 412),
    ],
    ids=[
        "401-first",
        "role-403",
        "csrf-403",
        "404-before-422-and-412",
        "404-before-unparsable-body",
        "422-before-412",
        "unparsable-422-before-412",
        "put-incomplete-422",
        "412",
        "404-before-400",
        "400",
        "delete-412",
    ],
)
async def test_order_of_checks(
    service: Service,
    role: str | None,
    csrf: bool,
    method: str,
    path: str,
    body: bytes | None,
    if_match: str | None,
    status: int,
) -> None:
    """identity 401 → role/CSRF 403 → 404 → body 422 → missing If-Match 400 → 412."""
    headers = await writer(service.client) if csrf else identity()
    if role is None:
        headers = {}
    elif role != "admin":
        headers = await writer(service.client, role) if csrf else identity(role)
    if if_match is not None:
        headers["If-Match"] = if_match
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = await service.client.request(method, path, headers=headers, content=body)
    problem(response, status)
    if status == 400:
        assert response.json() == SEED_400


# -- lists -----------------------------------------------------------------------------


async def create_many(service: Service, path: str, template: dict[str, str], count: int) -> None:
    """Create ``count`` items in tenant 1."""
    headers = await writer(service.client)
    for number in range(count):
        response = await service.client.post(path, headers=headers, json=numbered(template, number))
        assert response.status_code == 201, response.text


async def traverse(service: Service, path: str, limit: int, tenant: str = "1") -> list[Any]:
    """Every item of a list, page by page."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await service.client.get(path, params=params, headers=identity(tenant=tenant))
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "next_cursor"}
        assert len(page["data"]) <= limit
        items.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize(("path", "template"), LISTS)
async def test_pages_return_every_item_once(
    service: Service, path: str, template: dict[str, str]
) -> None:
    """A traversal with limit=2 returns every item of the tenant exactly once."""
    before = await traverse(service, path, 100)
    await create_many(service, path, template, 5)
    items = await traverse(service, path, 2)
    assert len(items) == len(before) + 5
    assert items[: len(before)] == before
    keys = [item.get("id", item.get("key")) for item in items]
    assert len(set(keys)) == len(keys)


async def test_list_is_tenant_scoped(service: Service) -> None:
    """Tenant 2's lists show none of tenant 1's items."""
    for path in ("/admin/users", "/admin/roles", "/admin/feature-flags"):
        assert await traverse(service, path, 20, tenant="2") == []


async def test_items_created_during_a_traversal_are_not_served(service: Service) -> None:
    """The first page fixes a snapshot: a user created after it never appears."""
    await create_many(service, "/admin/users", {"email": "u{}@example.com", "role": "viewer"}, 3)
    first = await service.client.get("/admin/users?limit=2", headers=identity())
    await create_many(service, "/admin/users", {"email": "late{}@example.com", "role": "viewer"}, 2)
    cursor = first.json()["next_cursor"]
    rest = await service.client.get(f"/admin/users?limit=100&cursor={cursor}", headers=identity())
    emails = [user["email"] for user in first.json()["data"] + rest.json()["data"]]
    assert len(emails) == 4
    assert not any(email.startswith("late") for email in emails)


@pytest.mark.parametrize(
    "limit", ["0", "101", "-1", "ten", "1e3", "99999999999999999999999"], ids=str
)
async def test_bad_limit_is_422(service: Service, limit: str) -> None:
    """limit is 1 to 100; anything else is a 422 naming the parameter."""
    response = await service.client.get(f"/admin/users?limit={limit}", headers=identity())
    assert problem(response, 422)["invalid_params"][0]["name"] == "query.limit"


async def first_cursor(service: Service, path: str = "/admin/feature-flags") -> str:
    """The next_cursor of a first page of one item."""
    response = await service.client.get(f"{path}?limit=1", headers=identity())
    cursor: str = response.json()["next_cursor"]
    return cursor


async def test_cursor_of_another_tenant_is_400(service: Service) -> None:
    """A cursor from tenant 1 used by tenant 2 is foreign: 400."""
    cursor = await first_cursor(service)
    response = await service.client.get(
        "/admin/feature-flags", params={"cursor": cursor}, headers=identity(tenant="2")
    )
    assert problem(response, 400)["invalid_params"][0]["name"] == "cursor"


async def test_cursor_of_another_list_is_400(service: Service) -> None:
    """A cursor of the feature flags used on the roles is foreign: 400."""
    cursor = await first_cursor(service)
    response = await service.client.get(
        "/admin/roles", params={"cursor": cursor}, headers=identity()
    )
    problem(response, 400)


async def test_expired_cursor_is_410(service: Service) -> None:
    """A cursor whose snapshot is older than the cursor max age is 410 Gone."""
    runtime = service.runtime
    old = datetime.now(UTC) - runtime.settings.cursor_max_age - timedelta(minutes=1)
    token = runtime.cursors.encode(Cursor((1,), 10, old), query="/admin/feature-flags?tenant=1")
    response = await service.client.get(
        "/admin/feature-flags", params={"cursor": token}, headers=identity()
    )
    problem(response, 410)


async def test_cursor_with_a_foreign_position_is_400(service: Service) -> None:
    """A genuine cursor for this list whose position is not one it makes is malformed."""
    now = datetime.now(UTC)
    token = service.runtime.cursors.encode(
        Cursor(("x",), 10, now), query="/admin/feature-flags?tenant=1"
    )
    response = await service.client.get(
        "/admin/feature-flags", params={"cursor": token}, headers=identity()
    )
    problem(response, 400)


@pytest.mark.parametrize(("path", "patch"), RESOURCES)
async def test_read_is_one_query_and_a_matching_patch_one_update(
    service: Service, path: str, patch: dict[str, Any]
) -> None:
    """The hot paths: a GET is one SELECT; a PATCH whose If-Match matches is one UPDATE."""
    headers = await writer(service.client)
    with statements(service) as read:
        response = await service.client.get(path, headers=identity("viewer"))
    assert read == ["SELECT"]
    with statements(service) as written:
        patched = await service.client.patch(
            path, json=patch, headers={**headers, "If-Match": response.headers["ETag"]}
        )
    assert patched.status_code == 200, patched.text
    assert written == ["UPDATE"]

"""The service behind a shared cache it does not configure: Varnish's defaults, nginx's cache.

Every request goes through the cache (``cache.url``); what the service itself answers
is asked of it directly (``origin.url``) to compare. A cache that stored a response
against the caching policy would hand it to the next asker: another tenant, another
role, nobody, or the writer itself after its write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from tests.deploy.caches import Cache
from tests.support.admin import identity
from tests.support.servers import Server

pytestmark = pytest.mark.slow

#: Seconds a request through a cache may take: generous, a busy machine is slow.
TIMEOUT: Final = 60
USER: Final = "/admin/users/123"
#: Who asks, after tenant 1's admin has read the same path through the cache.
OTHERS: Final = {
    "tenant-2-admin": identity(tenant="2"),
    "tenant-1-viewer": identity("viewer"),
    "no-identity": {},
}
#: The status of a GET whose If-None-Match holds the current ETag, through each cache.
#: nginx with its proxy cache on drops If-None-Match from a GET it might store and, told
#: by Cache-Control that it may not store the response, does not evaluate it either: the
#: client gets the current representation in full, a correct answer, only a longer one
#: (without proxy_cache, nginx passes the field on and the service's 304 through).
REVALIDATED: Final = {"varnish": 304, "nginx": 200}


@pytest.fixture
def through(cache: Cache) -> Iterator[httpx.Client]:
    """A client whose every request goes through the cache."""
    with httpx.Client(base_url=cache.url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def direct(origin: Server) -> Iterator[httpx.Client]:
    """A client of the service itself, past the cache."""
    with httpx.Client(base_url=origin.url, timeout=TIMEOUT) as client:
        yield client


def seen(response: httpx.Response) -> tuple[int, Any]:
    """What a client learns from ``response``: its status and content."""
    return response.status_code, response.json()


def created(client: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> str:
    """POST ``body`` to ``path``; the Location of the 201."""
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


def writer(client: httpx.Client) -> dict[str, str]:
    """Tenant 1 admin's write headers, with a CSRF token fetched through ``client``."""
    token = client.get("/admin/csrf-token", headers=identity())
    assert token.status_code == 200, token.text
    return {**identity(), "X-CSRF-Token": token.json()["csrf_token"]}


def ids(response: httpx.Response, *path: str) -> set[str]:
    """The ids of the items of a list response; ``path`` leads to the list."""
    assert response.status_code == 200, response.text
    items: Any = response.json()
    for key in path:
        items = items[key]
    return {item.get("id", item.get("project_id")) for item in items}


def test_requests_pass_through_the_cache(cache: Cache, through: httpx.Client) -> None:
    """The cache, not the service directly, answers the test's client."""
    response = through.get("/projects")
    assert response.status_code == 200, response.text
    assert cache.mark in response.headers


@pytest.mark.parametrize("path", [USER, "/admin/users"], ids=["item", "list"])
@pytest.mark.parametrize("asker", list(OTHERS), ids=list(OTHERS))
def test_no_response_reaches_another_identity(
    cache: Cache, through: httpx.Client, direct: httpx.Client, path: str, asker: str
) -> None:
    """After tenant 1's admin read a path, another identity gets the service's own answer."""
    for _ in range(2):  # the second read would be stored if the first was not
        assert through.get(path, headers=identity()).status_code == 200
    response = through.get(path, headers=OTHERS[asker])
    assert not cache.hit(response), response.headers
    assert seen(response) == seen(direct.get(path, headers=OTHERS[asker]))


def test_own_put_seen_on_next_get(cache: Cache, through: httpx.Client) -> None:
    """A project read through the cache, then written, reads back as written."""
    project = created(through, "/projects", {"name": "cached"})
    before = [through.get(project) for _ in range(2)]
    description = uuid.uuid4().hex
    written = through.put(
        project, json={"description": description}, headers={"If-Match": before[-1].headers["etag"]}
    )
    assert written.status_code == 200, written.text
    after = through.get(project)
    assert not cache.hit(after), after.headers
    assert after.json()["result"]["description"] == description
    assert after.headers["etag"] == written.headers["etag"]


@pytest.mark.parametrize(
    ("path", "body", "items"),
    [
        ("/v1/tests/sessions?limit=100", {"building_id": "b"}, ("data",)),
        ("/projects?limit=100", {"name": "listed"}, ("result", "items")),
    ],
    ids=["sessions", "projects"],
)
def test_create_shows_up_in_list(
    through: httpx.Client, path: str, body: dict[str, Any], items: tuple[str, ...]
) -> None:
    """A list read through the cache, then added to, lists the new item on the next read."""
    if "building_id" in body:
        body = {"building_id": str(uuid.uuid4())}
    for _ in range(2):
        ids(through.get(path), *items)
    location = created(through, path.split("?", maxsplit=1)[0], body)
    assert location.rsplit("/", 1)[1] in ids(through.get(path), *items)


def test_admin_create_shows_up_in_list(through: httpx.Client) -> None:
    """An admin list read through the cache lists the user created next."""
    for _ in range(2):
        ids(through.get("/admin/users?limit=100", headers=identity()), "data")
    email = f"{uuid.uuid4().hex}@example.com"
    user = created(
        through, "/admin/users", {"email": email, "name": "Cached", "role": "viewer"},
        **writer(through),
    )  # fmt: skip
    listed = ids(through.get("/admin/users?limit=100", headers=identity()), "data")
    assert user.rsplit("/", 1)[1] in listed


@pytest.mark.parametrize(
    ("path", "headers"), [("project", {}), (USER, identity())], ids=["projects", "admin"]
)
def test_conditional_get_through_cache(
    cache: Cache, through: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    """If-None-Match with the current ETag gets that ETag back: a 304 through Varnish, the
    full current representation through nginx's proxy cache (REVALIDATED)."""
    if path == "project":
        path = created(through, "/projects", {"name": "validated"})
    full = through.get(path, headers=headers)
    again = through.get(path, headers={**headers, "If-None-Match": full.headers["etag"]})
    assert (full.status_code, again.status_code) == (200, REVALIDATED[cache.name])
    assert again.headers["etag"] == full.headers["etag"]
    assert again.content == (b"" if again.status_code == 304 else full.content)


def test_not_modified_not_across_tenants(through: httpx.Client) -> None:
    """Tenant 1's ETag sent by tenant 2 is no 304: tenant 2 has no such user (404)."""
    tag = through.get(USER, headers=identity()).headers["etag"]
    response = through.get(USER, headers={**identity(tenant="2"), "If-None-Match": tag})
    assert response.status_code == 404, response.headers


def test_stale_if_match_fails_through_cache(through: httpx.Client, direct: httpx.Client) -> None:
    """A PUT with an ETag a write has replaced is a 412 through the cache, and changes nothing."""
    project = created(through, "/projects", {"name": "raced"})
    stale = through.get(project).headers["etag"]
    first = through.put(project, json={"description": "first"}, headers={"If-Match": stale})
    assert first.status_code == 200, first.text
    second = through.put(project, json={"description": "second"}, headers={"If-Match": stale})
    assert second.status_code == 412, second.text
    assert direct.get(project).json()["result"]["description"] == "first"

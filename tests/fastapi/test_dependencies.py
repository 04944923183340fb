"""optimist.fastapi.dependencies: the precondition dependency, on routes that read and
write under the seeds' profiles."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from optimist.fastapi import conditional
from optimist.httpdate import http_date
from tests.fastapi.items import (
    ADMIN_412,
    MODIFIED,
    SEED_002_400,
    assert_problem,
    client_for,
    etag_of,
    items_app,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def app() -> FastAPI:
    """A fresh items app with one item in each store."""
    return items_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the app in-process."""
    async with client_for(app) as client:
        yield client


# -- reads: ETag, 304, HEAD ------------------------------------------------------------


async def test_get_carries_etag_and_last_modified(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A GET of a single resource answers with its ETag and Last-Modified."""
    response = await client.get("/projects/1")
    assert response.status_code == 200
    assert response.headers["etag"] == etag_of(app, "projects")
    assert response.headers["last-modified"] == http_date(MODIFIED)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_matching_if_none_match_is_304_with_etag_and_no_body(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    """A matching If-None-Match answers 304 with the ETag and no body, for GET and HEAD."""
    tag = etag_of(app, "projects")
    response = await client.request(method, "/projects/1", headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert response.headers["etag"] == tag
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_if_none_match_is_compared_weakly(app: FastAPI, client: httpx.AsyncClient) -> None:
    """If-None-Match uses the weak comparison: W/"v1" matches a strong "v1" (§13.1.2)."""
    tag = app.state.stores["projects"].rows["1"].etag
    response = await client.get("/projects/1", headers={"If-None-Match": str(tag.as_weak())})
    assert response.status_code == 304


async def test_stale_if_none_match_reads_normally(client: httpx.AsyncClient) -> None:
    """An If-None-Match naming another tag lets the GET proceed."""
    response = await client.get("/projects/1", headers={"If-None-Match": '"other"'})
    assert response.status_code == 200
    assert response.json() == {"name": "first", "status": "draft"}


# -- writes: 412, *, the policies ------------------------------------------------------


async def test_stale_if_match_is_412_with_current_etag(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A stale If-Match is a 412 with the current ETag in the header and the body."""
    current = etag_of(app, "projects")
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": '"v0"'})
    problem = assert_problem(response, 412)
    assert response.headers["etag"] == current
    assert problem["current_etag"] == current
    assert app.state.stores["projects"].rows["1"].name == "first"


async def test_projects_412_detail_names_both_tags(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The projects profile words its 412 as seed 003 does."""
    current = app.state.stores["projects"].rows["1"].etag.opaque
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": "stale"})
    problem = assert_problem(response, 412)
    assert problem["detail"] == f"ETag mismatch: expected {current}, got stale"


async def test_matching_if_match_writes_and_returns_new_etag(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A matching If-Match writes, and the response carries the new ETag."""
    before = etag_of(app, "projects")
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": before})
    assert response.status_code == 200
    assert response.headers["etag"] == etag_of(app, "projects") != before


async def test_bare_if_match_is_accepted_where_allowed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The projects profile accepts the body's bare tag in If-Match (seed 003)."""
    bare = app.state.stores["projects"].rows["1"].etag.opaque
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": bare})
    assert response.status_code == 200


async def test_if_match_lines_are_one_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Two If-Match field lines are one list (RFC 9110 §5.3): either tag may match."""
    headers = [("If-Match", '"other"'), ("If-Match", etag_of(app, "projects"))]
    response = await client.put("/projects/1", json={"name": "x"}, headers=headers)
    assert response.status_code == 200


async def test_if_match_star_writes_when_the_resource_exists(client: httpx.AsyncClient) -> None:
    """``If-Match: *`` holds for any current representation (RFC 9110 §13.1.1)."""
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 200


async def test_optional_precondition_may_be_omitted(client: httpx.AsyncClient) -> None:
    """Without If-Match, an optional precondition gives an unconditional write."""
    response = await client.put("/projects/1", json={"name": "x"})
    assert response.status_code == 200


async def test_admin_delete_without_if_match_is_seed_400(client: httpx.AsyncClient) -> None:
    """The admin profile's DELETE without If-Match is exactly seed 002's 400 body."""
    response = await client.delete("/admin/items/1")
    assert_problem(response, 400)
    assert response.json() == SEED_002_400


async def test_required_if_match_is_428_saying_how_to_resubmit(client: httpx.AsyncClient) -> None:
    """A missing required If-Match is 428, and the body says how to resubmit."""
    response = await client.delete("/projects/1")
    problem = assert_problem(response, 428)
    assert "resend with If-Match set to its ETag" in problem["detail"]
    assert problem["invalid_params"] == [{"name": "If-Match", "reason": "required"}]


async def test_delete_with_if_match_is_204(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A DELETE whose If-Match matches answers 204 and deletes."""
    response = await client.delete("/projects/1", headers={"If-Match": etag_of(app, "projects")})
    assert response.status_code == 204
    assert "1" not in app.state.stores["projects"].rows


async def test_admin_412_has_seed_detail(client: httpx.AsyncClient) -> None:
    """The admin profile's 412 has seed 002's four members plus current_etag."""
    response = await client.patch("/admin/items/1", json={}, headers={"If-Match": 'W/"old"'})
    problem = assert_problem(response, 412)
    assert set(problem) == {"type", "title", "status", "detail", "current_etag"}
    assert problem["detail"] == ADMIN_412
    assert problem["title"] == "Precondition Failed"


async def test_admin_compares_if_match_weakly(app: FastAPI, client: httpx.AsyncClient) -> None:
    """The admin profile matches its weak ETag in If-Match (its documented deviation)."""
    tag = etag_of(app, "admin")
    response = await client.patch("/admin/items/1", json={"name": "y"}, headers={"If-Match": tag})
    assert response.status_code == 200


async def test_strong_profile_never_matches_a_weak_tag(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Under strong comparison a weak If-Match matches nothing (RFC 9110 §8.8.3.2)."""
    weak = str(app.state.stores["projects"].rows["1"].etag.as_weak())
    response = await client.put("/projects/1", json={"name": "x"}, headers={"If-Match": weak})
    assert_problem(response, 412)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"If-None-Match": "*"}, 201), ({}, 201)],
    ids=["if-none-match-star", "unconditional"],
)
async def test_create_of_a_new_key(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    """A create of a key that is free succeeds, with or without ``If-None-Match: *``."""
    response = await client.post("/admin/items", json={"key": "2", "name": "n"}, headers=headers)
    assert response.status_code == status
    assert response.headers["etag"].startswith('W/"')


async def test_create_if_absent_of_a_taken_key_is_412(client: httpx.AsyncClient) -> None:
    """``If-None-Match: *`` on a taken key is 412 (RFC 9110 §13.1.2)."""
    response = await client.post(
        "/admin/items", json={"key": "1", "name": "n"}, headers={"If-None-Match": "*"}
    )
    assert_problem(response, 412)


async def test_create_of_a_taken_key_without_precondition_is_409(
    client: httpx.AsyncClient,
) -> None:
    """Without ``If-None-Match: *``, a create of a taken key is a 409 problem."""
    response = await client.post("/admin/items", json={"key": "1", "name": "n"})
    assert_problem(response, 409)


# -- hostile headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match",
    [
        b'"' + b"a" * 10_240 + b'"',
        b"x" * 10_240,
        b'"\xff\xfe\x80"',
        b'"a\x01b"',
        b'"unterminated',
        b"W/",
        b", ,",
    ],
    ids=[
        "10kb-tag",
        "10kb-garbage",
        "latin-1-bytes",
        "control-char",
        "unterminated",
        "weak-only",
        "empty-list",
    ],
)
async def test_hostile_if_match_is_412_problem(client: httpx.AsyncClient, if_match: bytes) -> None:
    """A hostile or malformed If-Match evaluates false: 412 problem, never a 5xx."""
    response = await client.put(
        "/strict/1",
        json={"name": "n", "status": "draft"},
        headers=[(b"X-Role", b"admin"), (b"If-Match", if_match)],
    )
    assert_problem(response, 412)


@pytest.mark.parametrize(
    "value",
    [b'"' + b"a" * 10_240 + b'"', b"\xff\xfe\x80", b"\x01"],
    ids=["10kb", "latin-1", "control"],
)
async def test_hostile_if_none_match_is_ignored(client: httpx.AsyncClient, value: bytes) -> None:
    """A malformed If-None-Match evaluates true: the GET proceeds (RFC 9110 §13.1.2)."""
    response = await client.get("/projects/1", headers=[(b"If-None-Match", value)])
    assert response.status_code == 200


async def test_hostile_dates_are_ignored(client: httpx.AsyncClient) -> None:
    """Invalid HTTP-dates in the date preconditions are ignored (§13.1.3, §13.1.4)."""
    headers = [(b"If-Modified-Since", b"\xff" * 10_240), (b"If-Unmodified-Since", b"yesterday")]
    response = await client.get("/projects/1", headers=headers)
    assert response.status_code == 200


async def test_conditional_takes_only_the_request() -> None:
    """The dependency declares no Header parameters, so FastAPI validates nothing per request."""
    assert list(inspect.signature(conditional()).parameters) == ["request"]

"""FastAPI integration: the precondition dependency, precedence, validation problems, OpenAPI.

The apps are built here on an in-memory store whose writes check their condition and
write in one step (no await between), as a database statement would.
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import Message

from optimist.conditions import Condition, ResourceState
from optimist.errors import PreconditionFailed, ResourceExists, ResourceNotFound
from optimist.etag import Comparison, EntityTag
from optimist.fastapi import (
    HeadMiddleware,
    PrecedenceRoute,
    conditional,
    document_problems,
    install_problem_handlers,
    problem_responses,
)
from optimist.httpdate import http_date
from optimist.policy import PreconditionPolicy, Requirement
from optimist.preconditions import Preconditions
from optimist.starlette import ConditionalRequest, set_etag

pytestmark = pytest.mark.anyio

MODIFIED = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
PROBLEM = "application/problem+json"
ADMIN_412 = "Resource has been modified. Please fetch the latest version and retry."
SEED_002_400 = {
    "type": "about:blank",
    "title": "Bad Request",
    "status": 400,
    "detail": "If-Match header required for DELETE operations",
    "invalid_params": [{"name": "If-Match", "reason": "required"}],
}
# Seed 003's status machine, enough of it for a business rule that reads the state.
TRANSITIONS = {("draft", "estimating"), ("estimating", "draft"), ("estimating", "submitted")}


@dataclass(frozen=True)
class Record:
    """One stored item."""

    name: str
    status: str
    etag: EntityTag
    modified: datetime

    @property
    def state(self) -> ResourceState:
        """The state preconditions are evaluated against."""
        return ResourceState(exists=True, etag=self.etag, last_modified=self.modified)


class MemoryStore:
    """A dict of records; each write checks its condition and writes without yielding."""

    def __init__(self, *, weak: bool = False) -> None:
        self.rows: dict[str, Record] = {}
        self.weak = weak
        self._versions = itertools.count(1)

    def _tag(self) -> EntityTag:
        return EntityTag(f"v{next(self._versions)}", weak=self.weak)

    def state(self, key: str) -> ResourceState:
        record = self.rows.get(key)
        return ResourceState.missing() if record is None else record.state

    def put(self, key: str, name: str, status: str = "draft") -> Record:
        self.rows[key] = Record(name, status, self._tag(), MODIFIED)
        return self.rows[key]

    def get(self, key: str) -> Record:
        if key not in self.rows:
            raise ResourceNotFound("item", key)
        return self.rows[key]

    def create(self, key: str, name: str, condition: Condition) -> Record:
        state = self.state(key)
        if not condition.holds(state):
            raise PreconditionFailed(state.etag)
        if state.exists:
            raise ResourceExists("item", key)
        return self.put(key, name)

    def update(self, key: str, condition: Condition, **changes: str) -> Record:
        current = self.get(key)
        if not condition.holds(current.state):
            raise PreconditionFailed(current.etag)
        self.rows[key] = replace(current, **changes, etag=self._tag(), modified=datetime.now(UTC))
        return self.rows[key]

    def delete(self, key: str, condition: Condition) -> None:
        current = self.get(key)
        if not condition.holds(current.state):
            raise PreconditionFailed(current.etag)
        del self.rows[key]


class ItemIn(BaseModel):
    """A full replacement of an item."""

    name: str = Field(min_length=1)
    status: Literal["draft", "estimating", "submitted", "accepted"] = "draft"


class ItemPatch(BaseModel):
    """A partial update of an item."""

    name: str | None = Field(default=None, min_length=1)


class NewItem(BaseModel):
    """A create with a client-chosen key."""

    key: str
    name: str


def body(record: Record) -> dict[str, str]:
    """The JSON representation of a record."""
    return {"name": record.name, "status": record.status}


Admin = Annotated[
    ConditionalRequest,
    Depends(
        conditional(
            PreconditionPolicy(
                {"DELETE": Requirement.REQUIRED},
                missing_status=400,
                missing_detail="If-Match header required for {method} operations",
            ),
            comparison=Comparison.WEAK,
            failed_detail=ADMIN_412,
        )
    ),
]
Projects = Annotated[
    ConditionalRequest,
    Depends(
        conditional(
            PreconditionPolicy({"DELETE": Requirement.REQUIRED}),
            allow_bare=True,
            failed_detail=lambda current, sent: (
                f"ETag mismatch: expected {current.opaque if current else None}, got {sent}"
            ),
        )
    ),
]
Strict = Annotated[
    ConditionalRequest,
    Depends(conditional(PreconditionPolicy({"PUT": Requirement.REQUIRED}))),
]


def store_of(request: Request) -> MemoryStore:
    """The app's store."""
    store: MemoryStore = request.app.state.stores[request.url.path.split("/")[1]]
    return store


Store = Annotated[MemoryStore, Depends(store_of)]


async def identity(x_role: Annotated[str | None, Header()] = None) -> str:
    """401 unless the request names a known role."""
    if x_role not in ("admin", "viewer"):
        raise HTTPException(401, "X-Role must name a known role")
    return x_role


async def writer(role: Annotated[str, Depends(identity)]) -> str:
    """403 unless the role may write."""
    if role != "admin":
        raise HTTPException(403, "only admin may write")
    return role


async def existing(key: str, store: Store) -> Record:
    """The record at ``key``, or 404."""
    return store.get(key)


Existing = Annotated[Record, Depends(existing)]


def build_app() -> FastAPI:
    """The test app: an admin profile, a projects profile and a strict router."""
    app = FastAPI()
    app.state.stores = {
        "admin": MemoryStore(weak=True),
        "projects": MemoryStore(),
        "strict": MemoryStore(),
    }
    install_problem_handlers(app)
    app.add_middleware(HeadMiddleware)
    admin = APIRouter(prefix="/admin/items", route_class=PrecedenceRoute)
    projects = APIRouter(prefix="/projects", route_class=PrecedenceRoute)
    strict = APIRouter(prefix="/strict", route_class=PrecedenceRoute)

    @admin.get("/{key}", responses=problem_responses(304, 404))
    async def admin_read(record: Existing, cond: Admin, response: Response) -> dict[str, str]:
        cond.evaluate(record.state, response)
        return body(record)

    @admin.patch("/{key}", responses=problem_responses(404, 412, 422))
    async def admin_patch(
        key: str, patch: ItemPatch, record: Existing, cond: Admin, store: Store, response: Response
    ) -> dict[str, str]:
        changes = patch.model_dump(exclude_none=True)
        new = store.update(key, cond.write_condition(), **changes)
        set_etag(response, new.etag)
        return body(new)

    @admin.delete("/{key}", status_code=204, responses=problem_responses(400, 404, 412))
    async def admin_delete(key: str, record: Existing, cond: Admin, store: Store) -> None:
        store.delete(key, cond.write_condition())

    @admin.post("", status_code=201, responses=problem_responses(409, 412, 422))
    async def admin_create(
        new: NewItem, cond: Admin, store: Store, response: Response
    ) -> dict[str, str]:
        record = store.create(new.key, new.name, cond.write_condition())
        set_etag(response, record.etag)
        return body(record)

    @admin.get("", responses=problem_responses(422))
    async def admin_list(
        store: Store, limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> list[dict[str, str]]:
        return [body(record) for record in list(store.rows.values())[:limit]]

    @projects.get("/{key}", responses=problem_responses(304, 404))
    async def project_read(record: Existing, cond: Projects, response: Response) -> dict[str, str]:
        cond.evaluate(record.state, response)
        return body(record)

    @projects.put("/{key}", responses=problem_responses(404, 412, 422))
    async def project_put(
        key: str, item: ItemIn, record: Existing, cond: Projects, store: Store, response: Response
    ) -> dict[str, str]:
        new = store.update(key, cond.write_condition(), name=item.name, status=item.status)
        set_etag(response, new.etag)
        return body(new)

    @projects.delete("/{key}", status_code=204, responses=problem_responses(404, 412, 428))
    async def project_delete(key: str, record: Existing, cond: Projects, store: Store) -> None:
        store.delete(key, cond.write_condition())

    @strict.put("/{key}", responses=problem_responses(401, 403, 404, 412, 422, 428))
    async def strict_put(
        key: str,
        item: ItemIn,
        role: Annotated[str, Depends(writer)],
        record: Existing,
        cond: Strict,
        store: Store,
        response: Response,
    ) -> dict[str, str]:
        cond.evaluate(record.state)  # 428, then 412, before the rule below reads the state
        if item.status != record.status and (record.status, item.status) not in TRANSITIONS:
            raise HTTPException(422, f"Invalid transition: {record.status} → {item.status}")
        new = store.update(key, cond.write_condition(), name=item.name, status=item.status)
        set_etag(response, new.etag)
        return body(new)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret database password in this message")

    app.include_router(admin)
    app.include_router(projects)
    app.include_router(strict)
    return app


@pytest.fixture
def app() -> FastAPI:
    """A fresh app with one item in each store."""
    app = build_app()
    for store in app.state.stores.values():
        store.put("1", "first")
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the app in-process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def etag_of(app: FastAPI, store: str, key: str = "1") -> str:
    """The current ETag of an item, as the header carries it."""
    return str(app.state.stores[store].rows[key].etag)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, after checking the status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


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


async def test_head_answers_like_get_without_body(client: httpx.AsyncClient) -> None:
    """HEAD on a GET route answers GET's status and headers (FastAPI alone says 405)."""
    get = await client.get("/projects/1")
    head = await client.head("/projects/1")
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == b""


# -- HeadMiddleware --------------------------------------------------------------------


def fastapi_app() -> FastAPI:
    """A FastAPI app whose GET routes answer HEAD through the middleware."""
    app = FastAPI()
    app.add_middleware(HeadMiddleware)

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("hello", headers={"X-Route": "get"})

    @app.head("/own")
    async def own_head() -> Response:
        return Response(headers={"X-Route": "head"})

    @app.get("/own")
    async def own_get() -> PlainTextResponse:
        return PlainTextResponse("hello", headers={"X-Route": "get"})

    @app.post("/post-only")
    async def post_only() -> None:
        return None

    return app


async def call(app: Any, method: str, path: str) -> list[Message]:
    """The ASGI messages ``app`` sends for a request without a body."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    return sent


async def test_head_sends_get_headers_and_no_body() -> None:
    """HEAD on a GET route sends GET's status and headers and an empty body."""
    start, *bodies = await call(fastapi_app(), "HEAD", "/text")
    assert start["status"] == 200
    headers = Headers(raw=start["headers"])
    assert headers["x-route"] == "get"
    assert headers["content-length"] == "5"
    assert all(message["body"] == b"" for message in bodies)


async def test_declared_head_route_is_kept() -> None:
    """A route that declares HEAD answers it itself."""
    start, *_ = await call(fastapi_app(), "HEAD", "/own")
    assert Headers(raw=start["headers"])["x-route"] == "head"


async def test_head_without_get_stays_405() -> None:
    """HEAD where GET is not served either is still 405."""
    start, *_ = await call(fastapi_app(), "HEAD", "/post-only")
    assert start["status"] == 405


async def test_405_allow_lists_head_where_get_is_served() -> None:
    """With HEAD served wherever GET is, a 405's Allow names HEAD beside GET."""
    start, *_ = await call(fastapi_app(), "DELETE", "/text")
    assert start["status"] == 405
    allowed = {m.strip() for m in Headers(raw=start["headers"])["allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed


async def test_other_methods_pass_through() -> None:
    """Non-HEAD requests are untouched, body included."""
    start, body = await call(fastapi_app(), "GET", "/text")
    assert (start["status"], body["body"]) == (200, b"hello")


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


# -- precedence (RFC 9110 §13.2.1, SPEC §1) --------------------------------------------

VALID = json.dumps({"name": "n", "status": "estimating"}).encode()
INVALID = json.dumps({"name": "", "status": "estimating"}).encode()
MALFORMED = b'{"name": '
FORBIDDEN_MOVE = json.dumps({"name": "n", "status": "accepted"}).encode()


@pytest.mark.parametrize(
    ("role", "key", "content", "if_match", "status"),
    [
        (None, "missing", MALFORMED, None, 401),
        ("viewer", "missing", MALFORMED, None, 403),
        ("admin", "missing", MALFORMED, None, 404),
        ("admin", "missing", INVALID, None, 404),
        ("admin", "1", MALFORMED, None, 422),
        ("admin", "1", INVALID, None, 422),
        ("admin", "1", INVALID, '"stale"', 422),
        ("admin", "1", VALID, None, 428),
        ("admin", "1", FORBIDDEN_MOVE, '"stale"', 412),
        ("admin", "1", FORBIDDEN_MOVE, "current", 422),
        ("admin", "1", VALID, "current", 200),
    ],
    ids=[
        "401-before-malformed-body",
        "403-before-malformed-body",
        "404-before-malformed-body",
        "404-before-invalid-body",
        "malformed-body-before-428",
        "invalid-body-before-428",
        "invalid-body-before-412",
        "428-when-body-valid",
        "412-before-business-rule",
        "business-rule-when-precondition-holds",
        "all-clear",
    ],
)
async def test_precedence(
    app: FastAPI,
    client: httpx.AsyncClient,
    role: str | None,
    key: str,
    content: bytes,
    if_match: str | None,
    status: int,
) -> None:
    """Checks answer in SPEC §1's order: 401/403 → 404 → 422 → 428 → 412 → business 422."""
    headers = {"content-type": "application/json"}
    if role is not None:
        headers["X-Role"] = role
    if if_match is not None:
        headers["If-Match"] = etag_of(app, "strict") if if_match == "current" else if_match
    response = await client.put(f"/strict/{key}", content=content, headers=headers)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.headers["content-type"] == PROBLEM


async def test_business_rule_422_names_the_transition(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The business rule's 422 is a problem whose detail names the transition."""
    headers = {"X-Role": "admin", "If-Match": etag_of(app, "strict")}
    response = await client.put(
        "/strict/1", json={"name": "n", "status": "accepted"}, headers=headers
    )
    assert assert_problem(response, 422)["detail"] == "Invalid transition: draft → accepted"


# -- validation problems ---------------------------------------------------------------


async def test_invalid_body_is_422_with_invalid_params(client: httpx.AsyncClient) -> None:
    """A body that fails validation is a 422 naming each invalid member."""
    response = await client.put("/projects/1", json={"name": "", "status": "bogus"})
    problem = assert_problem(response, 422)
    names = [param["name"] for param in problem["invalid_params"]]
    assert names == ["body.name", "body.status"]
    assert problem["detail"].startswith("The request is invalid: body.name: ")


async def test_missing_member_is_named(client: httpx.AsyncClient) -> None:
    """A missing required member is reported by its location."""
    response = await client.put("/projects/1", json={})
    problem = assert_problem(response, 422)
    assert problem["invalid_params"] == [{"name": "body.name", "reason": "Field required"}]


async def test_invalid_query_is_422_named_by_location(client: httpx.AsyncClient) -> None:
    """An out-of-range query parameter is reported as ``query.limit``."""
    response = await client.get("/admin/items", params={"limit": "0"})
    problem = assert_problem(response, 422)
    assert [param["name"] for param in problem["invalid_params"]] == ["query.limit"]


async def test_malformed_json_is_422_with_position(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 422 saying where it broke."""
    response = await client.put(
        "/projects/1", content=MALFORMED, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    [param] = problem["invalid_params"]
    assert param["name"] == "body"
    assert param["reason"].startswith("malformed JSON at position 9")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": "\xff\xfe"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"name": ' + b"9" * 5000 + b"}", "could not be parsed"),
    ],
    ids=["invalid-utf8", "deep-nesting", "huge-integer"],
)
async def test_undecodable_body_is_422(
    client: httpx.AsyncClient, content: bytes, reason: str
) -> None:
    """A body the JSON parser cannot even read is a 422 problem, never a 5xx."""
    response = await client.put(
        "/projects/1", content=content, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["invalid_params"] == [{"name": "body", "reason": reason}]


async def test_many_validation_errors_are_capped(client: httpx.AsyncClient) -> None:
    """A body failing validation everywhere gives a bounded list of invalid_params."""
    response = await client.get("/admin/items", params={"limit": "x" * 20_000})
    problem = assert_problem(response, 422)
    assert len(response.content) < 2_000
    assert problem["invalid_params"][0]["name"] == "query.limit"


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


# -- other errors ----------------------------------------------------------------------


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route matches is a 404 problem."""
    problem = assert_problem(await client.get("/nowhere"), 404)
    assert problem["detail"] == "No resource matches the request's path."


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    """A method the route does not serve is a 405 problem with Allow."""
    response = await client.post("/projects/1", json={})
    problem = assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
    assert problem["detail"].startswith("POST is not allowed here")


async def test_unexpected_error_is_generic_500(client: httpx.AsyncClient) -> None:
    """An unexpected exception is a 500 problem that leaks nothing about its cause."""
    response = await client.get("/boom")
    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert problem["detail"] == "The server could not complete the request."


async def test_missing_resource_is_404_problem(client: httpx.AsyncClient) -> None:
    """A ResourceNotFound from a dependency is a 404 problem naming the resource."""
    problem = assert_problem(await client.get("/projects/nope"), 404)
    assert problem["detail"] == "item nope not found"


# -- OpenAPI ---------------------------------------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    """The app's OpenAPI document."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_openapi_declares_problem_schema(openapi: dict[str, Any]) -> None:
    """The ProblemDetails schema, with invalid_params, is in the components."""
    schemas = openapi["components"]["schemas"]
    assert {"type", "title", "status", "detail", "invalid_params", "current_etag"} <= set(
        schemas["ProblemDetails"]["properties"]
    )
    assert set(schemas["InvalidParameter"]["required"]) == {"name", "reason"}


async def test_openapi_412_is_problem_with_etag_header(openapi: dict[str, Any]) -> None:
    """A route's declared 412 is problem+json and documents the ETag header."""
    declared = openapi["paths"]["/projects/{key}"]["put"]["responses"]["412"]
    schema = declared["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "ETag" in declared["headers"]


async def test_openapi_304_has_no_content(openapi: dict[str, Any]) -> None:
    """A declared 304 has no content, only the ETag header."""
    declared = openapi["paths"]["/projects/{key}"]["get"]["responses"]["304"]
    assert "content" not in declared
    assert "ETag" in declared["headers"]


async def test_openapi_replaces_default_422(openapi: dict[str, Any]) -> None:
    """FastAPI's own 422 schema gives way to problem details everywhere."""
    undeclared = openapi["paths"]["/admin/items/{key}"]["get"]["responses"]["422"]
    assert list(undeclared["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    assert "ValidationError" not in openapi["components"]["schemas"]


PRECONDITION_HEADERS = {"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}


def header_parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The header parameters of an OpenAPI operation, by name."""
    parameters = operation.get("parameters", [])
    return {p["name"]: p for p in parameters if p["in"] == "header"}


async def test_openapi_documents_precondition_headers(openapi: dict[str, Any]) -> None:
    """The conditional dependency documents the four precondition headers."""
    headers = header_parameters(openapi["paths"]["/projects/{key}"]["put"])
    assert set(headers) == PRECONDITION_HEADERS


async def test_openapi_precondition_headers_are_optional_and_described(
    openapi: dict[str, Any],
) -> None:
    """Each precondition header is an optional string header with its description."""
    headers = header_parameters(openapi["paths"]["/admin/items/{key}"]["get"])
    assert headers["If-None-Match"]["description"] == 'Entity-tags, or "*"'
    for parameter in headers.values():
        assert parameter["required"] is False
        assert {"type": "string"} in parameter["schema"]["anyOf"]
        assert parameter["description"] == parameter["schema"]["description"]


async def test_openapi_precondition_headers_only_where_conditional(
    openapi: dict[str, Any],
) -> None:
    """A route without the conditional dependency documents no precondition header."""
    assert not header_parameters(openapi["paths"]["/admin/items"]["get"])
    assert not header_parameters(openapi["paths"]["/boom"]["get"])


async def test_conditional_takes_only_the_request() -> None:
    """The dependency declares no Header parameters, so FastAPI validates nothing per request."""
    assert list(inspect.signature(conditional()).parameters) == ["request"]


async def test_conditional_reads_the_headers_it_documents() -> None:
    """The documented headers reach ConditionalRequest, list lines joined (RFC 9110 §5.3)."""
    app = FastAPI()
    install_problem_handlers(app)

    seen: list[ConditionalRequest] = []

    @app.get("/echo")
    async def echo(cond: Strict) -> None:
        seen.append(cond)

    date = http_date(MODIFIED)
    headers = [
        ("If-Match", '"a"'),
        ("If-Match", '"b"'),
        ("If-None-Match", '"c"'),
        ("If-Modified-Since", date),
        ("If-Unmodified-Since", date),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/echo", headers=headers)).status_code == 200
    (bound,) = seen
    assert bound.if_match == '"a", "b"'
    assert bound.received == Preconditions(
        if_match=(EntityTag("a"), EntityTag("b")),
        if_none_match=(EntityTag("c"),),
        if_modified_since=MODIFIED.replace(microsecond=0),
        if_unmodified_since=MODIFIED.replace(microsecond=0),
    )
    assert set(header_parameters(app.openapi()["paths"]["/echo"]["get"])) == PRECONDITION_HEADERS


async def guarded(cond: Strict) -> ConditionalRequest:
    """The conditional request, through a dependency of its own."""
    return cond


Guarded = Annotated[ConditionalRequest, Depends(guarded)]


def test_openapi_precondition_headers_through_a_sub_dependency() -> None:
    """A route that gets the dependency through another dependency documents the headers."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/nested")
    async def nested(cond: Guarded) -> None:
        return None

    router = APIRouter(dependencies=[Depends(conditional())])

    @router.delete("/routed")
    async def routed() -> None:
        return None

    app.include_router(router)
    paths = app.openapi()["paths"]
    assert set(header_parameters(paths["/nested"]["get"])) == PRECONDITION_HEADERS
    assert set(header_parameters(paths["/routed"]["delete"])) == PRECONDITION_HEADERS


@dataclass
class Limit:
    """A dependency that is a callable instance, unhashable like any mutable dataclass."""

    most: int

    async def __call__(self) -> int:
        return self.most


def test_openapi_with_an_unhashable_dependency() -> None:
    """Looking for the conditional dependency copes with a dependency that is not hashable."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/limited")
    async def limited(most: Annotated[int, Depends(Limit(3))], cond: Strict) -> None:
        return None

    operation = app.openapi()["paths"]["/limited"]["get"]
    assert set(header_parameters(operation)) == PRECONDITION_HEADERS


def test_openapi_keeps_a_route_s_own_precondition_header() -> None:
    """A route that declares If-Match itself keeps its declaration, listed once."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.put("/own")
    async def own(
        cond: Strict,
        if_match: Annotated[str, Header(alias="If-Match", description="Required here")],
    ) -> None:
        return None

    parameters = app.openapi()["paths"]["/own"]["put"]["parameters"]
    names = [p["name"] for p in parameters]
    assert sorted(names) == sorted(PRECONDITION_HEADERS)
    assert header_parameters({"parameters": parameters})["If-Match"]["required"] is True


def test_openapi_precondition_headers_of_a_webhook() -> None:
    """A webhook that depends on the dependency documents the headers too."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.webhooks.post("item-changed")
    async def changed(cond: Strict) -> None:
        return None

    operation = app.openapi()["webhooks"]["item-changed"]["post"]
    assert set(header_parameters(operation)) == PRECONDITION_HEADERS


async def test_openapi_has_no_head_operations(openapi: dict[str, Any]) -> None:
    """Answering HEAD adds no operations to the document."""
    assert all("head" not in operations for operations in openapi["paths"].values())


def test_documenting_twice_changes_nothing() -> None:
    """document_problems is idempotent: a second call leaves the document as it was."""
    app = build_app()
    once = json.dumps(app.openapi(), sort_keys=True)
    document_problems(app)
    app.openapi_schema = None
    assert json.dumps(app.openapi(), sort_keys=True) == once

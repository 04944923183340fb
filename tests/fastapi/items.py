"""The items app the FastAPI tests share: three routers with the precondition profiles
of the seeds, on an in-memory store whose writes check their condition and write in one
step (no await between), as a database statement would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from optimist.conditions import Condition, ResourceState
from optimist.errors import PreconditionFailed, ResourceExists, ResourceNotFound
from optimist.etag import Comparison, EntityTag
from optimist.fastapi import (
    HeadMiddleware,
    PrecedenceRoute,
    conditional,
    install_problem_handlers,
    problem_responses,
)
from optimist.policy import PreconditionPolicy, Requirement
from optimist.starlette import ConditionalRequest, set_etag

__all__ = [
    "ADMIN_412",
    "MODIFIED",
    "PROBLEM",
    "SEED_002_400",
    "MemoryStore",
    "Strict",
    "assert_problem",
    "build_app",
    "client_for",
    "etag_of",
    "items_app",
]

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


def items_app() -> FastAPI:
    """A fresh items app with one item in each store."""
    app = build_app()
    for store in app.state.stores.values():
        store.put("1", "first")
    return app


def client_for(app: Any) -> httpx.AsyncClient:
    """A client calling ``app`` in-process, seeing 5xx responses rather than exceptions."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


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

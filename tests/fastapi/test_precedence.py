"""optimist.fastapi.precedence: RFC 9110 §13.2.1's order of checks on FastAPI, and the
lookup that keeps it without a query on the happy path."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from optimist.conditions import ResourceState
from optimist.errors import PreconditionFailed, ResourceNotFound
from optimist.etag import EntityTag
from optimist.fastapi import PrecedenceRoute, conditional, install_problem_handlers, lookup
from optimist.policy import PreconditionPolicy, Requirement
from optimist.starlette import (
    INVALID_CLOCK_DETAIL,
    ConditionalRequest,
    VectorClockMiddleware,
    client_clock,
    set_etag,
)
from optimist.vclock import VectorClock
from tests.fastapi.items import PROBLEM, assert_problem, client_for, etag_of, items_app

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


# -- lookup and PrecedenceRoute: the lookup waits for a refusal ------------------------
#
# This module has postponed annotations (``from __future__ import annotations``): the
# lookups below are annotated with names FastAPI can only resolve in this module.


class Notes:
    """Notes by key, versioned by entity-tags; counts the lookups and the writes."""

    def __init__(self) -> None:
        self.tags: dict[str, EntityTag] = {"1": EntityTag("n1")}
        self.clocks: dict[str, VectorClock] = {"1": VectorClock({"node-a": 1})}
        self.lookups = 0

    def current(self, key: str) -> ResourceState:
        """The note at ``key``, or its 404."""
        if key not in self.tags:
            raise ResourceNotFound("note", key)
        return ResourceState(exists=True, etag=self.tags[key])


def notes_of(request: Request) -> Notes:
    """The app's notes."""
    notes: Notes = request.app.state.notes
    return notes


NotesDep = Annotated[Notes, Depends(notes_of)]


async def role_of(x_role: Annotated[str | None, Header()] = None) -> str:
    """401 unless the request names a role."""
    if x_role is None:
        raise HTTPException(401, "X-Role is required")
    return x_role


Role = Annotated[str, Depends(role_of)]


async def find_note(key: str, notes: NotesDep, role: Role) -> ResourceState:
    """The note in the path, looked up (and counted)."""
    notes.lookups += 1
    return notes.current(key)


async def find_session(key: str, notes: NotesDep, request: Request) -> ResourceState:
    """The session in the path, its clock's entity-tag as its version."""
    notes.lookups += 1
    if key not in notes.clocks:
        raise ResourceNotFound("session", key)
    return ResourceState(exists=True, etag=notes.clocks[key].to_etag())


CurrentNote = Annotated[Callable[[], Awaitable[ResourceState]], Depends(lookup(find_note))]
Required = Annotated[
    ConditionalRequest,
    Depends(conditional(PreconditionPolicy({"PUT": Requirement.REQUIRED}, missing_status=428))),
]


class NoteIn(BaseModel):
    """A note's text."""

    text: str = Field(min_length=1)


class JsonOnlyRoute(PrecedenceRoute):
    """A PrecedenceRoute that refuses a body not labelled JSON before FastAPI reads it."""

    async def prepare(self, request: Request) -> Request:
        media_type = request.headers.get("content-type", "application/json")
        if self.body_field is not None and not media_type.startswith("application/json"):
            raise HTTPException(415, "The body must be JSON.")
        return request


def notes_app() -> FastAPI:
    """Notes and sessions whose writes find out whether the resource exists themselves."""
    app = FastAPI()
    app.state.notes = Notes()
    install_problem_handlers(app)
    app.add_middleware(VectorClockMiddleware, defer=True, paths=("/sessions",))
    router = APIRouter(route_class=JsonOnlyRoute)

    @router.put("/notes/{key}")
    async def put_note(
        key: str,
        note: NoteIn,
        current: CurrentNote,
        cond: Required,
        notes: NotesDep,
        response: Response,
        refuse: Annotated[str | None, Query()] = None,
    ) -> dict[str, str]:
        if len(note.text) > 20:
            raise HTTPException(413, "The note is longer than 20 characters.")
        condition = cond.write_condition()
        if refuse == "412":
            raise PreconditionFailed(None, "refused before the write")
        # The write: one step that finds out whether the note exists.
        state = notes.current(key)
        if not condition.holds(state):
            raise PreconditionFailed(state.etag)
        notes.tags[key] = EntityTag(f"n{len(notes.tags) + 2}")
        set_etag(response, notes.tags[key])
        return {"text": note.text}

    @router.get("/notes/{key}/tag")
    async def note_tag(current: CurrentNote) -> dict[str, str]:
        return {"etag": str((await current()).etag)}

    @router.patch("/sessions/{key}", dependencies=[Depends(lookup(find_session))])
    async def patch_session(key: str, request: Request, notes: NotesDep) -> Response:
        sent = client_clock(request)
        if key not in notes.clocks:
            raise ResourceNotFound("session", key)
        notes.clocks[key] = (sent or notes.clocks[key]).increment("node-a")
        return Response(status_code=204)

    app.include_router(router)
    return app


@pytest.fixture
def notes() -> FastAPI:
    """A fresh notes app, with note "1" and session "1"."""
    return notes_app()


@pytest.fixture
async def writer(notes: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the notes app that names a role."""
    transport = httpx.ASGITransport(app=notes, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"X-Role": "editor"}
    ) as client:
        yield client


JSON = {"content-type": "application/json"}
#: Each refusal that ranks below 404, as a PUT of a note that would otherwise succeed,
#: and the status it is answered with when the note exists.
NOTE_REFUSALS: dict[str, tuple[dict[str, Any], int]] = {
    "invalid-body-422": ({"content": b'{"text": ""}', "headers": JSON}, 422),
    "malformed-json-422": ({"content": b'{"text": ', "headers": JSON}, 422),
    "undecodable-body-422": ({"content": b'{"text": "\xff\xfe"}', "headers": JSON}, 422),
    "too-large-413": ({"json": {"text": "x" * 21}}, 413),
    "not-json-415": ({"content": b"text", "headers": {"content-type": "text/plain"}}, 415),
    "precondition-required-428": ({"json": {"text": "t"}, "if_match": None}, 428),
    "412-without-etag": ({"json": {"text": "t"}, "params": {"refuse": "412"}}, 412),
}


async def put_note(client: httpx.AsyncClient, key: str, refusal: str) -> httpx.Response:
    """PUT the note at ``key`` as NOTE_REFUSALS[refusal] says, with If-Match unless it says not."""
    arguments = dict(NOTE_REFUSALS[refusal][0])
    if_match = arguments.pop("if_match", '"n1"')
    headers = {**arguments.pop("headers", {}), **({"If-Match": if_match} if if_match else {})}
    return await client.put(f"/notes/{key}", headers=headers, **arguments)


@pytest.mark.parametrize("refusal", list(NOTE_REFUSALS), ids=list(NOTE_REFUSALS))
async def test_refusal_on_a_missing_resource_is_404(
    notes: FastAPI, writer: httpx.AsyncClient, refusal: str
) -> None:
    """Each refusal that ranks below 404 is a 404 when the lookup finds nothing."""
    response = await put_note(writer, "2", refusal)
    assert assert_problem(response, 404)["detail"] == "note 2 not found"
    assert notes.state.notes.lookups == 1


@pytest.mark.parametrize("refusal", list(NOTE_REFUSALS), ids=list(NOTE_REFUSALS))
async def test_refusal_on_an_existing_resource_keeps_its_status(
    notes: FastAPI, writer: httpx.AsyncClient, refusal: str
) -> None:
    """Each refusal keeps its own status once the lookup found the resource."""
    response = await put_note(writer, "1", refusal)
    assert_problem(response, NOTE_REFUSALS[refusal][1])
    assert notes.state.notes.lookups == 1


async def test_a_write_that_succeeds_looks_nothing_up(
    notes: FastAPI, writer: httpx.AsyncClient
) -> None:
    """The happy path is the write alone: the lookup is never awaited."""
    response = await writer.put("/notes/1", json={"text": "t"}, headers={"If-Match": '"n1"'})
    assert response.status_code == 200, response.text
    assert notes.state.notes.lookups == 0


async def test_a_write_to_a_missing_resource_is_its_own_404(
    notes: FastAPI, writer: httpx.AsyncClient
) -> None:
    """A valid write that finds nothing answers its own 404, without a lookup."""
    response = await writer.put("/notes/2", json={"text": "t"}, headers={"If-Match": '"n1"'})
    assert_problem(response, 404)
    assert notes.state.notes.lookups == 0


async def test_a_412_with_an_etag_looks_nothing_up(
    notes: FastAPI, writer: httpx.AsyncClient
) -> None:
    """A 412 that names the current ETag was decided on the resource: no lookup."""
    response = await writer.put("/notes/1", json={"text": "t"}, headers={"If-Match": '"old"'})
    assert assert_problem(response, 412)["current_etag"] == '"n1"'
    assert notes.state.notes.lookups == 0


async def test_a_412_without_etag_gets_the_looked_up_one(writer: httpx.AsyncClient) -> None:
    """A 412 that named no current ETag carries the one the lookup found (SPEC §2)."""
    response = await put_note(writer, "1", "412-without-etag")
    problem = assert_problem(response, 412)
    assert response.headers["etag"] == problem["current_etag"] == '"n1"'
    assert problem["detail"] == "refused before the write"


async def test_401_of_an_identity_dependency_wins_over_everything(notes: FastAPI) -> None:
    """A missing identity is 401 before a missing note, a malformed body or If-Match."""
    async with client_for(notes) as client:
        response = await client.put("/notes/2", content=b'{"text": ', headers=JSON)
    assert_problem(response, 401)
    assert notes.state.notes.lookups == 0


async def test_the_dependency_gives_the_lookup_to_the_route(
    notes: FastAPI, writer: httpx.AsyncClient
) -> None:
    """The route may await the lookup itself: it finds the current resource."""
    response = await writer.get("/notes/1/tag")
    assert response.json() == {"etag": '"n1"'}
    assert notes.state.notes.lookups == 1


def test_lookup_resolves_postponed_annotations() -> None:
    """The dependency's parameters are the lookup's, annotations resolved in its module."""
    parameters = inspect.signature(lookup(find_note)).parameters
    assert parameters["notes"].annotation == NotesDep
    assert parameters["role"].annotation == Role
    assert not any(isinstance(p.annotation, str) for p in parameters.values())


async def test_invalid_clock_on_a_missing_session_is_404(
    notes: FastAPI, writer: httpx.AsyncClient
) -> None:
    """A deferred invalid vector clock yields to the lookup: a missing session is 404."""
    response = await writer.patch("/sessions/2", headers={"If-Match": "not a clock"})
    assert_problem(response, 404)
    assert notes.state.notes.lookups == 1


async def test_invalid_clock_on_a_session_is_412_with_its_etag(writer: httpx.AsyncClient) -> None:
    """A deferred invalid vector clock is seed 000's 412, with the session's ETag."""
    response = await writer.patch("/sessions/1", headers={"If-Match": "not a clock"})
    problem = assert_problem(response, 412)
    assert problem["detail"] == INVALID_CLOCK_DETAIL
    assert response.headers["etag"] == problem["current_etag"] == '"node-a=1"'


async def test_a_lookup_may_take_the_request_itself(writer: httpx.AsyncClient) -> None:
    """A lookup with a Request parameter of its own gets the request."""
    response = await writer.patch("/sessions/1", headers={"If-Match": '"node-a=1"'})
    assert response.status_code == 204

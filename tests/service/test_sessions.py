"""The test-sessions API (SPEC §4.3, seed 000) on each backend: sessions, their clocks as
ETags, conditional reads and writes, validation, the order of checks and cursor pages."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from optimist.cursor import Cursor
from optimist.httpdate import http_date
from optimist.service.sessions import MAX_NOTES
from optimist.starlette import INVALID_CLOCK_DETAIL
from tests.support.service import Service, problem_of, running, settings_for, statements

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
SESSIONS = "/v1/tests/sessions"
NODE = "test-node"  # settings_for's node id
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
FIELDS = {"id", "building_id", "status", "notes", "created_at", "updated_at", "vector_clock"}
MISSING = f"{SESSIONS}/00000000-0000-4000-8000-000000000000"


def tag_of(clock: dict[str, int]) -> str:
    """The quoted entity-tag of a clock, as SPEC §4.3 spells it (nodes sorted)."""
    return '"' + ";".join(f"{node}={n}" for node, n in sorted(clock.items())) + '"'


def session_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The session in ``response``, after checking that its ETag is its clock."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    session: dict[str, Any] = response.json()
    assert set(session) == FIELDS
    assert response.headers["etag"] == tag_of(session["vector_clock"])
    return session


async def new_session(service: Service, **body: Any) -> dict[str, Any]:
    """Create a session (a random building unless given) and return it."""
    body = {"building_id": str(uuid.uuid4()), **body}
    return session_of(await service.client.post(SESSIONS, json=body), 201)


def url(session: dict[str, Any]) -> str:
    """The session's own URL."""
    return f"{SESSIONS}/{session['id']}"


async def current(service: Service, session: dict[str, Any]) -> dict[str, Any]:
    """The session as stored now."""
    return session_of(await service.client.get(url(session)))


# -- create ----------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_the_session(service: Service) -> None:
    """POST → 201, Location of the new session, its clock {node: 1} as ETag, status scheduled."""
    building = str(uuid.uuid4())
    response = await service.client.post(SESSIONS, json={"building_id": building})
    session = session_of(response, 201)
    assert UUID4.fullmatch(session["id"])
    assert response.headers["location"] == f"{SESSIONS}/{session['id']}"
    assert response.headers["etag"] == f'"{NODE}=1"'
    assert (session["building_id"], session["status"], session["notes"]) == (
        building,
        "scheduled",
        None,
    )
    assert session["vector_clock"] == {NODE: 1}
    assert TIMESTAMP.fullmatch(session["created_at"])
    assert TIMESTAMP.fullmatch(session["updated_at"])


async def test_create_keeps_notes(service: Service) -> None:
    """Notes given on create are stored, line breaks and astral characters included."""
    session = await new_session(service, notes="Floor 2\n\tsprinklers 🚒")
    assert (await current(service, session))["notes"] == "Floor 2\n\tsprinklers 🚒"


async def test_building_id_is_stored_in_canonical_form(service: Service) -> None:
    """An upper-case building UUID is answered lower-case, as every UUID here is."""
    building = uuid.uuid4()
    session = await new_session(service, building_id=str(building).upper())
    assert session["building_id"] == str(building)


async def test_each_create_gets_a_new_id(service: Service) -> None:
    """Two creates of the same body are two sessions."""
    building = str(uuid.uuid4())
    first = await new_session(service, building_id=building)
    second = await new_session(service, building_id=building)
    assert first["id"] != second["id"]


async def test_the_clock_is_named_after_the_node(database_url: str) -> None:
    """``--node-id`` names the node whose counter a write advances."""
    async with running(settings_for(database_url, node_id="east-1")) as east:
        session = await new_session(east)
        assert session["vector_clock"] == {"east-1": 1}


# -- read ------------------------------------------------------------------------------


async def test_read_answers_the_session_with_its_validators(service: Service) -> None:
    """GET → the representation POST answered, its clock as ETag, and Last-Modified."""
    session = await new_session(service, notes="n")
    response = await service.client.get(url(session))
    assert session_of(response) == session
    updated = datetime.fromisoformat(session["updated_at"].replace("Z", "+00:00"))
    assert response.headers["last-modified"] == http_date(updated)


async def test_head_answers_the_etag_without_a_body(service: Service) -> None:
    """HEAD → GET's status and ETag, no body."""
    session = await new_session(service)
    response = await service.client.head(url(session))
    assert response.status_code == 200
    assert response.headers["etag"] == tag_of(session["vector_clock"])
    assert response.content == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "if_none_match",
    ['"test-node=1"', 'W/"test-node=1"', '"other=1", "test-node=1"', "*"],
    ids=["strong", "weak", "list", "star"],
)
async def test_matching_if_none_match_is_304(
    service: Service, method: str, if_none_match: str
) -> None:
    """RFC 9110 §13.1.2 (weak comparison): a match → 304 with the ETag and no body."""
    session = await new_session(service)
    response = await service.client.request(
        method, url(session), headers={"If-None-Match": if_none_match}
    )
    assert response.status_code == 304
    assert response.headers["etag"] == '"test-node=1"'
    assert response.content == b""


async def test_if_none_match_of_an_older_clock_is_200(service: Service) -> None:
    """A client holding an older clock gets the new representation."""
    session = await new_session(service)
    await service.client.patch(url(session), json={"notes": "x"})
    response = await service.client.get(url(session), headers={"If-None-Match": '"test-node=1"'})
    assert session_of(response)["vector_clock"] == {NODE: 2}


@pytest.mark.parametrize(
    "path",
    [MISSING, f"{SESSIONS}/not-a-uuid", f"{SESSIONS}/{str(uuid.uuid4()).upper()}"],
    ids=["unknown", "not-a-uuid", "upper-case"],
)
async def test_unknown_session_is_404(service: Service, path: str) -> None:
    """An id no session has → 404 problem, for every method."""
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"building_id": str(uuid.uuid4()), "status": "scheduled"}
        response = await service.client.request(method, path, json=body)
        problem_of(response, 404)


# -- writes: clocks in If-Match ----------------------------------------------------------


@pytest.mark.parametrize(
    "if_match",
    ['"test-node=1"', '{"test-node": 1}', ' { "test-node" : 1 , "idle" : 0 } '],
    ids=["etag", "raw-json", "json-spelled-otherwise"],
)
async def test_write_with_the_current_clock_advances_it(service: Service, if_match: str) -> None:
    """PATCH with the stored clock (either encoding) → 200, this node's counter + 1."""
    session = await new_session(service)
    response = await service.client.patch(
        url(session), headers={"If-Match": if_match}, json={"status": "in_progress"}
    )
    updated = session_of(response)
    assert updated["vector_clock"] == {NODE: 2}
    assert response.headers["etag"] == '"test-node=2"'
    assert updated["status"] == "in_progress"
    assert updated["updated_at"] > session["updated_at"]
    assert updated["created_at"] == session["created_at"]
    assert await current(service, session) == updated


async def test_the_body_clock_is_accepted_as_sent(service: Service) -> None:
    """Seed 000's client sends the body's vector_clock as JSON in If-Match."""
    session = await new_session(service)
    clock = json.dumps(session["vector_clock"])
    response = await service.client.put(
        url(session),
        headers={"If-Match": clock},
        json={"building_id": session["building_id"], "status": "completed"},
    )
    assert session_of(response)["vector_clock"] == {NODE: 2}


async def test_stale_clock_is_412_stale_with_the_current_clock(service: Service) -> None:
    """A clock the stored one dominates → 412 "stale", current ETag and clock; nothing written."""
    session = await new_session(service)
    won = session_of(await service.client.patch(url(session), json={"notes": "first"}))
    response = await service.client.patch(
        url(session), headers={"If-Match": tag_of(session["vector_clock"])}, json={"notes": "lost"}
    )
    problem = problem_of(response, 412)
    assert problem["conflict"] == "stale"
    assert "stale" in problem["detail"]
    assert response.headers["etag"] == problem["current_etag"] == '"test-node=2"'
    assert problem["current_vector_clock"] == {NODE: 2}
    assert await current(service, session) == won


@pytest.mark.parametrize(
    "sent",
    [{"other": 1}, {NODE: 1, "other": 1}, {NODE: 9}],
    ids=["other-node", "one-more-node", "ahead"],
)
async def test_concurrent_clock_is_412_concurrent(service: Service, sent: dict[str, int]) -> None:
    """A clock not dominated by the stored one → 412 "concurrent"; nothing written."""
    session = await new_session(service)
    response = await service.client.patch(
        url(session), headers={"If-Match": json.dumps(sent)}, json={"notes": "x"}
    )
    problem = problem_of(response, 412)
    assert problem["conflict"] == "concurrent"
    assert "concurrent" in problem["detail"]
    assert problem["current_vector_clock"] == {NODE: 1}
    assert response.headers["etag"] == '"test-node=1"'
    assert await current(service, session) == session


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_unparsable_clock_is_412_with_the_seed_detail(service: Service, method: str) -> None:
    """An If-Match that is no clock → 412 "Invalid vector clock in If-Match header", ETag."""
    session = await new_session(service)
    body = {"building_id": session["building_id"], "status": "scheduled"}
    response = await service.client.request(
        method, url(session), headers={"If-Match": "not a clock"}, json=body
    )
    problem = problem_of(response, 412)
    assert problem["detail"] == INVALID_CLOCK_DETAIL
    assert response.headers["etag"] == problem["current_etag"] == '"test-node=1"'
    assert await current(service, session) == session


async def test_unparsable_clock_on_a_missing_session_is_404(service: Service) -> None:
    """SPEC §1: a missing session is a 404 before any precondition."""
    response = await service.client.patch(MISSING, headers={"If-Match": "{"}, json={"notes": "x"})
    problem_of(response, 404)


async def test_invalid_body_comes_before_an_unparsable_clock(service: Service) -> None:
    """SPEC §1: a body 422 before a precondition's 412."""
    session = await new_session(service)
    response = await service.client.patch(
        url(session), headers={"If-Match": "{"}, json={"status": "paused"}
    )
    problem_of(response, 422)


async def test_invalid_body_comes_before_a_stale_clock(service: Service) -> None:
    """SPEC §1: a body 422 before a conflict's 412."""
    session = await new_session(service)
    response = await service.client.patch(
        url(session), headers={"If-Match": '"test-node=7"'}, json={"status": "paused"}
    )
    problem_of(response, 422)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"notes": ', "application/json"),
        (b'{"status": "paused"}', "application/json"),
        (b"notes=x", "text/plain"),
        (b'{"notes": "' + b"x" * 100_000 + b'"}', "application/json"),
    ],
    ids=["malformed-json", "invalid", "not-json", "too-large"],
)
async def test_missing_session_is_404_before_a_bad_body(
    service: Service, content: bytes, content_type: str
) -> None:
    """SPEC §1: a PATCH to a missing session is a 404 whatever its body."""
    response = await service.client.patch(
        MISSING, content=content, headers={"Content-Type": content_type}
    )
    problem_of(response, 404)


async def test_write_without_if_match_is_unconditional_and_advances_the_clock(
    service: Service,
) -> None:
    """If-Match is optional here (seed 000): a write without it still advances the clock."""
    session = await new_session(service)
    await service.client.patch(url(session), json={"notes": "one"})
    response = await service.client.patch(url(session), json={"notes": "two"})
    assert session_of(response)["vector_clock"] == {NODE: 3}


async def test_if_match_star_writes_an_existing_session(service: Service) -> None:
    """RFC 9110 §13.1.1: ``If-Match: *`` holds for any current representation."""
    session = await new_session(service)
    response = await service.client.patch(
        url(session), headers={"If-Match": "*"}, json={"notes": "x"}
    )
    assert session_of(response)["vector_clock"] == {NODE: 2}


async def test_every_write_answers_a_new_etag(service: Service) -> None:
    """Ten conditional writes in a row: eleven distinct ETags, each the clock of its body."""
    session = await new_session(service)
    tags = [tag_of(session["vector_clock"])]
    for number in range(10):
        response = await service.client.patch(
            url(session), headers={"If-Match": tags[-1]}, json={"notes": str(number)}
        )
        session = session_of(response)
        tags.append(response.headers["etag"])
    assert len(set(tags)) == 11
    assert session["vector_clock"] == {NODE: 11}


# -- writes: If-None-Match and If-Unmodified-Since ---------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "*"}, 412),
        ({"If-None-Match": '"test-node=1"'}, 412),
        ({"If-None-Match": 'W/"test-node=1"'}, 412),
        ({"If-None-Match": '"test-node=5"'}, 200),
        ({"If-None-Match": "garbage"}, 200),
        ({"If-Match": '"test-node=1"', "If-None-Match": '"test-node=1"'}, 412),
        ({"If-Match": "*", "If-None-Match": "*"}, 412),
        ({"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 412),
        ({"If-Unmodified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"}, 200),
        ({"If-Unmodified-Since": "yesterday"}, 200),
        (
            {"If-Match": '"test-node=1"', "If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
            200,
        ),
        ({"If-Match": "*", "If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 200),
    ],
    ids=[
        "inm-star",
        "inm-current",
        "inm-current-weak",
        "inm-other",
        "inm-malformed",
        "im-and-inm-current",
        "im-star-and-inm-star",
        "ius-past",
        "ius-future",
        "ius-invalid-date",
        "ius-ignored-with-if-match",
        "ius-ignored-with-if-match-star",
    ],
)
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_other_preconditions_on_writes(
    service: Service, method: str, headers: dict[str, str], status: int
) -> None:
    """RFC 9110 §13.2.2 on a write: If-None-Match and If-Unmodified-Since count too."""
    session = await new_session(service)
    response = await service.client.request(
        method, url(session), headers=headers, json={"notes": "x"} if method == "PATCH" else None
    )
    if status == 412:
        problem = problem_of(response, 412)
        assert "conflict" not in problem
        assert response.headers["etag"] == problem["current_etag"] == '"test-node=1"'
        assert await current(service, session) == session
    else:
        assert response.status_code == (204 if method == "DELETE" else 200), response.text


async def test_a_stale_clock_fails_as_a_conflict_before_if_none_match(service: Service) -> None:
    """RFC 9110 §13.2.2: If-Match is step 1, so its conflict is what the 412 says."""
    session = await new_session(service)
    await service.client.patch(url(session), json={"notes": "x"})
    response = await service.client.patch(
        url(session),
        headers={"If-Match": '"test-node=1"', "If-None-Match": "*"},
        json={"notes": "y"},
    )
    assert problem_of(response, 412)["conflict"] == "stale"


# -- PUT and PATCH bodies ----------------------------------------------------------------


async def test_put_replaces_every_editable_field(service: Service) -> None:
    """PUT sets building_id, status and notes; notes left out are cleared."""
    session = await new_session(service, notes="old")
    building = str(uuid.uuid4())
    response = await service.client.put(
        url(session), json={"building_id": building, "status": "cancelled"}
    )
    updated = session_of(response)
    assert (updated["building_id"], updated["status"], updated["notes"]) == (
        building,
        "cancelled",
        None,
    )
    assert updated["id"] == session["id"]


async def test_patch_changes_only_what_it_names(service: Service) -> None:
    """PATCH {"status"} keeps building_id and notes."""
    session = await new_session(service, notes="keep")
    updated = session_of(await service.client.patch(url(session), json={"status": "completed"}))
    assert (updated["building_id"], updated["status"], updated["notes"]) == (
        session["building_id"],
        "completed",
        "keep",
    )


async def test_patch_null_notes_clears_them(service: Service) -> None:
    """A merge patch's null removes the member (RFC 7396 §1): notes → null."""
    session = await new_session(service, notes="gone soon")
    response = await service.client.patch(
        url(session),
        content=b'{"notes": null}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert session_of(response)["notes"] is None


@pytest.mark.parametrize("status", ["scheduled", "in_progress", "completed", "cancelled"])
async def test_every_status_can_be_set(service: Service, status: str) -> None:
    """The four statuses of SPEC §4.3, with no transition rule between them."""
    session = await new_session(service)
    await service.client.patch(url(session), json={"status": "completed"})
    updated = session_of(await service.client.patch(url(session), json={"status": status}))
    assert updated["status"] == status


BUILDING = "6f1c1e4e-5a2b-4c3d-8e9f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "body.building_id"),
        ({"building_id": "not-a-uuid"}, "body.building_id"),
        ({"building_id": 7}, "body.building_id"),
        ({"building_id": None}, "body.building_id"),
        ({"building_id": "{" + BUILDING + "}"}, "body.building_id"),
        ({"building_id": BUILDING.replace("-", "")}, "body.building_id"),
        ({"building_id": "urn:uuid:" + BUILDING}, "body.building_id"),
        ({"building_id": BUILDING, "notes": "x" * (MAX_NOTES + 1)}, "body.notes"),
        ({"building_id": BUILDING, "notes": "nul\x00"}, "body.notes"),
        ({"building_id": BUILDING, "notes": 5}, "body.notes"),
        ({"building_id": BUILDING, "status": "in_progress"}, "body.status"),
        ({"building_id": BUILDING, "id": BUILDING}, "body.id"),
        ({"building_id": BUILDING, "vector_clock": {"a": 1}}, "body.vector_clock"),
        ([BUILDING], "body"),
    ],
    ids=[
        "no-building",
        "not-a-uuid",
        "number",
        "null",
        "braces",
        "no-hyphens",
        "urn",
        "long-notes",
        "nul-in-notes",
        "number-notes",
        "status-on-create",
        "client-id",
        "client-clock",
        "array",
    ],
)
async def test_invalid_create_is_422_naming_the_member(
    service: Service, body: Any, name: str
) -> None:
    """A create body that fails validation → 422 naming the member; nothing created."""
    before = await list_all(service)
    problem = problem_of(await service.client.post(SESSIONS, json=body), 422)
    assert name in [param["name"] for param in problem["invalid_params"]]
    assert await list_all(service) == before


@pytest.mark.parametrize(
    ("method", "body", "name"),
    [
        ("PATCH", {"status": "paused"}, "body.status"),
        ("PATCH", {"status": None}, "body.status"),
        ("PATCH", {"building_id": None}, "body.building_id"),
        ("PATCH", {"building_id": "x"}, "body.building_id"),
        ("PATCH", {"colour": "red"}, "body.colour"),
        ("PATCH", {"updated_at": "2020-01-01T00:00:00Z"}, "body.updated_at"),
        ("PATCH", {"status": "COMPLETED"}, "body.status"),
        ("PUT", {"status": "completed"}, "body.building_id"),
        ("PUT", {"building_id": str(uuid.uuid4())}, "body.status"),
        ("PUT", [], "body"),
    ],
    ids=[
        "unknown-status",
        "null-status",
        "null-building",
        "bad-building",
        "unknown-member",
        "server-owned",
        "status-case",
        "put-without-building",
        "put-without-status",
        "put-array",
    ],
)
async def test_invalid_write_is_422_naming_the_member(
    service: Service, method: str, body: Any, name: str
) -> None:
    """A PUT/PATCH body that fails validation → 422 naming the member; nothing written."""
    session = await new_session(service)
    response = await service.client.request(method, url(session), json=body)
    problem = problem_of(response, 422)
    assert name in [param["name"] for param in problem["invalid_params"]]
    assert await current(service, session) == session


# -- DELETE ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"If-Match": '"test-node=1"'}, {"If-Match": '{"test-node":1}'}, {"If-Match": "*"}, {}],
    ids=["etag", "raw-json", "star", "none"],
)
async def test_delete_is_204_and_the_session_is_gone(
    service: Service, headers: dict[str, str]
) -> None:
    """DELETE → 204 without a body; then GET → 404."""
    session = await new_session(service)
    response = await service.client.delete(url(session), headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    problem_of(await service.client.get(url(session)), 404)


async def test_delete_with_a_stale_clock_is_412_and_keeps_the_session(service: Service) -> None:
    """A DELETE whose clock is stale → 412 "stale"; the session stays."""
    session = await new_session(service)
    updated = session_of(await service.client.patch(url(session), json={"notes": "x"}))
    response = await service.client.delete(url(session), headers={"If-Match": '"test-node=1"'})
    assert problem_of(response, 412)["conflict"] == "stale"
    assert await current(service, session) == updated


async def test_delete_of_a_deleted_session_is_404(service: Service) -> None:
    """The second DELETE finds nothing: 404."""
    session = await new_session(service)
    await service.client.delete(url(session))
    problem_of(await service.client.delete(url(session)), 404)


# -- hot paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", None, ["SELECT"]),
        ("PATCH", {"notes": "x"}, ["UPDATE"]),
        ("PUT", {"status": "completed"}, ["UPDATE"]),
        ("DELETE", None, ["DELETE"]),
    ],
    ids=["get", "patch", "put", "delete"],
)
async def test_a_read_or_a_write_with_a_clock_is_one_statement(
    service: Service, method: str, body: dict[str, Any] | None, expected: list[str]
) -> None:
    """The hot paths: one SELECT for a read, one conditional statement for a write."""
    session = await new_session(service)
    if body is not None and method == "PUT":
        body = {**body, "building_id": session["building_id"]}
    with statements(service) as counter:
        response = await service.client.request(
            method, url(session), headers={"If-Match": '"test-node=1"'}, json=body
        )
    assert response.status_code < 300, response.text
    assert counter == expected


# -- lists -----------------------------------------------------------------------------


async def list_all(service: Service, limit: int = 100) -> list[dict[str, Any]]:
    """Every session, page by page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await service.client.get(SESSIONS, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["data"])
        if page["next_cursor"] is None:
            return items
        params = {"limit": limit, "cursor": page["next_cursor"]}


async def test_list_is_data_and_next_cursor(service: Service) -> None:
    """GET → {"data": [...], "next_cursor": null} on one page, each item as GET shows it."""
    session = await new_session(service)
    response = await service.client.get(SESSIONS)
    assert response.status_code == 200
    assert response.json() == {"data": [session], "next_cursor": None}


async def test_an_empty_list_has_no_cursor(service: Service) -> None:
    """No sessions (the demo data has none) → an empty page and no cursor."""
    assert (await service.client.get(SESSIONS)).json() == {"data": [], "next_cursor": None}


async def test_default_limit_is_20(service: Service) -> None:
    """Without limit a page holds 20 sessions."""
    for _ in range(21):
        await new_session(service)
    page = (await service.client.get(SESSIONS)).json()
    assert len(page["data"]) == 20
    assert isinstance(page["next_cursor"], str)


async def test_pages_cover_every_session_once_in_creation_order(service: Service) -> None:
    """limit=2 over seven sessions: four pages, each session once, oldest first."""
    made = [(await new_session(service))["id"] for _ in range(7)]
    assert [item["id"] for item in await list_all(service, limit=2)] == made


async def test_a_traversal_reads_the_snapshot_of_its_first_page(service: Service) -> None:
    """Created, updated and deleted between pages: no duplicate, nothing skipped."""
    made = [await new_session(service) for _ in range(6)]
    first = (await service.client.get(SESSIONS, params={"limit": 2})).json()
    await new_session(service)
    await service.client.patch(url(made[3]), json={"status": "completed"})
    await service.client.delete(url(made[4]))
    seen = [item["id"] for item in first["data"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = (await service.client.get(SESSIONS, params={"limit": 2, "cursor": cursor})).json()
        seen.extend(item["id"] for item in page["data"])
        cursor = page["next_cursor"]
    assert seen == [s["id"] for s in made if s is not made[4]]


@pytest.mark.parametrize(
    "limit", ["0", "101", "-1", "abc", "1.5", "1e2", "", "99999999999999999999999"], ids=repr
)
async def test_bad_limit_is_422_with_invalid_params(service: Service, limit: str) -> None:
    """limit outside 1–100, or not an integer → 422 naming query.limit."""
    problem = problem_of(await service.client.get(SESSIONS, params={"limit": limit}), 422)
    assert [param["name"] for param in problem["invalid_params"]] == ["query.limit"]


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage", "a.b", "x" * 5000, "eyJ9.AAAA", "\u00e9\u00e9"],
    ids=["empty", "garbage", "dotted", "huge", "bad-signature", "non-ascii"],
)
async def test_bad_cursor_is_400(service: Service, cursor: str) -> None:
    """A cursor the service did not issue → 400 problem naming the cursor."""
    problem = problem_of(await service.client.get(SESSIONS, params={"cursor": cursor}), 400)
    assert problem["invalid_params"][0]["name"] == "cursor"


async def test_tampered_cursor_is_400(service: Service) -> None:
    """Changing one character of a genuine cursor → 400."""
    await new_session(service)
    await new_session(service)
    token = (await service.client.get(SESSIONS, params={"limit": 1})).json()["next_cursor"]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    problem_of(await service.client.get(SESSIONS, params={"cursor": flipped}), 400)


async def test_foreign_cursor_is_400(service: Service) -> None:
    """A genuine cursor of another listing (projects) → 400."""
    token = service.runtime.cursors.encode(
        Cursor((1,), 1, datetime.now(UTC)), query="GET /projects"
    )
    problem_of(await service.client.get(SESSIONS, params={"cursor": token}), 400)


@pytest.mark.parametrize("position", [("x",), (1, 2), (True,), (), (1.5,), (None,)], ids=repr)
async def test_a_cursor_of_another_shape_is_400(
    service: Service, position: tuple[Any, ...]
) -> None:
    """A genuine cursor for this listing whose position is not one → 400."""
    token = service.runtime.cursors.encode(
        Cursor(position, 1, datetime.now(UTC)), query=f"GET {SESSIONS}"
    )
    problem_of(await service.client.get(SESSIONS, params={"cursor": token}), 400)


async def test_expired_cursor_is_410(service: Service) -> None:
    """A cursor whose snapshot is older than cursor_max_age → 410 Gone."""
    old = datetime.now(UTC) - service.runtime.settings.cursor_max_age - timedelta(seconds=5)
    token = service.runtime.cursors.encode(Cursor((1,), 1, old), query=f"GET {SESSIONS}")
    problem_of(await service.client.get(SESSIONS, params={"cursor": token}), 410)


async def test_a_cursor_within_its_max_age_still_works(service: Service) -> None:
    """A snapshot younger than cursor_max_age continues."""
    recent = datetime.now(UTC) - service.runtime.settings.cursor_max_age + timedelta(minutes=1)
    token = service.runtime.cursors.encode(Cursor((0,), 10, recent), query=f"GET {SESSIONS}")
    assert (await service.client.get(SESSIONS, params={"cursor": token})).status_code == 200


# -- OpenAPI ---------------------------------------------------------------------------


async def test_openapi_documents_the_routes_and_their_problems(service: Service) -> None:
    """/openapi.json lists the six operations, their bodies and problem responses."""
    document = (await service.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths[SESSIONS]) == {"get", "post"}
    item = paths[f"{SESSIONS}/{{session_id}}"]
    assert set(item) == {"get", "put", "patch", "delete"}
    assert {"304", "404"} <= set(item["get"]["responses"])
    for method in ("put", "patch", "delete"):
        assert {"404", "412"} <= set(item[method]["responses"])
    assert "application/merge-patch+json" in item["patch"]["requestBody"]["content"]
    assert {"400", "410", "422"} <= set(paths[SESSIONS]["get"]["responses"])
    assert "application/json" in paths[SESSIONS]["post"]["requestBody"]["content"]

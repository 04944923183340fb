"""The projects API (SPEC §4.2, seed 003) on each backend: the seed's examples verbatim,
conditional requests, the status machine, validation, pages and the order of checks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from optimist.etag import EntityTag
from optimist.httpdate import http_date
from optimist.service.projects import TRANSITIONS, mismatch_detail, sources
from tests.support.service import Service, problem_of, statements

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
HEX16 = re.compile(r"[0-9a-f]{16}")
DEMO = "/projects/proj_abc123"
STATUSES = ("draft", "estimating", "submitted", "accepted", "rejected")
# Seed 003's status machine, spelled out again so the table is checked, not copied.
ALLOWED = {
    ("draft", "estimating"),
    ("estimating", "submitted"),
    ("submitted", "accepted"),
    ("submitted", "rejected"),
    ("estimating", "draft"),
    ("submitted", "estimating"),
    ("rejected", "draft"),
}
# The shortest path from draft to each status, through allowed transitions.
PATH = {
    "draft": [],
    "estimating": ["estimating"],
    "submitted": ["estimating", "submitted"],
    "accepted": ["estimating", "submitted", "accepted"],
    "rejected": ["estimating", "submitted", "rejected"],
}


def result_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The project in a ``{"result": ...}`` envelope, after checking the ETag header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    envelope = response.json()
    assert set(envelope) == {"result"}
    project: dict[str, Any] = envelope["result"]
    assert HEX16.fullmatch(project["etag"])
    assert response.headers["etag"] == f'"{project["etag"]}"'
    return project


async def new_project(service: Service, **body: Any) -> dict[str, Any]:
    """Create a project (name "Test" unless given) and return its representation."""
    response = await service.client.post("/projects", json={"name": "Test", **body})
    return result_of(response, 201)


async def walk(service: Service, project: dict[str, Any], status: str) -> dict[str, Any]:
    """Move a draft project to ``status`` along allowed transitions."""
    for step in PATH[status]:
        response = await service.client.put(
            f"/projects/{project['project_id']}", json={"status": step}
        )
        project = result_of(response)
    return project


async def current(service: Service, project_id: str) -> dict[str, Any]:
    """The project as stored now."""
    return result_of(await service.client.get(f"/projects/{project_id}"))


# -- seed 003, verbatim ------------------------------------------------------------------


async def test_seed_fetch_project(service: Service) -> None:
    """Seed 003 step 1: GET /projects/proj_abc123 → the envelope and the ETag header."""
    response = await service.client.get("/projects/proj_abc123")
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["project_id"] == "proj_abc123"
    assert result["name"] == "Main Street Sign"
    assert result["status"] == "draft"
    assert HEX16.fullmatch(result["etag"])
    assert response.headers["ETag"] == f'"{result["etag"]}"'


async def test_seed_update_project_with_the_body_etag(service: Service) -> None:
    """Seed 003 step 2: PUT with If-Match copied from the body's etag → 200, a new etag."""
    old = (await service.client.get("/projects/proj_abc123")).json()["result"]["etag"]
    response = await service.client.put(
        "/projects/proj_abc123",
        headers={"If-Match": old, "Content-Type": "application/json"},
        content=b'{\n  "name": "Updated Main Street Sign"\n}',
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["project_id"] == "proj_abc123"
    assert result["name"] == "Updated Main Street Sign"
    assert result["status"] == "draft"
    assert HEX16.fullmatch(result["etag"])
    assert result["etag"] != old
    assert response.headers["ETag"] == f'"{result["etag"]}"'


async def test_seed_concurrent_update_conflict(service: Service) -> None:
    """Seed 003 step 3: user A's PUT with the old etag → 412, the mismatch and current ETag."""
    old = (await service.client.get("/projects/proj_abc123")).json()["result"]["etag"]
    won = await service.client.put(
        "/projects/proj_abc123", headers={"If-Match": old}, json={"name": "B's name"}
    )
    new = won.json()["result"]["etag"]
    response = await service.client.put(
        "/projects/proj_abc123", headers={"If-Match": old}, json={"name": "A's name"}
    )
    problem = problem_of(response, 412)
    assert problem["detail"] == f"ETag mismatch: expected {new}, got {old}"
    assert problem["title"] == "Precondition Failed"
    assert response.headers["ETag"] == f'"{new}"'
    assert problem["current_etag"] == f'"{new}"'
    assert (await current(service, "proj_abc123"))["name"] == "B's name"


async def test_seed_manual_test_curl_steps(service: Service) -> None:
    """Seed 003's curl steps, sent as curl -d sends them (form content type, JSON text)."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    created = await service.client.post("/projects", headers=form, content=b'{"name":"Test"}')
    project_id = created.json()["result"]["project_id"]
    etag = (await service.client.get(f"/projects/{project_id}")).json()["result"]["etag"]
    old_etag = etag
    updated = await service.client.put(
        f"/projects/{project_id}",
        headers={**form, "If-Match": etag},
        content=b'{"name":"Updated"}',
    )
    assert updated.status_code == 200  # "Should succeed"
    stale = await service.client.put(
        f"/projects/{project_id}",
        headers={**form, "If-Match": old_etag},
        content=b'{"name":"Concurrent"}',
    )
    assert stale.status_code == 412  # "Should return 412"
    assert (await current(service, project_id))["name"] == "Updated"


async def test_etag_optimistic_locking(service: Service) -> None:
    """Seed 003's unit test: a valid etag updates (200), the stale one is a 412 mismatch."""
    project = await new_project(service)
    etag = project["etag"]

    async def update_project(project_id: str, body: dict[str, str], tag: str) -> httpx.Response:
        return await service.client.put(
            f"/projects/{project_id}", json=body, headers={"If-Match": tag}
        )

    updated = await update_project(project["project_id"], {"name": "New"}, etag)
    assert updated.status_code == 200
    conflict = await update_project(project["project_id"], {"name": "Conflict"}, etag)
    assert conflict.status_code == 412
    assert "ETag mismatch" in conflict.json()["detail"]


# -- create ----------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_the_envelope(service: Service) -> None:
    """POST /projects → 201, Location of the new project, its ETag, status draft."""
    response = await service.client.post(
        "/projects", json={"name": "Sign", "customer": "ACME", "description": "Two sided"}
    )
    project = result_of(response, 201)
    assert re.fullmatch(r"proj_[0-9a-f]{16}", project["project_id"])
    assert response.headers["location"] == f"/projects/{project['project_id']}"
    assert set(project) == {
        "project_id",
        "name",
        "customer",
        "description",
        "status",
        "metadata",
        "created_at",
        "updated_at",
        "etag",
    }
    assert (project["name"], project["customer"], project["description"]) == (
        "Sign",
        "ACME",
        "Two sided",
    )
    assert project["status"] == "draft"
    fetched = await service.client.get(response.headers["location"])
    assert result_of(fetched) == project


async def test_create_leaves_optional_fields_null(service: Service) -> None:
    """customer and description are null unless given."""
    project = await new_project(service)
    assert project["customer"] is None
    assert project["description"] is None


async def test_timestamps_are_rfc3339_utc(service: Service) -> None:
    """created_at and updated_at are RFC 3339 UTC; an update moves updated_at only."""
    project = await new_project(service)
    created = datetime.fromisoformat(project["created_at"])
    assert created.utcoffset() == timedelta(0)
    updated = result_of(
        await service.client.put(f"/projects/{project['project_id']}", json={"name": "B"})
    )
    assert updated["created_at"] == project["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", updated["updated_at"])
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(
        project["updated_at"]
    )


async def test_every_create_gets_its_own_id_and_etag(service: Service) -> None:
    """Two creates with one body are two projects with different ids and ETags."""
    first, second = await new_project(service), await new_project(service)
    assert first["project_id"] != second["project_id"]
    assert first["etag"] != second["etag"]


# -- read ------------------------------------------------------------------------------


async def test_get_sets_last_modified(service: Service) -> None:
    """GET carries Last-Modified, the IMF-fixdate of updated_at."""
    response = await service.client.get(DEMO)
    project = result_of(response)
    assert response.headers["last-modified"] == http_date(
        datetime.fromisoformat(project["updated_at"])
    )


async def test_get_is_one_query(service: Service) -> None:
    """A single-resource GET costs one SELECT."""
    with statements(service) as seen:
        result_of(await service.client.get(DEMO))
    assert seen == ["SELECT"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("form", ["quoted", "bare", "weak", "listed"])
async def test_matching_if_none_match_is_304(service: Service, method: str, form: str) -> None:
    """If-None-Match naming the current tag (any form, weakly compared) → 304, no body."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    sent = {
        "quoted": f'"{etag}"',
        "bare": etag,
        "weak": f'W/"{etag}"',
        "listed": f'"other", "{etag}"',
    }[form]
    response = await service.client.request(method, DEMO, headers={"If-None-Match": sent})
    assert response.status_code == 304
    assert response.headers["etag"] == f'"{etag}"'
    assert response.content == b""


async def test_if_none_match_star_is_304_on_get(service: Service) -> None:
    """If-None-Match: * on an existing project is 304 (RFC 9110 §13.1.2)."""
    response = await service.client.get(DEMO, headers={"If-None-Match": "*"})
    assert response.status_code == 304


async def test_stale_if_none_match_reads_normally(service: Service) -> None:
    """If-None-Match naming another tag gives the full 200."""
    response = await service.client.get(DEMO, headers={"If-None-Match": '"0000000000000000"'})
    assert result_of(response)["project_id"] == "proj_abc123"


async def test_head_answers_like_get_without_a_body(service: Service) -> None:
    """HEAD of a project: GET's status and headers, no content."""
    get = await service.client.get(DEMO)
    head = await service.client.head(DEMO)
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.content == b""


@pytest.mark.parametrize(
    ("if_match", "status"),
    [("*", 200), ("current", 200), ("bare", 200), ('"0000000000000000"', 412)],
    ids=["star", "quoted", "bare", "stale"],
)
async def test_if_match_on_get(service: Service, if_match: str, status: int) -> None:
    """If-Match on GET: * and the current tag proceed, another tag is a 412."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    sent = {"current": f'"{etag}"', "bare": etag}.get(if_match, if_match)
    response = await service.client.get(DEMO, headers={"If-Match": sent})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("offset", "status"),
    [(timedelta(hours=1), 304), (timedelta(hours=-1), 200)],
    ids=["not-modified-since", "modified-since"],
)
async def test_if_modified_since_on_get(service: Service, offset: timedelta, status: int) -> None:
    """If-Modified-Since after updated_at → 304; before it → 200."""
    project = result_of(await service.client.get(DEMO))
    since = http_date(datetime.fromisoformat(project["updated_at"]) + offset)
    response = await service.client.get(DEMO, headers={"If-Modified-Since": since})
    assert response.status_code == status


@pytest.mark.parametrize(
    ("offset", "status"),
    [(timedelta(hours=-1), 412), (timedelta(hours=1), 200)],
    ids=["modified-since", "unmodified-since"],
)
async def test_if_unmodified_since_on_get(service: Service, offset: timedelta, status: int) -> None:
    """If-Unmodified-Since before updated_at → 412 with the current ETag; after it → 200."""
    project = result_of(await service.client.get(DEMO))
    since = http_date(datetime.fromisoformat(project["updated_at"]) + offset)
    response = await service.client.get(DEMO, headers={"If-Unmodified-Since": since})
    assert response.status_code == status
    if status == 412:
        assert response.headers["etag"] == f'"{project["etag"]}"'


async def test_unknown_project_is_404(service: Service) -> None:
    """GET of a project that does not exist → 404 problem."""
    problem = problem_of(await service.client.get("/projects/proj_missing"), 404)
    assert problem["detail"] == "project proj_missing not found"


async def test_an_id_the_service_cannot_issue_is_404_without_a_query(service: Service) -> None:
    """A malformed id is a 404 answered before any statement."""
    with statements(service) as seen:
        problem_of(await service.client.get("/projects/not-a-project"), 404)
    assert seen == []


# -- update ----------------------------------------------------------------------------


async def test_put_without_if_match_updates(service: Service) -> None:
    """If-Match is optional on PUT: without it the update is unconditional."""
    project = await new_project(service)
    updated = result_of(
        await service.client.put(f"/projects/{project['project_id']}", json={"name": "B"})
    )
    assert updated["name"] == "B"
    assert updated["etag"] != project["etag"]


async def test_put_changes_only_the_fields_given(service: Service) -> None:
    """Fields left out keep their values; null clears customer and description."""
    project = await new_project(service, customer="ACME", description="Text")
    path = f"/projects/{project['project_id']}"
    updated = result_of(await service.client.put(path, json={"description": None}))
    assert (updated["name"], updated["customer"], updated["description"]) == (
        "Test",
        "ACME",
        None,
    )
    updated = result_of(await service.client.put(path, json={"customer": "Other"}))
    assert (updated["name"], updated["customer"]) == ("Test", "Other")


@pytest.mark.parametrize("form", ["quoted", "bare", "star", "listed"])
async def test_put_accepts_if_match_in_every_form(service: Service, form: str) -> None:
    """If-Match quoted, bare (seed 003's client), * or in a list: a match writes."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    sent = {"quoted": f'"{etag}"', "bare": etag, "star": "*", "listed": f'"x", {etag}'}[form]
    response = await service.client.put(DEMO, headers={"If-Match": sent}, json={"name": form})
    assert result_of(response)["name"] == form


async def test_if_match_is_compared_strongly(service: Service) -> None:
    """A weak tag never matches in If-Match (RFC 9110 §13.1.1): 412."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    response = await service.client.put(DEMO, headers={"If-Match": f'W/"{etag}"'}, json={})
    problem = problem_of(response, 412)
    assert problem["detail"] == f'ETag mismatch: expected {etag}, got W/"{etag}"'


async def test_every_write_changes_the_etag(service: Service) -> None:
    """Writing the same values again still gives a new ETag."""
    seen = {result_of(await service.client.get(DEMO))["etag"]}
    for _ in range(5):
        seen.add(result_of(await service.client.put(DEMO, json={"name": "Same"}))["etag"])
    assert len(seen) == 6


async def test_successful_conditional_put_is_one_statement(service: Service) -> None:
    """A PUT whose If-Match matches costs one UPDATE, and no read."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    with statements(service) as seen:
        response = await service.client.put(
            DEMO, headers={"If-Match": etag}, json={"status": "estimating"}
        )
    result_of(response)
    assert seen == ["UPDATE"]


async def test_put_to_unknown_project_is_404(service: Service) -> None:
    """PUT of a project that does not exist → 404, with or without If-Match."""
    for headers in ({}, {"If-Match": '"0000000000000000"'}):
        response = await service.client.put(
            "/projects/proj_missing", headers=headers, json={"name": "x"}
        )
        problem_of(response, 404)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ("If-None-Match", "*"),
        ("If-None-Match", "current"),
    ],
    ids=["unmodified-since-past", "none-match-star", "none-match-current"],
)
async def test_other_failing_preconditions_are_412(
    service: Service, header: str, value: str
) -> None:
    """If-Unmodified-Since before the last write, or If-None-Match matching, fail a PUT."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    sent = f'"{etag}"' if value == "current" else value
    response = await service.client.put(DEMO, headers={header: sent}, json={"name": "x"})
    problem = problem_of(response, 412)
    assert response.headers["etag"] == f'"{etag}"'
    assert problem["current_etag"] == f'"{etag}"'
    assert problem["detail"] == (
        f"Precondition failed: the project has changed; its current ETag is {etag}"
    )
    assert (await current(service, "proj_abc123"))["name"] == "Main Street Sign"


async def test_if_unmodified_since_after_the_last_write_proceeds(service: Service) -> None:
    """If-Unmodified-Since at or after updated_at lets the PUT write."""
    project = result_of(await service.client.get(DEMO))
    since = http_date(datetime.fromisoformat(project["updated_at"]) + timedelta(seconds=1))
    response = await service.client.put(
        DEMO, headers={"If-Unmodified-Since": since}, json={"name": "x"}
    )
    assert result_of(response)["name"] == "x"


async def test_malformed_if_match_is_412(service: Service) -> None:
    """A malformed If-Match evaluates false: 412 naming what was sent."""
    response = await service.client.put(DEMO, headers={"If-Match": '"unterminated'}, json={})
    problem = problem_of(response, 412)
    assert problem["detail"].endswith('got "unterminated')


# -- status machine --------------------------------------------------------------------


def test_the_transition_table_is_seed_003s() -> None:
    """The service's table is exactly the seed's seven transitions."""
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize("target", STATUSES)
def test_sources_are_the_target_and_its_predecessors(target: str) -> None:
    """A status may be set from itself or from a status with a transition to it."""
    assert set(sources(target)) == {target} | {a for a, b in ALLOWED if b == target}


PAIRS = [(a, b) for a in STATUSES for b in STATUSES]


@pytest.mark.parametrize(("origin", "target"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
async def test_status_machine(service: Service, origin: str, target: str) -> None:
    """Every (from, to): allowed or unchanged → 200; otherwise 422 and nothing written."""
    project = await walk(service, await new_project(service), origin)
    response = await service.client.put(
        f"/projects/{project['project_id']}",
        headers={"If-Match": project["etag"]},
        json={"status": target},
    )
    if origin == target or (origin, target) in ALLOWED:
        assert result_of(response)["status"] == target
        return
    problem = problem_of(response, 422)
    assert problem["detail"] == f"Invalid transition: {origin} → {target}"
    assert problem["current_status"] == origin
    assert problem["allowed_statuses"] == sorted(b for a, b in ALLOWED if a == origin)
    assert await current(service, project["project_id"]) == project


async def test_seed_invalid_transition_detail(service: Service) -> None:
    """Seed 003's example: draft → accepted is "Invalid transition: draft → accepted"."""
    response = await service.client.put(DEMO, json={"status": "accepted"})
    assert problem_of(response, 422)["detail"] == "Invalid transition: draft → accepted"


async def test_stale_if_match_is_decided_before_the_transition_rule(service: Service) -> None:
    """RFC 9110 §13.2.1: an invalid transition with a stale If-Match is a 412, not 422."""
    response = await service.client.put(
        DEMO, headers={"If-Match": '"0000000000000000"'}, json={"status": "accepted"}
    )
    problem_of(response, 412)


async def test_a_transition_and_other_fields_apply_together(service: Service) -> None:
    """A PUT may change the status and other fields in one write."""
    response = await service.client.put(DEMO, json={"status": "estimating", "name": "N"})
    project = result_of(response)
    assert (project["status"], project["name"]) == ("estimating", "N")


async def test_an_invalid_transition_writes_none_of_the_fields(service: Service) -> None:
    """A refused transition leaves the other fields of the request unwritten too."""
    before = await current(service, "proj_abc123")
    problem_of(await service.client.put(DEMO, json={"status": "accepted", "name": "N"}), 422)
    assert await current(service, "proj_abc123") == before


# -- delete ----------------------------------------------------------------------------


async def test_delete_with_the_current_etag_is_204(service: Service) -> None:
    """DELETE with If-Match (bare, as the body gives it) → 204; the project is gone."""
    project = await new_project(service)
    path = f"/projects/{project['project_id']}"
    response = await service.client.delete(path, headers={"If-Match": project["etag"]})
    assert response.status_code == 204
    assert response.content == b""
    problem_of(await service.client.get(path), 404)


async def test_delete_without_if_match_is_428_saying_how_to_resubmit(service: Service) -> None:
    """DELETE requires If-Match: 428 Precondition Required, and the project stays."""
    response = await service.client.delete(DEMO)
    problem = problem_of(response, 428)
    assert problem["title"] == "Precondition Required"
    assert problem["detail"] == (
        "DELETE requires an If-Match header: GET the project, then resend the DELETE "
        "with If-Match set to its ETag"
    )
    assert problem["invalid_params"] == [{"name": "If-Match", "reason": "required"}]
    result_of(await service.client.get(DEMO))


async def test_delete_with_a_stale_etag_is_412(service: Service) -> None:
    """DELETE with a stale If-Match → 412 with the current ETag; the project stays."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    response = await service.client.delete(DEMO, headers={"If-Match": "0000000000000000"})
    problem = problem_of(response, 412)
    assert problem["detail"] == f"ETag mismatch: expected {etag}, got 0000000000000000"
    assert response.headers["etag"] == f'"{etag}"'
    result_of(await service.client.get(DEMO))


@pytest.mark.parametrize("headers", [{}, {"If-Match": "*"}], ids=["no-if-match", "star"])
async def test_delete_of_an_unknown_project_is_404_before_428(
    service: Service, headers: dict[str, str]
) -> None:
    """A missing project is a 404 whether or not If-Match was sent (SPEC §1)."""
    problem_of(await service.client.delete("/projects/proj_missing", headers=headers), 404)


async def test_a_successful_delete_is_one_statement(service: Service) -> None:
    """DELETE with a matching If-Match costs one DELETE statement."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    with statements(service) as seen:
        response = await service.client.delete(DEMO, headers={"If-Match": etag})
    assert response.status_code == 204
    assert seen == ["DELETE"]


# -- validation and the order of checks -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
        ({"name": 7}, "body.name"),
        ({"name": "a\x00b"}, "body.name"),
        ({"name": "line\nbreak"}, "body.name"),
        ({"name": "ok", "customer": "c" * 201}, "body.customer"),
        ({"name": "ok", "description": "d" * 10_001}, "body.description"),
        ({"name": "ok", "status": "accepted"}, "body.status"),
        ({"name": "ok", "project_id": "proj_mine"}, "body.project_id"),
        ({"name": "ok", "etag": "0000000000000000"}, "body.etag"),
        (["name"], "body"),
    ],
    ids=[
        "missing-name",
        "empty-name",
        "long-name",
        "number-name",
        "nul",
        "newline-in-name",
        "long-customer",
        "long-description",
        "status-on-create",
        "client-id",
        "client-etag",
        "array",
    ],
)
async def test_invalid_create_is_422_with_invalid_params(
    service: Service, body: Any, name: str
) -> None:
    """A body that fails validation → 422 problem naming the member; nothing created."""
    before = await list_all(service)
    problem = problem_of(await service.client.post("/projects", json=body), 422)
    assert name in [param["name"] for param in problem["invalid_params"]]
    assert await list_all(service) == before


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"status": "archived"}, "body.status"),
        ({"status": None}, "body.status"),
        ({"name": None}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"colour": "red"}, "body.colour"),
        ({"etag": "0000000000000000"}, "body.etag"),
        ({"updated_at": "2020-01-01T00:00:00Z"}, "body.updated_at"),
        ({"description": "tab\tand\nnewline ok", "name": "x\x7f"}, "body.name"),
    ],
    ids=[
        "unknown-status",
        "null-status",
        "null-name",
        "empty-name",
        "unknown-field",
        "server-owned-etag",
        "server-owned-time",
        "control-char",
    ],
)
async def test_invalid_update_is_422_with_invalid_params(
    service: Service, body: dict[str, Any], name: str
) -> None:
    """A PUT body that fails validation → 422 problem naming the member; nothing written."""
    before = await current(service, "proj_abc123")
    problem = problem_of(await service.client.put(DEMO, json=body), 422)
    assert name in [param["name"] for param in problem["invalid_params"]]
    assert await current(service, "proj_abc123") == before


async def test_multiline_description_is_accepted(service: Service) -> None:
    """Tabs and line breaks are fine in a description."""
    project = await new_project(service, description="one\n\ttwo\r\n")
    assert project["description"] == "one\n\ttwo\r\n"


async def test_unicode_text_round_trips(service: Service) -> None:
    """Names and descriptions keep any Unicode text, astral characters included."""
    project = await new_project(service, name="Schild “Hauptstraße” 🚧", customer="Zoë")
    assert (await current(service, project["project_id"]))["name"] == "Schild “Hauptstraße” 🚧"


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"name": "x"', {"Content-Type": "application/json"}),
        (b'{"name": "\xff"}', {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/json"}),
        (b'{"name": "x"}', {"Content-Type": "text/plain"}),
        (b"x" * 200_000, {"Content-Type": "application/json"}),
    ],
    ids=["malformed-json", "not-utf8", "empty", "text-plain", "too-large"],
)
async def test_unknown_project_is_404_before_a_bad_body(
    service: Service, content: bytes, headers: dict[str, str]
) -> None:
    """SPEC §1: a PUT to a missing project is a 404 whatever its body."""
    response = await service.client.put("/projects/proj_missing", content=content, headers=headers)
    problem_of(response, 404)


async def test_unknown_project_is_404_before_an_invalid_body(service: Service) -> None:
    """A valid JSON body that fails validation, to a missing project: 404 first."""
    response = await service.client.put("/projects/proj_missing", json={"status": "archived"})
    problem_of(response, 404)


async def test_invalid_body_is_decided_before_a_stale_if_match(service: Service) -> None:
    """SPEC §1: body 422 before a precondition's 412."""
    response = await service.client.put(
        DEMO, headers={"If-Match": '"0000000000000000"'}, json={"status": "archived"}
    )
    problem_of(response, 422)


async def test_json_with_a_structured_suffix_is_json(service: Service) -> None:
    """A +json media type (RFC 6839) is read as JSON."""
    response = await service.client.put(
        DEMO, content=b'{"name": "x"}', headers={"Content-Type": "application/merge-patch+json"}
    )
    assert result_of(response)["name"] == "x"


async def test_non_json_media_type_is_415(service: Service) -> None:
    """A body of a media type that is not JSON → 415 problem."""
    response = await service.client.post(
        "/projects", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    problem_of(response, 415)


async def test_too_large_a_body_is_413(service: Service) -> None:
    """A body larger than the limit → 413 problem, chunked or not."""
    huge = b'{"name": "' + b"x" * 200_000 + b'"}'
    problem_of(await service.client.post("/projects", content=huge), 413)

    async def chunks() -> Any:
        for _ in range(200):
            yield b" " * 1024

    response = await service.client.post(
        "/projects", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem_of(response, 413)


async def test_unknown_method_is_405_with_allow(service: Service) -> None:
    """PATCH is not a method of a project: 405 listing the allowed ones."""
    response = await service.client.patch(DEMO, json={"name": "x"})
    problem_of(response, 405)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"DELETE", "GET", "PUT"} <= allowed <= {"DELETE", "GET", "HEAD", "PUT"}


# -- lists -----------------------------------------------------------------------------


async def list_all(service: Service, limit: int = 100) -> list[dict[str, Any]]:
    """Every project, page by page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await service.client.get("/projects", params=params)
        assert response.status_code == 200, response.text
        page = response.json()["result"]
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params = {"limit": limit, "cursor": page["next_cursor"]}


async def test_list_is_an_envelope_of_items_and_next_cursor(service: Service) -> None:
    """GET /projects → {"result": {"items": [...], "next_cursor": null}} on one page."""
    response = await service.client.get("/projects")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result"}
    assert set(body["result"]) == {"items", "next_cursor"}
    assert body["result"]["next_cursor"] is None
    (demo,) = body["result"]["items"]
    assert demo == await current(service, "proj_abc123")


async def test_pages_cover_every_project_once_in_creation_order(service: Service) -> None:
    """limit=2 over seven projects: four pages, each project once, oldest first."""
    made = [(await new_project(service, name=f"p{i}"))["project_id"] for i in range(6)]
    items = await list_all(service, limit=2)
    assert [item["project_id"] for item in items] == ["proj_abc123", *made]


async def test_a_traversal_reads_the_snapshot_of_its_first_page(service: Service) -> None:
    """Projects created or deleted during a traversal: no duplicate, nothing skipped."""
    made = [await new_project(service, name=f"p{i}") for i in range(4)]
    first = (await service.client.get("/projects", params={"limit": 2})).json()["result"]
    await new_project(service, name="late")
    gone = made[3]
    deleted = await service.client.delete(
        f"/projects/{gone['project_id']}", headers={"If-Match": gone["etag"]}
    )
    assert deleted.status_code == 204
    seen = [item["project_id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = (
            await service.client.get("/projects", params={"limit": 2, "cursor": cursor})
        ).json()["result"]
        seen.extend(item["project_id"] for item in page["items"])
        cursor = page["next_cursor"]
    expected = ["proj_abc123", *(p["project_id"] for p in made[:3])]
    assert seen == expected


@pytest.mark.parametrize(
    "limit", ["0", "101", "-1", "abc", "1.5", "99999999999999999999999"], ids=str
)
async def test_bad_limit_is_422_with_invalid_params(service: Service, limit: str) -> None:
    """limit outside 1–100, or not an integer → 422 naming query.limit."""
    problem = problem_of(await service.client.get("/projects", params={"limit": limit}), 422)
    assert [param["name"] for param in problem["invalid_params"]] == ["query.limit"]


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage", "a.b", "x" * 5000, "eyJ9.AAAA"],
    ids=["empty", "garbage", "dotted", "huge", "bad-signature"],
)
async def test_bad_cursor_is_400(service: Service, cursor: str) -> None:
    """A cursor that is not one the service issued → 400 problem naming the cursor."""
    response = await service.client.get("/projects", params={"cursor": cursor})
    problem = problem_of(response, 400)
    assert problem["invalid_params"][0]["name"] == "cursor"


async def test_tampered_cursor_is_400(service: Service) -> None:
    """Changing one character of a genuine cursor → 400."""
    await new_project(service)
    token = (await service.client.get("/projects", params={"limit": 1})).json()["result"][
        "next_cursor"
    ]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    problem_of(await service.client.get("/projects", params={"cursor": flipped}), 400)


async def test_foreign_cursor_is_400(service: Service) -> None:
    """A genuine cursor of another listing → 400."""
    from optimist.cursor import Cursor  # noqa: PLC0415

    token = service.runtime.cursors.encode(
        Cursor((1,), 1, datetime.now().astimezone()), query="GET /admin/users"
    )
    problem_of(await service.client.get("/projects", params={"cursor": token}), 400)


async def test_a_cursor_of_another_shape_is_400(service: Service) -> None:
    """A genuine cursor for this listing whose position is not one is refused with 400."""
    from optimist.cursor import Cursor  # noqa: PLC0415

    token = service.runtime.cursors.encode(
        Cursor(("x", 2), 1, datetime.now().astimezone()), query="GET /projects"
    )
    problem_of(await service.client.get("/projects", params={"cursor": token}), 400)


async def test_expired_cursor_is_410(service: Service) -> None:
    """A cursor whose snapshot is older than the maximum age → 410 Gone."""
    from optimist.cursor import Cursor  # noqa: PLC0415

    old = datetime.now().astimezone() - timedelta(days=2)
    token = service.runtime.cursors.encode(Cursor((1,), 1, old), query="GET /projects")
    problem_of(await service.client.get("/projects", params={"cursor": token}), 410)


# -- the 412 detail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "detail"),
    [
        ("abc", "ETag mismatch: expected cur, got abc"),
        ('"abc"', "ETag mismatch: expected cur, got abc"),
        ('"a", "b"', "ETag mismatch: expected cur, got a, b"),
        ('W/"cur"', 'ETag mismatch: expected cur, got W/"cur"'),
        ('"', 'ETag mismatch: expected cur, got "'),
        ("x" * 200, "ETag mismatch: expected cur, got " + "x" * 80 + "…"),
        ('"cur"', "Precondition failed: the project has changed; its current ETag is cur"),
        (None, "Precondition failed: the project has changed; its current ETag is cur"),
    ],
    ids=["bare", "quoted", "list", "weak", "malformed", "huge", "matching", "absent"],
)
def test_mismatch_detail(sent: str | None, detail: str) -> None:
    """The 412 detail prints tags bare, as seed 003 does, and cuts hostile input short."""
    assert mismatch_detail(EntityTag("cur"), sent) == detail


# -- OpenAPI ---------------------------------------------------------------------------


async def test_openapi_documents_the_routes_and_their_problems(service: Service) -> None:
    """/openapi.json lists the five operations with their problem responses."""
    document = (await service.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/projects"]) == {"get", "post"}
    assert set(paths["/projects/{project_id}"]) == {"get", "put", "delete"}
    item = paths["/projects/{project_id}"]
    assert {"304", "404", "412"} <= set(item["get"]["responses"])
    assert {"404", "412", "422"} <= set(item["put"]["responses"])
    assert {"404", "412", "428"} <= set(item["delete"]["responses"])
    problem = item["delete"]["responses"]["428"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }


# -- helpers ---------------------------------------------------------------------------


async def test_metadata_is_an_object_replaced_whole_by_put(service: Service) -> None:
    """``metadata`` starts empty, a PUT replaces it whole, and the ETag changes."""
    created = result_of(await service.client.post("/projects", json={"name": "Sign"}), 201)
    assert created["metadata"] == {}
    response = await service.client.put(
        f"/projects/{created['project_id']}",
        json={"metadata": {"sides": 2, "colours": ["red"], "lit": {"at_night": True}}},
        headers={"If-Match": created["etag"]},
    )
    updated = result_of(response, 200)
    assert updated["metadata"] == {"sides": 2, "colours": ["red"], "lit": {"at_night": True}}
    assert updated["etag"] != created["etag"]


@pytest.mark.parametrize(
    "metadata",
    [None, [1, 2], "text", {str(n): n for n in range(101)}, {"big": "x" * 17_000}],
    ids=["null", "list", "string", "too-many-members", "too-large"],
)
async def test_bad_metadata_is_422_and_changes_nothing(service: Service, metadata: object) -> None:
    """``metadata`` must be a bounded JSON object; anything else is a 422 problem."""
    created = result_of(await service.client.post("/projects", json={"name": "Sign"}), 201)
    response = await service.client.put(
        f"/projects/{created['project_id']}", json={"metadata": metadata}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["invalid_params"][0]["name"].startswith("body.metadata")
    again = await service.client.get(f"/projects/{created['project_id']}")
    assert again.headers["ETag"] == f'"{created["etag"]}"'


async def test_stale_put_sent_as_curl_sends_it_says_etag_mismatch(service: Service) -> None:
    """Seed 003's curl steps (-d, no Content-Type) get the seed's 412 detail too."""
    etag = result_of(await service.client.get(DEMO))["etag"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    fresh = await service.client.put(
        DEMO, content=b'{"name": "Updated"}', headers={**form, "If-Match": etag}
    )
    current = result_of(fresh)["etag"]
    stale = await service.client.put(
        DEMO, content=b'{"name": "Concurrent"}', headers={**form, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["detail"] == f"ETag mismatch: expected {current}, got {etag}"

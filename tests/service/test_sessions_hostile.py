"""Hostile input to the test-sessions API on each backend: every request of the table is
answered with a 4xx problem+json, and no session is created, changed or deleted."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from optimist.starlette import INVALID_CLOCK_DETAIL
from tests.support.service import Service

pytestmark = pytest.mark.anyio

SESSIONS = "/v1/tests/sessions"
ONE = f"{SESSIONS}/{{id}}"  # the session made for each test
BUILDING = "6f1c1e4e-5a2b-4c3d-8e9f-0a1b2c3d4e5f"
VALID_PATCH = b'{"notes": "hostile"}'


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the status it must get."""

    method: str
    path: str
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)


def clock_header(value: bytes | str, method: str = "PATCH") -> Hostile:
    """A write of a valid body to the session whose If-Match is ``value``: a 412."""
    raw = value.encode() if isinstance(value, str) else value
    content = VALID_PATCH if method == "PATCH" else None
    return Hostile(method, ONE, 412, [(b"If-Match", raw)], content)


def create(content: bytes, status: int = 422, content_type: bytes = b"application/json") -> Hostile:
    """A create with ``content`` as its body."""
    return Hostile("POST", SESSIONS, status, [(b"Content-Type", content_type)], content)


TOO_MANY_NODES = {f"node-{n}": 1 for n in range(65)}

TABLE = [
    # bodies
    pytest.param(create(b'{"building_id": '), id="malformed-json"),
    pytest.param(create(b'{"building_id": "\xff\xfe"}'), id="not-utf8"),
    pytest.param(
        create(b'{"building_id": "%s", "notes": "\\ud800"}' % BUILDING.encode()),
        id="lone-surrogate",
    ),
    pytest.param(create(b"[" * 10_000 + b"]" * 10_000), id="nested-10k-deep"),
    pytest.param(create(b'{"building_id": ' + b"9" * 5000 + b"}"), id="5000-digit-number"),
    pytest.param(create(b""), id="empty-body"),
    pytest.param(create(b"null"), id="json-null"),
    pytest.param(create(b'"' + BUILDING.encode() + b'"'), id="json-string"),
    pytest.param(create(b'{"building_id": "' + b"g" * 36 + b'"}'), id="bad-uuid"),
    pytest.param(
        create(b'{"building_id": "' + BUILDING.encode() + b'\\u0000"}'), id="uuid-with-nul"
    ),
    pytest.param(create(b'{"building_id": true}'), id="bool-uuid"),
    pytest.param(
        create(json.dumps({"building_id": BUILDING, "admin": True}).encode()), id="extra-field"
    ),
    pytest.param(
        create(json.dumps({"building_id": BUILDING, "notes": "n" * 20_000}).encode()),
        id="long-notes",
    ),
    pytest.param(create(b'{"building_id": "' + b"x" * 1_000_000 + b'"}', 413), id="1mb-body"),
    pytest.param(
        create(b"building_id=x", 415, b"application/x-www-form-urlencoded"), id="form-body"
    ),
    pytest.param(create(b"<xml/>", 415, b"application/xml"), id="xml-body"),
    pytest.param(
        create(b'{"building_id": "%s"}' % BUILDING.encode(), 415, b"\xff\xfe"),
        id="binary-content-type",
    ),
    pytest.param(Hostile("PUT", ONE, 422, content=b"{}"), id="put-empty-object"),
    pytest.param(
        Hostile("PATCH", ONE, 422, content=b'{"status": ["completed"]}'), id="patch-status-list"
    ),
    pytest.param(
        Hostile("PATCH", ONE, 422, content=b'{"building_id": null}'), id="patch-null-building"
    ),
    # clocks in If-Match
    pytest.param(clock_header("{" * 10_240), id="10kb-json-clock"),
    pytest.param(clock_header('"' + "a" * 10_240 + '"'), id="10kb-tag-clock"),
    pytest.param(clock_header(json.dumps({"test-node": "x" * 10_000})), id="10kb-string-counter"),
    pytest.param(clock_header('{"test-node": -1}'), id="negative-counter"),
    pytest.param(clock_header('{"test-node": 9007199254740992}'), id="counter-above-2**53"),
    pytest.param(clock_header('{"test-node": ' + "9" * 400 + "}"), id="400-digit-counter"),
    pytest.param(clock_header('{"test-node": true}'), id="bool-counter"),
    pytest.param(clock_header('{"test-node": 1.0}'), id="float-counter"),
    pytest.param(clock_header('{"test-node": NaN}'), id="nan-counter"),
    pytest.param(clock_header('{"test-node": null}'), id="null-counter"),
    pytest.param(clock_header(json.dumps(TOO_MANY_NODES)), id="65-nodes"),
    pytest.param(clock_header('{"no de": 1}'), id="bad-node-name"),
    pytest.param(clock_header(json.dumps({"n" * 65: 1})), id="long-node-name"),
    pytest.param(clock_header('{"": 1}'), id="empty-node-name"),
    pytest.param(clock_header('{"test-node": 1, "test-node": 1}'), id="duplicate-node"),
    pytest.param(clock_header('{"a": {"b": 1}}'), id="nested-clock"),
    pytest.param(clock_header("[1]"), id="array-clock"),
    pytest.param(clock_header('W/"test-node=1"'), id="weak-tag"),
    pytest.param(clock_header('"b=1;a=1"'), id="unsorted-tag"),
    pytest.param(clock_header('"test-node=01"'), id="leading-zero-tag"),
    pytest.param(clock_header('"test-node=0"'), id="zero-counter-tag"),
    pytest.param(clock_header('"test-node=1", "test-node=2"'), id="tag-list"),
    pytest.param(clock_header(b"\xff\xfe\x00\x01"), id="binary-if-match"),
    pytest.param(clock_header("test-node=1"), id="unquoted-tag"),
    pytest.param(clock_header("{" * 10_240, "DELETE"), id="delete-10kb-clock"),
    # paths
    pytest.param(Hostile("GET", f"{SESSIONS}/" + "a" * 10_000, 404), id="10kb-id"),
    pytest.param(Hostile("GET", f"{SESSIONS}/%00", 404), id="nul-id"),
    pytest.param(
        Hostile("PATCH", f"{SESSIONS}/..%2F..%2Fprojects", 404, content=VALID_PATCH),
        id="traversal-id",
    ),
    pytest.param(Hostile("DELETE", SESSIONS, 405), id="delete-collection"),
    pytest.param(Hostile("POST", ONE, 405, content=VALID_PATCH), id="post-to-a-session"),
    # pages
    pytest.param(
        Hostile(
            "GET",
            SESSIONS,
            400,
            params={"cursor": "eyJhIjoxfQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        ),
        id="random-cursor",
    ),
    pytest.param(Hostile("GET", SESSIONS, 400, params={"cursor": "A" * 60_000}), id="60kb-cursor"),
    pytest.param(
        Hostile("GET", SESSIONS, 400, params={"cursor": "\u202e\U0001f4a3"}), id="unicode-cursor"
    ),
    pytest.param(Hostile("GET", SESSIONS, 422, params={"limit": str(10**30)}), id="limit-10**30"),
    pytest.param(Hostile("GET", SESSIONS, 422, params={"limit": "-5"}), id="negative-limit"),
    pytest.param(Hostile("GET", SESSIONS, 422, params={"limit": "NaN"}), id="nan-limit"),
    pytest.param(Hostile("GET", SESSIONS, 422, params={"limit": "0x10"}), id="hex-limit"),
    # a precondition on a read
    pytest.param(
        Hostile("GET", ONE, 412, [(b"If-Match", b"\xff" * 10_240)]), id="binary-if-match-on-get"
    ),
]


async def snapshot(service: Service) -> list[dict[str, Any]]:
    """Every session as stored, in order."""
    response = await service.client.get(SESSIONS, params={"limit": 100})
    assert response.status_code == 200
    page: dict[str, Any] = response.json()
    assert page["next_cursor"] is None
    data: list[dict[str, Any]] = page["data"]
    return data


@pytest.mark.parametrize("hostile", TABLE)
async def test_hostile_request_is_a_4xx_problem_and_changes_nothing(
    service: Service, hostile: Hostile
) -> None:
    """Bad input never gives a 5xx (SPEC §1): a 4xx problem+json, nothing written."""
    made = await service.client.post(SESSIONS, json={"building_id": str(uuid.uuid4())})
    session_id = made.json()["id"]
    before = await snapshot(service)
    response = await service.client.request(
        hostile.method,
        hostile.path.format(id=session_id),
        headers=hostile.headers,
        content=hostile.content,
        params=hostile.params,
    )
    assert response.status_code == hostile.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == hostile.status
    assert isinstance(problem["detail"], str)
    assert len(response.content) < 4096  # hostile input is not echoed back in full
    if hostile.status == 412 and hostile.method != "GET":
        assert response.headers["etag"] == problem["current_etag"] == '"test-node=1"'
        if b"If-Match" in dict(hostile.headers) and "conflict" not in problem:
            assert problem["detail"] == INVALID_CLOCK_DETAIL
    assert await snapshot(service) == before

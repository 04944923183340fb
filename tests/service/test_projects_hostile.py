"""Hostile requests to the projects API: each is a 4xx problem+json, none writes anything.

SPEC §1: bad input never gives a 5xx. Each row is one request; the test compares the
whole projects table, read from the database, before and after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from optimist.service import schema
from tests.support.service import Service

pytestmark = pytest.mark.anyio

DEMO = "/projects/proj_abc123"
JSON = {"content-type": "application/json"}
STALE = {"if-match": '"0000000000000000"'}


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the status it must get."""

    method: str
    path: str
    status: int
    headers: list[tuple[bytes, bytes]] | dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: dict[str, str] | None = None


def deep(levels: int) -> bytes:
    """A JSON body nested ``levels`` arrays deep."""
    return b'{"name": ' + b"[" * levels + b"]" * levels + b"}"


ROWS = {
    "malformed-json-post": Hostile("POST", "/projects", 422, JSON, b'{"name": "x",'),
    "malformed-json-put": Hostile("PUT", DEMO, 422, JSON, b"{'name': 'x'}"),
    "not-utf8-body": Hostile("PUT", DEMO, 422, JSON, b'{"name": "\xc3\x28"}'),
    "lone-surrogate": Hostile("POST", "/projects", 422, JSON, b'{"name": "\\ud800"}'),
    "nul-in-name": Hostile("POST", "/projects", 422, JSON, b'{"name": "a\\u0000b"}'),
    "nan-name": Hostile("POST", "/projects", 422, JSON, b'{"name": NaN}'),
    "c1-control-in-name": Hostile("POST", "/projects", 422, JSON, b'{"name": "a\\u0085b"}'),
    "nul-in-metadata-value": Hostile(
        "PUT", DEMO, 422, JSON, b'{"metadata": {"note": "a\\u0000b"}}'
    ),
    "nul-deep-in-metadata": Hostile(
        "PUT", DEMO, 422, JSON, b'{"metadata": {"a": [{"b": ["ok", "x\\u0000"]}]}}'
    ),
    "control-in-metadata-name": Hostile(
        "POST", "/projects", 422, JSON, b'{"name": "x", "metadata": {"a\\u0007b": 1}}'
    ),
    "lone-surrogate-in-metadata": Hostile(
        "PUT", DEMO, 422, JSON, b'{"metadata": {"a": "\\ud800"}}'
    ),
    "nan-in-metadata": Hostile("PUT", DEMO, 422, JSON, b'{"metadata": {"x": NaN}}'),
    "infinity-in-metadata": Hostile(
        "POST", "/projects", 422, JSON, b'{"name": "x", "metadata": {"x": -Infinity}}'
    ),
    "number-as-name": Hostile("POST", "/projects", 422, JSON, b'{"name": 42}'),
    "list-as-status": Hostile("PUT", DEMO, 422, JSON, b'{"status": ["draft"]}'),
    "lookalike-status": Hostile("PUT", DEMO, 422, JSON, '{"status": "drаft"}'.encode()),
    "array-body": Hostile("PUT", DEMO, 422, JSON, b'["name", "x"]'),
    "extra-field": Hostile("PUT", DEMO, 422, JSON, b'{"name": "x", "owner": "me"}'),
    "server-owned-field": Hostile("PUT", DEMO, 422, JSON, b'{"etag": "0000000000000000"}'),
    "nested-too-deep": Hostile("POST", "/projects", 422, JSON, deep(50_000)),
    "integer-too-long": Hostile("POST", "/projects", 422, JSON, b'{"name": ' + b"9" * 5000 + b"}"),
    "huge-name": Hostile("POST", "/projects", 422, JSON, b'{"name": "' + b"x" * 100_000 + b'"}'),
    "huge-body": Hostile("POST", "/projects", 413, JSON, b'{"name": "' + b"x" * 500_000 + b'"}'),
    "xml-body": Hostile("POST", "/projects", 415, {"content-type": "application/xml"}, b"<a/>"),
    "10kb-if-match": Hostile("PUT", DEMO, 412, {"if-match": "x" * 10_000}, b"{}"),
    "10kb-quoted-if-match": Hostile("DELETE", DEMO, 412, {"if-match": '"' + "a" * 10_000 + '"'}),
    "binary-if-match": Hostile("PUT", DEMO, 412, [(b"if-match", b"\xff\xfe\x80")], b"{}"),
    "nul-in-if-match": Hostile("DELETE", DEMO, 412, [(b"if-match", b"a\x00b")]),
    "malformed-if-match-list": Hostile("DELETE", DEMO, 412, {"if-match": '*, "a"'}),
    "if-match-lines": Hostile(
        "PUT", DEMO, 412, [(b"if-match", b'"a"'), (b"if-match", b"b")], b"{}"
    ),
    "huge-if-none-match": Hostile("PUT", DEMO, 412, {**STALE, "if-none-match": "W/" * 5000}, b"{}"),
    "garbage-unmodified-since": Hostile(
        "DELETE", DEMO, 428, {"if-unmodified-since": "yesterday \x7f" * 500}
    ),
    "binary-path-id": Hostile("GET", "/projects/proj_%00%ff", 404),
    "10kb-path-id": Hostile("PUT", "/projects/proj_" + "a" * 10_000, 404, JSON, b"{}"),
    "random-cursor": Hostile("GET", "/projects", 400, params={"cursor": "AAAA.BBBB"}),
    "unicode-cursor": Hostile("GET", "/projects", 400, params={"cursor": "é☃\U0001f600"}),
    "10kb-cursor": Hostile("GET", "/projects", 400, params={"cursor": "a" * 10_000}),
    "absurd-limit": Hostile("GET", "/projects", 422, params={"limit": "9" * 40}),
    "negative-limit": Hostile("GET", "/projects", 422, params={"limit": "-5"}),
    "float-limit": Hostile("GET", "/projects", 422, params={"limit": "1e3"}),
}


async def table(service: Service) -> list[dict[str, Any]]:
    """Every row of the projects table, as stored."""
    projects = schema.projects.table
    async with service.runtime.engine.connect() as connection:
        rows = await connection.execute(select(projects).order_by(projects.c.created_seq))
        return [dict(row) for row in rows.mappings()]


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
async def test_hostile_request_is_a_4xx_problem_and_writes_nothing(
    service: Service, row: Hostile
) -> None:
    """The request gets its 4xx as problem+json; the table is as it was."""
    before = await table(service)
    response = await service.client.request(
        row.method, row.path, headers=row.headers, content=row.content, params=row.params
    )
    assert response.status_code == row.status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == row.status
    assert isinstance(problem["detail"], str)
    assert len(response.content) < 2_000  # hostile input is not echoed back in full
    assert await table(service) == before

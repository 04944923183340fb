"""Requests that need the database, one of each kind, sent on connections of their own.

A fault test asks them while the database is away or locked and again once it is back.
Each probe works on resources of its own (a project, a session), so that it never
races the counter clients of :mod:`tests.support.load` for an ETag: a probe that
fails is the fault's doing, never a 412.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.admin import identity
from tests.support.load import REQUEST_TIMEOUT, Answer, ask, new_project

__all__ = ["Probe", "database_probes", "send"]


@dataclass(frozen=True)
class Probe:
    """One request: method, path, JSON body and header fields."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def database_probes(base_url: str) -> list[Probe]:
    """A read of one, a list, a create and an update in the projects and sessions APIs,
    and admin reads, on resources made for them now (the demo data's user 123 too)."""
    project = new_project(base_url, "probe")
    created = httpx.post(
        f"{base_url}/v1/tests/sessions",
        json={"building_id": str(uuid.uuid4())},
        timeout=REQUEST_TIMEOUT,
    )
    assert created.status_code == 201, created.text
    session: str = created.headers["Location"]
    return [
        Probe("GET", project),
        Probe("GET", "/projects"),
        Probe("PUT", project, {"description": "probed"}),
        Probe("POST", "/projects", {"name": "probe"}),
        Probe("GET", session),
        Probe("PATCH", session, {"notes": "probed"}),
        Probe("GET", "/v1/tests/sessions"),
        Probe("POST", "/v1/tests/sessions", {"building_id": str(uuid.uuid4())}),
        Probe("GET", "/admin/users/123", headers=identity()),
        Probe("GET", "/admin/feature-flags", headers=identity()),
    ]


def send(base_url: str, probes: list[Probe]) -> list[Answer]:
    """Send each probe once, each on a new connection (so that either worker may answer)."""
    answers = []
    for probe in probes:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
            answer, _ = ask(http, probe.method, probe.path, json=probe.json, headers=probe.headers)
        answers.append(answer)
    return answers

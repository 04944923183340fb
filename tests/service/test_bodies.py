"""Request bodies as every API reads them (optimist.service.bodies): one order of refusals."""

from __future__ import annotations

import pytest

from optimist.service.bodies import MAX_BODY
from optimist.service.projects import MAX_BODY as PROJECTS_MAX_BODY
from tests.support.admin import writer
from tests.support.service import Service, problem_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/admin/roles", MAX_BODY),
        ("/v1/tests/sessions", MAX_BODY),
        ("/projects", PROJECTS_MAX_BODY),
    ],
    ids=["admin", "sessions", "projects"],
)
async def test_body_declared_too_large_is_413_before_its_media_type(
    service: Service, path: str, limit: int
) -> None:
    """A body whose Content-Length passes the limit is a 413 unread, whatever its type."""
    headers = {**await writer(service.client), "Content-Type": "text/plain"}
    response = await service.client.post(path, content=b"x" * (limit + 1), headers=headers)
    assert problem_of(response, 413)["detail"] == f"The request body is larger than {limit} bytes."


BUILDING = "4b1c7a0e-3f6d-4a52-9d1e-2c8b7f5a6e10"

#: Every string member of every API that takes free text, as (path, body around the
#: value, the member's name in invalid_params, whether it may span lines).
STRING_MEMBERS: dict[str, tuple[str, dict[str, object], str, bool]] = {
    "user-name": ("/admin/users", {"email": "a@example.com", "role": "viewer"}, "name", False),
    "role-name": ("/admin/roles", {"permissions": []}, "name", False),
    "flag-description": ("/admin/feature-flags", {"key": "k"}, "description", True),
    "session-notes": ("/v1/tests/sessions", {"building_id": BUILDING}, "notes", True),
    "project-name": ("/projects", {}, "name", False),
    "project-customer": ("/projects", {"name": "p"}, "customer", False),
    "project-description": ("/projects", {"name": "p"}, "description", True),
}


def with_value(body: dict[str, object], member: str, value: str) -> dict[str, object]:
    return {**body, member: value}


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"], ids=repr)
@pytest.mark.parametrize("case", list(STRING_MEMBERS), ids=list(STRING_MEMBERS))
async def test_control_characters_are_refused_in_every_string_member(
    service: Service, case: str, character: str
) -> None:
    """NUL, C0, DEL and C1 controls are a 422 naming the member, in every API alike."""
    path, body, member, _ = STRING_MEMBERS[case]
    headers = await writer(service.client)
    response = await service.client.post(
        path, json=with_value(body, member, f"a{character}b"), headers=headers
    )
    names = [param["name"] for param in problem_of(response, 422)["invalid_params"]]
    assert names == [f"body.{member}"]


@pytest.mark.parametrize("case", list(STRING_MEMBERS), ids=list(STRING_MEMBERS))
async def test_line_breaks_are_text_only_where_text_spans_lines(
    service: Service, case: str
) -> None:
    """Tab and line breaks are accepted in notes and descriptions, refused in names."""
    path, body, member, multiline = STRING_MEMBERS[case]
    headers = await writer(service.client)
    response = await service.client.post(
        path, json=with_value(body, member, "line one\r\n\tline two"), headers=headers
    )
    assert response.status_code == (201 if multiline else 422), response.text

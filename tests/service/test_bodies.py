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

"""Request bodies of the admin API: media types (415), size (413), strict validation (422)."""

from __future__ import annotations

from typing import Any

import pytest

from optimist.service.bodies import MAX_BODY
from tests.support.admin import USER, etag_of, problem, writer
from tests.support.service import Service

pytestmark = pytest.mark.anyio


async def send(service: Service, method: str, path: str, content: bytes, **headers: str) -> Any:
    """A write as admin with a raw body and extra headers."""
    sent = {**await writer(service.client), **headers}
    return await service.client.request(method, path, headers=sent, content=content)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/vnd.example+json",
        "APPLICATION/JSON",
    ],
)
async def test_json_media_types_are_accepted(service: Service, content_type: str) -> None:
    """application/json, any +json type (RFC 6839), parameters and case aside."""
    response = await send(
        service, "PATCH", USER, b'{"name": "x"}', **{"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text


async def test_body_without_content_type_is_read_as_json(service: Service) -> None:
    """A body without Content-Type is read as JSON, as FastAPI does."""
    response = await send(service, "PATCH", USER, b'{"name": "x"}')
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_other_media_types_are_415_with_accept_patch(
    service: Service, content_type: str
) -> None:
    """A PATCH body that is not JSON is a 415 saying which types a patch may be (RFC 5789)."""
    before = await etag_of(service.client)
    response = await send(service, "PATCH", USER, b"name=x", **{"Content-Type": content_type})
    problem(response, 415)
    assert response.headers["accept-patch"] == "application/json, application/merge-patch+json"
    assert await etag_of(service.client) == before


async def test_415_on_post_has_no_accept_patch(service: Service) -> None:
    """A 415 to a POST is plain: Accept-Patch is about PATCH only."""
    response = await send(
        service, "POST", "/admin/roles", b"<role/>", **{"Content-Type": "text/xml"}
    )
    problem(response, 415)
    assert "accept-patch" not in response.headers


async def test_body_over_the_limit_is_413(service: Service) -> None:
    """A body larger than MAX_BODY is refused unread beyond the limit: 413."""
    body = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    response = await send(service, "PATCH", USER, body)
    assert problem(response, 413)["title"] == "Content Too Large"


async def test_body_at_the_limit_is_read(service: Service) -> None:
    """A body of exactly MAX_BODY bytes is read and validated (here: 422, name too long)."""
    padding = MAX_BODY - len(b'{"name": ""}')
    body = b'{"name": "' + b"x" * padding + b'"}'
    assert len(body) == MAX_BODY
    response = await send(service, "PATCH", USER, body)
    assert problem(response, 422)["invalid_params"][0]["name"] == "body.name"


async def test_missing_resource_with_oversized_body_is_404(service: Service) -> None:
    """A missing resource is a 404 before its body is judged, even a too large one."""
    body = b"x" * (MAX_BODY + 1)
    problem(await send(service, "PATCH", "/admin/users/nobody", body), 404)


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b'"name"', b"42", b""],
    ids=["array", "null", "string", "number", "empty"],
)
async def test_body_must_be_an_object(service: Service, body: bytes) -> None:
    """A patch that is not a JSON object is a 422 about the body itself."""
    response = await send(service, "PATCH", USER, body)
    assert problem(response, 422)["invalid_params"][0]["name"] == "body"


async def test_malformed_json_says_where(service: Service) -> None:
    """Malformed JSON is a 422 whose reason gives the line and column."""
    response = await send(service, "PATCH", USER, b'{"name": }')
    reason = problem(response, 422)["invalid_params"][0]["reason"]
    assert "line 1 column" in reason


async def test_every_invalid_member_is_reported(service: Service) -> None:
    """All members that fail are listed, each under body.<member>."""
    body = b'{"email": "nope", "role": "root", "extra": 1}'
    response = await send(service, "PATCH", USER, body)
    names = {param["name"] for param in problem(response, 422)["invalid_params"]}
    assert names == {"body.email", "body.role", "body.extra"}


async def test_openapi_documents_the_bodies(service: Service) -> None:
    """The read-by-hand bodies still appear in OpenAPI, PATCH as a merge patch."""
    document = (await service.client.get("/openapi.json")).json()
    patch = document["paths"]["/admin/users/{user_id}"]["patch"]["requestBody"]
    assert set(patch["content"]) == {"application/merge-patch+json", "application/json"}
    schema = patch["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"email", "name", "role"}
    assert schema["additionalProperties"] is False
    post = document["paths"]["/admin/feature-flags"]["post"]["requestBody"]
    assert post["content"]["application/json"]["schema"]["required"] == ["key"]

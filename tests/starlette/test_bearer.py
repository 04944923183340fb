"""The bearer guard: a request's caller from its bearer token, through any TokenVerifier."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from optimist.bearer import INVALID_TOKEN, Principal
from optimist.errors import InvalidCredentials
from optimist.starlette import bearer_guard, install_problem_handlers

pytestmark = pytest.mark.anyio


class Tokens:
    """A verifier that knows one token: what the guard needs of any verifier."""

    def verify(self, token: str) -> Principal:
        if token != "good":
            raise InvalidCredentials("the token is not known", INVALID_TOKEN, "api")
        return Principal("u1", "t1", "editor")


def app() -> Starlette:
    guard = bearer_guard(Tokens(), realm="api")

    async def endpoint(request: Request) -> Response:
        principal = await guard(request)
        return JSONResponse({"subject": principal.subject, "tenant": principal.tenant})

    application = Starlette(routes=[Route("/", endpoint)])
    install_problem_handlers(application)
    return application


async def call(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/", headers=headers)


async def test_a_verified_token_gives_the_principal() -> None:
    """The endpoint gets the principal the verifier returned."""
    response = await call({"Authorization": "Bearer good"})
    assert response.json() == {"subject": "u1", "tenant": "t1"}


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        ({}, 401, 'Bearer realm="api"'),
        ({"Authorization": "Basic dTpw"}, 401, 'Bearer realm="api"'),
        (
            {"Authorization": "Bearer bad"},
            401,
            'Bearer realm="api", error="invalid_token", error_description="the token is not known"',
        ),
        ({"Authorization": "Bearer a b"}, 400, None),
    ],
    ids=["no-credentials", "other-scheme", "refused-token", "malformed"],
)
async def test_a_refusal_is_a_problem_with_its_challenge(
    headers: dict[str, str], status: int, challenge: str | None
) -> None:
    """No token: 401 naming no error (RFC 6750 §3.1); a refused one: invalid_token;
    malformed credentials: 400 invalid_request; all problem+json."""
    response = await call(headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("www-authenticate") == challenge

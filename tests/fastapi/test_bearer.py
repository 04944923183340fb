"""bearer_guard in a FastAPI application, with optimist.jwt's verifier: a JWT end to end."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from optimist.bearer import Principal
from optimist.fastapi import install_problem_handlers
from optimist.jwt import JWTVerifier, parse_keys
from optimist.starlette import bearer_guard
from tests.support.issuers import AUDIENCE, ISSUER, Issuer

pytestmark = pytest.mark.anyio

IDP = Issuer("ES256")
Caller = Annotated[
    Principal, Depends(bearer_guard(JWTVerifier(parse_keys(IDP.public_pem()), AUDIENCE, ISSUER)))
]


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.get("/me")
    async def me(caller: Caller) -> dict[str, str | None]:
        return {"tenant": caller.tenant, "role": caller.role}

    return application


async def get(token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_route_gets_the_caller_of_a_jwt() -> None:
    """A dependency on bearer_guard gives the route the token's tenant and role."""
    response = await get(IDP.token(tenant="t1", role="viewer"))
    assert response.json() == {"tenant": "t1", "role": "viewer"}


async def test_an_expired_jwt_is_a_401_saying_so() -> None:
    """An expired token is refused before the route runs, the challenge saying why."""
    response = await get(IDP.token(lifetime=-60))
    assert response.status_code == 401
    assert 'error_description="the token has expired"' in response.headers["www-authenticate"]

"""Bearer tokens on a request: :func:`authenticate` and its dependency :func:`bearer_guard`.

The token comes from the ``Authorization`` field (RFC 6750 §2.1; never from the query
or a form body, §2.2 and §2.3, which leak into logs and pages) and is checked by a
:class:`~optimist.bearer.TokenVerifier` (``optimist.jwt.JWTVerifier`` for JSON Web
Tokens, or any other), so that this module needs no verifier library. A request without
a token, or with one not accepted, is refused with
:class:`~optimist.errors.InvalidCredentials`, which the problem handlers of
:func:`~optimist.starlette.install_problem_handlers` answer as problem+json with its
``WWW-Authenticate: Bearer`` challenge: without an error code when no token was sent
(RFC 6750 §3.1), ``invalid_token`` with a description otherwise, and 400
``invalid_request`` for credentials sent malformed or twice.

A route that takes its caller from a bearer token needs no CSRF token: a browser adds
no ``Authorization`` field by itself to a request another site makes it send, as it
adds cookies, so such a request cannot be forged cross-site.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection, Request

from optimist.bearer import REALM, Principal, TokenVerifier, credentials
from optimist.errors import InvalidCredentials

__all__ = ["authenticate", "bearer_guard"]


def authenticate(
    connection: HTTPConnection, verifier: TokenVerifier, *, realm: str = REALM
) -> Principal:
    """The principal of ``connection``'s bearer token, verified by ``verifier``; raises
    :class:`~optimist.errors.InvalidCredentials` when there is none or it is refused."""
    token = credentials(connection.headers.getlist("Authorization"), realm)
    if token is None:
        raise InvalidCredentials("a bearer token is required", realm=realm)
    return verifier.verify(token)


def bearer_guard(
    verifier: TokenVerifier, *, realm: str = REALM
) -> Callable[[Request], Awaitable[Principal]]:
    """:func:`authenticate` as a dependency (``Depends(bearer_guard(verifier))`` in
    FastAPI, on a route, a router or the application; its value is the
    :class:`~optimist.bearer.Principal`), or a function to await in a Starlette
    endpoint. It runs before the body is read: RFC 9110 §13.2.1 puts 401 first."""

    async def guard(request: Request) -> Principal:
        return authenticate(request, verifier, realm=realm)

    return guard

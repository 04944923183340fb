"""An access token on every request: :class:`BearerToken`, an ``httpx.Auth``.

Sent as ``Authorization: Bearer <token>`` (RFC 6750 §2.1), the only way RFC 6750
recommends: a token in the query or a form body ends up in logs and caches. Give it to
an :class:`~optimist.httpx.Api` (``JsonApi(auth=BearerToken(token))``), and every
request of a flow carries it, the refetch and the retried write after a 412 included;
or to the ``httpx`` client itself.

The token is a string, or a function that returns the current one, called for each
request: a token that expires is replaced by the function, never by the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx

__all__ = ["BearerToken"]


class BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>`` on each request; ``token`` is the token, or a
    function that returns the current one."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token() if callable(self._token) else self._token
        if not token or any(character in token for character in "\r\n "):
            # A header value that would split the field, or an empty credential.
            raise ValueError("a bearer token is one non-empty word")
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def __repr__(self) -> str:
        # The token is a credential: never in a log line or a traceback.
        return f"{type(self).__name__}(***)"

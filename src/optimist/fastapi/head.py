"""HEAD wherever GET is answered: FastAPI routes declare GET only (fastapi/fastapi#1773).

``app.add_middleware(HeadMiddleware)`` makes them answer HEAD too.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.fastapi._body import empty_body
from optimist.starlette import allow_field, allowed_methods

__all__ = ["HeadMiddleware"]


class HeadMiddleware:
    """Answer HEAD wherever GET is answered: GET's status and headers, no body.

    RFC 9110 §9.3.2: HEAD is GET without the content. FastAPI routes declare GET only
    (fastapi/fastapi#1773); a HEAD that the app answers 405 with ``Allow: GET`` is
    replayed as GET. Routes that declare HEAD themselves keep it. Since HEAD is then
    served wherever GET is, a 405's ``Allow`` that lists GET lists HEAD too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allowing_head(send))
            return
        original = dict(scope)
        replay = False

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        async def first(message: Message) -> None:
            nonlocal replay
            if message["type"] == "http.response.start":
                allow = Headers(raw=message["headers"]).get("allow", "")
                replay = message["status"] == 405 and "GET" in allowed_methods(allow)
            if not replay:
                await headers_only(message)

        await self.app(scope, receive, first)
        if replay:
            await self.app({**original, "method": "GET"}, empty_body(receive), headers_only)


def _allowing_head(send: Send) -> Send:
    """``send``, with HEAD added to a 405's ``Allow`` that lists GET."""

    async def allowing(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = MutableHeaders(scope=message)
            methods = allowed_methods(headers.get("allow", ""))
            if "GET" in methods and "HEAD" not in methods:
                headers["Allow"] = allow_field(methods | {"HEAD"})
        await send(message)

    return allowing

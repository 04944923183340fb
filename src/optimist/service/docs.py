"""The interactive documentation, kept on the service.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and styles from the
installed package (``fastapi-offline``), so they render where there is no internet. ReDoc's
bundle still reaches for a logo on its vendor's CDN; :class:`DocsPolicy` sends those two
pages with a Content-Security-Policy that allows the service's own origin only (plus the
inline code and the ``data:``/``blob:`` URLs the pages build), so that a browser refuses
such a request before it leaves, and whoever reads the documentation tells no third
party.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_POLICY", "DOCS_URL", "REDOC_URL", "DocsPolicy"]

#: Where Swagger UI and ReDoc are served.
DOCS_URL: Final = "/docs"
REDOC_URL: Final = "/redoc"

#: The pages' policy: everything from the service itself; inline scripts and styles, which
#: both pages write; images as data: URLs; ReDoc's web worker from a blob: URL.
DOCS_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


class DocsPolicy:
    """ASGI middleware: the responses to ``paths`` carry :data:`DOCS_POLICY`."""

    def __init__(self, app: ASGIApp, *, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Content-Security-Policy"] = DOCS_POLICY
            await send(message)

        await self.app(scope, receive, with_policy)

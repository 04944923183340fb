"""The interactive documentation, kept on the service.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and styles from the
installed package (``fastapi-offline``), so they render where there is no internet. ReDoc's
bundle still reaches for a logo on its vendor's CDN; :class:`DocsPolicy` sends those two
pages with a Content-Security-Policy that allows the service's own origin only, so that a
browser refuses such a request before it leaves, and whoever reads the documentation
tells no third party.

Scripts run only from the service or, for the page's own inline script (Swagger UI's
set-up), by its hash, computed from the page as sent (CSP Level 3 §8.4): no other inline
script can run. Styles may be inline: ReDoc's renderer writes its styles into the page as
it runs, which no hash can name, and a style runs no code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_URL", "REDOC_URL", "DocsPolicy", "policy_for"]

#: Where Swagger UI and ReDoc are served.
DOCS_URL: Final = "/docs"
REDOC_URL: Final = "/redoc"

#: An inline script of a page: a script element without ``src``, and its text.
_INLINE_SCRIPT: Final = re.compile(
    rb"<script(?P<attributes>[^>]*)>(?P<text>.*?)</script\s*>", re.DOTALL | re.IGNORECASE
)


def policy_for(page: bytes) -> str:
    """The Content-Security-Policy for ``page``: everything from the service itself, its
    own inline scripts by hash, inline styles, images as data: URLs, ReDoc's web worker
    from a blob: URL."""
    hashes = [
        "'sha256-{}'".format(base64.b64encode(hashlib.sha256(match["text"]).digest()).decode())
        for match in _INLINE_SCRIPT.finditer(page)
        if b"src=" not in match["attributes"].lower()
    ]
    scripts = " ".join(["'self'", *hashes])
    return (
        f"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"script-src {scripts}; worker-src 'self' blob:"
    )


class DocsPolicy:
    """ASGI middleware: the responses to ``paths`` carry :func:`policy_for` their page.

    The page is held until its last part, to hash its scripts; the pages are small.
    """

    def __init__(self, app: ASGIApp, *, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        parts: list[bytes] = []

        async def with_policy(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = b"".join(parts)
            MutableHeaders(scope=start)["Content-Security-Policy"] = policy_for(page)
            await send(start)
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, with_policy)

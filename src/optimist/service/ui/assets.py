"""The app's files, served as they are in the package, under a policy that keeps the
page on the service.

Starlette's :class:`~starlette.staticfiles.StaticFiles` sends each file with ``ETag`` and
``Last-Modified`` and answers a matching ``If-None-Match`` with 304 (RFC 9110 §13.1.2),
so the service's caching policy stores them ``no-cache``: revalidated on every use, a
304 while the package is unchanged. ``/ui/`` is ``index.html``.

Every response under ``/ui`` carries :data:`POLICY`: scripts, styles and requests from
the service's own origin only, no inline script or style, no plugin, no frame around
the page and no form sent anywhere. A page served by the service therefore talks to
that service alone, whatever its query says; the same files served from another origin
reach the service through its CORS option (docs/ui.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["POLICY", "STATIC", "UI_URL", "UIPolicy", "ui_app"]

#: Where the app is mounted.
UI_URL: Final = "/ui"
#: The directory of the app's files, inside the package.
STATIC: Final = Path(__file__).resolve().parent / "static"

#: The app's Content-Security-Policy (CSP Level 3): its own origin for everything it
#: loads or asks for, nothing inline.
POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


class UIPolicy:
    """ASGI middleware: every HTTP response of ``app`` carries :data:`POLICY`, and
    ``X-Content-Type-Options: nosniff`` so that a file is only ever what its type says."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = POLICY
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, with_policy)


def ui_app() -> ASGIApp:
    """The app's files under :data:`POLICY`, to mount at :data:`UI_URL`."""
    return UIPolicy(StaticFiles(directory=STATIC, html=True))

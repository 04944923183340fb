"""The reference service's ASGI application: the three seed APIs on the optimist library.

``create_app`` builds the application; the lifespan migrates the database if needed and
builds the process's :class:`~optimist.service.runtime.Runtime`. ``optimist serve``
serves it through :func:`optimist.service.server.served_app`, which adds the server's
guards around it.

Every response carries the library's caching policy (:data:`CACHING`, docs/service.md
"Caching"): the admin API's representations are selected by the gateway's identity
fields, so they are ``private`` and vary on them; the other APIs' are the same for
everyone.

Every request is counted at ``/metrics`` (:mod:`optimist.service.metrics`). With
``settings.cors_origins``, browsers on those origins may call the APIs (CORS, through
Starlette's middleware): the preflight allows the APIs' methods and the request header
fields they read (:data:`CORS_REQUEST_HEADERS`), and scripts may read the response
fields a conditional client needs (:data:`CORS_EXPOSED_HEADERS`).

The gateway's identity fields are believed only from ``settings.trusted_peers``: the
admin API refuses every request of another peer (:mod:`optimist.service.admin.identity`),
and every route one that carries them, so that a forged identity is refused where it is
not read too, rather than passed over in silence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

import optimist
from optimist.fastapi import HeadMiddleware, install_idempotency, install_problem_handlers
from optimist.service import admin, health, projects, sessions
from optimist.service.admin.identity import (
    CSRF_HEADER,
    ROLE_HEADER,
    TENANT_HEADER,
    identity_guard,
)
from optimist.service.docs import DOCS_URL, REDOC_URL, DocsPolicy
from optimist.service.failures import Unfinished
from optimist.service.metrics import install_metrics
from optimist.service.runtime import prepare, start
from optimist.service.security import document_identity
from optimist.service.settings import Settings
from optimist.service.ui import UI_URL, ui_app
from optimist.service.writes import keys
from optimist.starlette import CachingPolicy, VectorClockMiddleware, install_caching

__all__ = [
    "CACHING",
    "CORS_EXPOSED_HEADERS",
    "CORS_METHODS",
    "CORS_REQUEST_HEADERS",
    "create_app",
    "prepare",
]

#: The service's caching policy: the admin API answers each tenant and role its own.
CACHING = CachingPolicy(identity=(TENANT_HEADER, ROLE_HEADER), paths=(admin.router.prefix,))

#: The methods of the three APIs, which a preflight allows.
CORS_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: The request header fields the APIs read, which a preflight allows: the four
#: preconditions (the sessions API's vector clock travels in If-Match), the idempotency
#: key of a client's retried write, the body's media type, the admin API's identity
#: and CSRF fields, and a bearer token (token mode).
CORS_REQUEST_HEADERS: Final = (
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Idempotency-Key",
    "Content-Type",
    TENANT_HEADER,
    ROLE_HEADER,
    CSRF_HEADER,
    "Authorization",
)
#: The response header fields a script may read besides the safelisted ones: the
#: validators it sends back (ETag, which carries a session's vector clock, and
#: Last-Modified), a 201's Location, how long a 503 asks it to wait, and whether an
#: answer is the replay of a write sent before with its Idempotency-Key.
CORS_EXPOSED_HEADERS: Final = (
    "ETag",
    "Last-Modified",
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the ``OPTIMIST_*`` variables)."""
    settings = settings or Settings.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start(settings)
        # Idempotency-Key on every write (optimist.service.writes).
        app.state.idempotency = keys(app.state.runtime.engine)
        try:
            yield
        finally:
            await app.state.runtime.dispose()

    # /docs and /redoc with Swagger UI's and ReDoc's files served from the package, not
    # a CDN: the documentation renders where there is no internet.
    app = FastAPIOffline(
        title="optimist reference service",
        version=optimist.__version__,
        summary="The admin, projects and test-sessions APIs, without lost updates.",
        lifespan=lifespan,
        docs_url=DOCS_URL,
        redoc_url=REDOC_URL,
        dependencies=[Depends(identity_guard(settings))],
    )
    install_problem_handlers(app)
    # A resent write is answered with its first answer; the document lists the key.
    install_idempotency(app)
    # What a caller must show, in this deployment's mode (a bearer token or the gateway's fields).
    document_identity(app, settings)
    # The documentation pages may load nothing from elsewhere.
    app.add_middleware(DocsPolicy, paths=(DOCS_URL, REDOC_URL))
    # Seed 000's middleware; deferred, so a bad clock is a 412 only after 401/403/404.
    app.add_middleware(VectorClockMiddleware, defer=True, paths=("/v1/tests/sessions",))
    app.add_middleware(HeadMiddleware)
    # Inside CORS and the caching policy, so that a 500 or 503 carries what every answer does.
    app.add_middleware(Unfinished)
    if settings.cors_origins:
        # Outside HEAD and the clock, so that a preflight never reaches a route, and a
        # problem (a 412 with the current ETag) carries the fields a browser needs to
        # let the script read it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )
    # Outside CORS, so that preflights are counted too.
    install_metrics(app)
    # Outside the others, so that it sees every response they send; it keeps the
    # "Vary: Origin" of CORS.
    install_caching(app, CACHING)

    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(projects.router)
    app.include_router(sessions.router)
    # The browser app: its files, under a policy that keeps the page on the service.
    app.mount(UI_URL, ui_app(), name="ui")
    return app

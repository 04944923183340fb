"""The reference service's ASGI application: the three seed APIs on the optimist library.

``create_app`` builds the application; the lifespan migrates the database if needed and
builds the process's :class:`~optimist.service.runtime.Runtime`. ``optimist serve``
serves it through :func:`optimist.service.server.served_app`, which adds the server's
guards around it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import optimist
from optimist.fastapi import HeadMiddleware, install_problem_handlers
from optimist.service import admin, health, projects, sessions
from optimist.service.runtime import prepare, start
from optimist.service.settings import Settings
from optimist.starlette import VectorClockMiddleware

__all__ = ["create_app", "prepare"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the ``OPTIMIST_*`` variables)."""
    settings = settings or Settings.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start(settings)
        try:
            yield
        finally:
            await app.state.runtime.engine.dispose()

    app = FastAPI(
        title="optimist reference service",
        version=optimist.__version__,
        summary="The admin, projects and test-sessions APIs, without lost updates.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    # Seed 000's middleware; deferred, so a bad clock is a 412 only after 401/403/404.
    app.add_middleware(VectorClockMiddleware, defer=True, paths=("/v1/tests/sessions",))
    app.add_middleware(HeadMiddleware)

    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(projects.router)
    app.include_router(sessions.router)
    return app

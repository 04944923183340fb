"""Helpers for the reference service's tests: settings and a running app with a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from optimist.service.app import create_app
from optimist.service.runtime import Runtime
from optimist.service.settings import Settings
from tests.support.conformance import check_response

PROBLEM: Final = "application/problem+json"


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


@dataclass(frozen=True, slots=True)
class Service:
    """A running app (lifespan entered), its runtime, and a client bound to it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


def settings_for(database_url: str, **changes: object) -> Settings:
    """Settings for a test deployment on ``database_url``, with the demo data."""
    values: dict[str, object] = {
        "database_url": database_url,
        "node_id": "test-node",
        "secret_key": "test-secret",
        "demo_data": True,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    """The app for ``settings`` with its lifespan entered, and an in-process client whose
    every response is checked by httplint (:mod:`tests.support.conformance`)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # Every response a test receives passes httplint, or the request fails.
        hooks = {"response": [check_response]}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", event_hooks=hooks
        ) as client:
            yield Service(app, client)


@contextmanager
def statements(service: Service) -> Iterator[list[str]]:
    """The verbs of the data statements the service's engine runs inside the block."""
    engine = service.runtime.engine.sync_engine
    seen: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            seen.append(verb)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)

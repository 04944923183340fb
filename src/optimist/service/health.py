"""Health endpoints for orchestrators: ``/healthz`` (liveness) and ``/readyz`` (readiness).

* ``/healthz`` says the process answers HTTP: no database, no I/O, so it answers at
  once even while the database is slow, locked or away. A liveness probe that waited
  for the database would have an orchestrator restart healthy processes for an outage
  a restart cannot fix.
* ``/readyz`` says this process can serve requests now: one read from the database
  (never SQLite's write lock: a statement without ``BEGIN``, so another process
  holding ``BEGIN IMMEDIATE`` does not delay it) within ``ready_timeout`` seconds. When
  the database refuses, fails or does not answer in time, it is a 503 problem+json with
  ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3), and the orchestrator sends traffic
  elsewhere until it answers 200 again.

The read runs as a task of its own that the response does not wait for beyond the
timeout: the task is cancelled then, but whatever the driver does with a cancellation
(an SQLite call blocked on a lock finishes only in its thread), the probe has its
answer. One read at a time per process: while one is still out, a probe is answered
503 at once rather than piling up connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.fastapi import problem_responses
from optimist.problem import Problem
from optimist.service.episodes import Episode
from optimist.service.runtime import RuntimeDep
from optimist.service.schema import secrets
from optimist.sqlalchemy import autocommit
from optimist.starlette import problem_response

__all__ = ["RETRY_AFTER", "router"]

#: Seconds a client (or a load balancer) is asked to wait after a 503 from /readyz.
RETRY_AFTER: Final = 5

_LOGGER: Final = logging.getLogger("uvicorn.error")

router = APIRouter(tags=["health"])


def _not_ready() -> dict[int | str, dict[str, Any]]:
    """The 503 of /readyz as OpenAPI documents it: problem details and Retry-After."""
    responses = problem_responses(503)
    responses[503]["description"] = "Not ready: the database is slow, refusing or away"
    responses[503]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    return responses


@router.get("/healthz", summary="Liveness: the process answers, without the database")
async def healthz(runtime: RuntimeDep) -> dict[str, str | int]:
    """200 whenever the process serves HTTP; the worker's process id names who answered."""
    return {"status": "ok", "node_id": runtime.node_id, "worker": os.getpid()}


@router.get(
    "/readyz", summary="Readiness: the database answers a read in time", responses=_not_ready()
)
async def readyz(runtime: RuntimeDep, request: Request) -> Response:
    """200 when the database answered one read within the timeout, else 503 with Retry-After."""
    probe = _probe_of(request)
    failure = await probe.check(runtime.engine, runtime.settings.ready_timeout)
    if failure is None:
        return JSONResponse({"status": "ready", "node_id": runtime.node_id, "worker": os.getpid()})
    return problem_response(
        Problem(503, detail=f"Not ready: {failure}."), {"Retry-After": str(RETRY_AFTER)}
    )


class _Probe:
    """This process's readiness reads: at most one out at a time, failures as one episode."""

    def __init__(self) -> None:
        self._pending: asyncio.Task[None] | None = None
        self._failing = Episode(
            _LOGGER,
            begins="Not ready: %s",
            ends="Ready again, after %d failed readiness checks",
        )

    async def check(self, engine: AsyncEngine, timeout: float) -> str | None:
        """None when the database answered in time, else why not (for the client)."""
        if self._pending is not None and not self._pending.done():
            return self._failed("the previous check is still waiting for the database")
        task = self._pending = asyncio.create_task(_read(engine))
        task.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            # Given up, not awaited: the read ends when its driver lets it.
            task.cancel()
            return self._failed(f"the database did not answer within {timeout:g} seconds")
        error = task.exception()
        if error is not None:
            # The log names the cause; the client learns only which dependency failed.
            cause = f"{type(error).__name__}: {error}"
            return self._failed("the database cannot be reached", cause)
        self._failing.over()
        return None

    def _failed(self, reason: str, cause: str | None = None) -> str:
        self._failing.occurred(f"{reason} ({cause})" if cause else reason)
        return reason


async def _read(engine: AsyncEngine) -> None:
    """One read of one of the service's own tables, without a transaction."""
    async with autocommit(engine) as connection:
        await connection.execute(select(secrets.c.name).limit(1))


def _retrieve(task: asyncio.Task[None]) -> None:
    """Fetch a late read's outcome, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _probe_of(request: Request) -> _Probe:
    probe = getattr(request.app.state, "readiness", None)
    if not isinstance(probe, _Probe):
        probe = request.app.state.readiness = _Probe()
    return probe

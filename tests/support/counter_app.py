"""The app the HTTP race tests serve under uvicorn: the benchmark's optimist app.

``GET /items/{id}`` answers the item and its ETag; ``PATCH /items/{id}`` writes with
the If-Match inside the UPDATE (:mod:`bench.apps.optimist_app`). The database URL
comes from ``BENCH_DATABASE_URL``; the tests create the schema from :data:`metadata`.
``COUNTER_NAIVE=1`` swaps in the seeds' read-compare-write, to show what the race
tests catch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from optimist.conditions import ALWAYS, Condition
from optimist.errors import PreconditionFailed
from optimist.sqlalchemy import Bind, Record, Versioned, get, update

# bench/ is not installed: it is found beside tests/, by this process and by the servers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.apps import optimist_app
from bench.apps.optimist_app import items, metadata

__all__ = ["create_app", "items", "metadata"]


async def naive_update(
    bind: Bind, table: Versioned, key: object, values: Mapping[str, Any], *, condition: Condition
) -> Record:
    """The seeds' pattern: read, compare in Python, then write unconditionally."""
    current = await get(bind, table, key)
    if not condition.holds(current.state):
        raise PreconditionFailed(current.etag)
    return await update(bind, table, key, values, condition=ALWAYS)


def create_app() -> FastAPI:
    """The optimist app; with ``COUNTER_NAIVE=1``, one that writes by read-compare-write."""
    if os.environ.get("COUNTER_NAIVE") == "1":
        return optimist_app.create_app(write=naive_update)
    return optimist_app.create_app()

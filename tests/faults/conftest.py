"""Fault tests: ``optimist serve --workers 2`` in real processes while something breaks.

Each module runs its fault once per session (:func:`tests.support.shared.once`, also
under pytest-xdist), in a module-scoped fixture that records what the clients saw, and
its tests each check one behaviour against that record. PostgreSQL faults that only end
sessions use a scratch database on the shared server; an outage stops a private cluster
of the test's own (:mod:`tests.support.clusters`), never the shared server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import postgres_server_url, scratch_database

__all__ = ["fault_database", "postgres_server_url"]


@pytest.fixture(scope="module")
def fault_database(postgres_server_url: str) -> Iterator[str]:
    """A scratch database on the shared server for one module's deployment, dropped after."""
    yield from scratch_database(postgres_server_url, "optimist_faults")

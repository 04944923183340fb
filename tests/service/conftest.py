"""Fixtures for the reference service: the app on each backend, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support_service import Service, running, settings_for


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    """The service on a fresh database of each backend, demo data loaded."""
    async with running(settings_for(database_url)) as started:
        yield started

"""What every test shares: the async backend, and Hypothesis settings.

Nothing here imports a framework, a driver or the service: the core tests
(``tests/core``) run in an environment without optimist's extras. The database
fixtures live in :mod:`tests.support.databases`, imported by the conftest of each test
package that needs them.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

# Properties are about behaviour, not speed: a loaded machine must not fail them.
settings.register_profile("optimist", deadline=None, print_blob=True)
settings.load_profile("optimist")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and asyncpg use."""
    return "asyncio"

"""What every test shares: the async backend, Hypothesis settings, and FastAPI's
caches emptied after each test.

Nothing here imports a framework, a driver or the service: the core tests
(``tests/core``) run in an environment without optimist's extras. The database
fixtures live in :mod:`tests.support.databases`, imported by the conftest of each test
package that needs them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Properties are about behaviour, not speed: a loaded machine must not fail them.
settings.register_profile("optimist", deadline=None, print_blob=True)
settings.load_profile("optimist")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and asyncpg use."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _forget_fastapi_callables() -> Iterator[None]:
    """Empty FastAPI's module-level caches once a test is done with its apps.

    FastAPI keeps what it learnt of each endpoint and dependency in LRU caches of 4,096
    entries per module, keyed by the callable itself. A test builds an app of its own,
    and callables that close over their app keep it alive from there: some 400 apps in
    a worker, millions of objects, and collections of the oldest generation that stop
    the event loop for seconds, long enough for a connection being opened meanwhile to
    time out. A production process builds one app; only a test run builds thousands.
    """
    yield
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "fastapi" or name.startswith("fastapi.")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()

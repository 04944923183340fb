"""One ``optimist serve`` with the demo data per module, and each shared cache before it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.caches import CACHES, Cache, nginx, varnish
from tests.support.servers import Server, optimist_serving

__all__ = ["cache", "origin"]


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on SQLite with the demo data, reached directly."""
    directory = tmp_path_factory.mktemp("origin")
    with optimist_serving(directory, env={"OPTIMIST_DEMO_DATA": "1"}) as server:
        yield server


@pytest.fixture(scope="module", params=CACHES)
def cache(
    request: pytest.FixtureRequest, origin: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cache]:
    """Each shared cache in front of :func:`origin`, started and stopped around a module."""
    directory = tmp_path_factory.mktemp(request.param)
    start = varnish if request.param == "varnish" else nginx
    with start(origin, directory) as running:
        yield running

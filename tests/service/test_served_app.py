"""The application as a worker of ``optimist serve`` builds it (server.served_app)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.servers import SERVE_ENV

_BUILD = (
    "import gc; from optimist.service.server import served_app; "
    "before = gc.get_freeze_count(); served_app(); print(before, gc.get_freeze_count())"
)


def test_what_a_worker_built_is_frozen_out_of_the_collector(tmp_path: Path) -> None:
    """The objects of the worker's startup are out of the collector's full passes."""
    env = {**SERVE_ENV, "OPTIMIST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db'}"}
    built = subprocess.run(
        [sys.executable, "-c", _BUILD], env=env, capture_output=True, text=True, check=True
    )
    before, after = map(int, built.stdout.split())
    assert before == 0
    assert after > 10_000  # the modules and the application, not a handful

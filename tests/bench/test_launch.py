"""Every factory subject is built through bench_launch, which freezes its startup's objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# bench/ is not installed: it is found beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.servers import LAUNCH, ROOT, _command, environment
from bench.subjects import KINTO, OPTIMIST, RAW, twin

_BUILD = "import gc, bench_launch; bench_launch.create_app(); print(gc.get_freeze_count())"


def test_a_factory_subject_is_served_through_the_launcher() -> None:
    """uvicorn imports bench_launch, which finds the subject's own factory in the environment."""
    command = _command(RAW, 8000, 1)
    assert "bench_launch:create_app" in command
    env = environment(RAW, {})
    assert env["BENCH_FACTORY"] == RAW.target
    assert str(LAUNCH) in env["PYTHONPATH"].split(":")


def test_a_subject_from_another_commit_finds_the_launcher_too(tmp_path: Path) -> None:
    """The launcher is a module of its own, on the path whatever the other commit's bench holds."""
    env = environment(twin(OPTIMIST, "abc123", tmp_path), {})
    path = env["PYTHONPATH"].split(":")
    assert path.index(str(tmp_path)) < path.index(str(LAUNCH))
    assert env["BENCH_FACTORY"] == OPTIMIST.target


def test_a_wsgi_application_is_served_as_it_is() -> None:
    """Kinto's WSGI application is no factory: uvicorn imports it directly."""
    assert KINTO.target in _command(KINTO, 8000, 1)
    assert "BENCH_FACTORY" not in environment(KINTO, {})


def test_the_launcher_builds_the_application_and_freezes_what_the_process_holds() -> None:
    """After the launcher the interpreter's startup objects are out of the collector."""
    env = {**environment(RAW, {}), "BENCH_DATABASE_URL": "sqlite+aiosqlite:///unused.db"}
    command = [sys.executable, "-c", _BUILD]
    built = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert int(built.stdout) > 10_000

"""``python3 dev.py serve`` on a fresh checkout: it says what it does, installs only what
serving needs, and serves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, SERVE_ENV, free_port, serving

pytestmark = pytest.mark.slow


def fresh_checkout(destination: Path) -> Path:
    """The files git tracks (as they are in the working tree), with no environment."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_dev_serve_installs_only_what_serving_needs_and_serves(tmp_path: Path) -> None:
    """A first ``dev.py serve`` says what it installs, installs no test tool, and serves."""
    checkout = fresh_checkout(tmp_path / "optimist")
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "dev.py", "serve", "--port", str(port)]
    # The OPTIMIST_* variables of the test run must not reach the newcomer's service.
    with serving(
        command, port=port, log=log, ready="/healthz", cwd=checkout, env=SERVE_ENV, timeout=900
    ):
        assert httpx.get(f"http://127.0.0.1:{port}/projects").status_code == 200
    output = log.read_text()
    assert "installing what the service needs" in output
    assert "Successfully installed" in output  # pip's own progress is shown
    assert "starting optimist serve" in output
    installed = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    for tool in ("pytest", "mypy", "ruff", "schemathesis", "hypothesis"):
        assert f"\n{tool}==" not in f"\n{installed}", tool
    for needed in ("fastapi", "sqlalchemy", "uvicorn", "asyncpg", "aiosqlite"):
        assert f"\n{needed}==" in f"\n{installed}", needed

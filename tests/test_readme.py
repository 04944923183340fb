"""The README's promises: two commands on its first screen, and code that runs as written.

Every Python block of README.md runs unmodified, as a newcomer would run it: the app
block saved as ``notes.py`` and served by uvicorn, the client block against
``optimist serve`` on the address the first command serves.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, free_port, optimist_command, serving

README = ROOT / "README.md"
SERVICE_URL = "http://127.0.0.1:8000"

pytestmark = pytest.mark.slow


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _block(marker: str) -> str:
    (block,) = (block for block in _blocks("python") if marker in block)
    return block


def test_first_screen_has_exactly_the_two_commands() -> None:
    """The first code block is the serve command and the test command, nothing else."""
    lines = [line.split("#")[0].strip() for line in _blocks("sh")[0].splitlines()]
    assert [line for line in lines if line] == ["python3 dev.py serve", "python3 dev.py test"]


def test_every_python_block_is_run_by_a_test() -> None:
    """The README has the two Python blocks these tests run, and no other."""
    assert len(_blocks("python")) == 2
    assert _block("versioned_table") != _block("optimist.httpx")


def test_example_app_runs_as_written(tmp_path: Path) -> None:
    """notes.py under uvicorn: its first note has an ETag, a matching If-Match writes,
    a stale one is a 412 with the current ETag, a missing note a 404; a restart keeps
    the note."""
    (tmp_path / "notes.py").write_text(_block("versioned_table"))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "notes:app", "--port", str(port)]
    log = tmp_path / "log"
    with (
        serving(command, port=port, log=log, ready="/notes/1", cwd=tmp_path) as app,
        httpx.Client(base_url=app.url) as client,
    ):
        read = client.get("/notes/1")
        tag = read.headers["ETag"]
        same = client.get("/notes/1", headers={"If-None-Match": tag})
        written = client.patch("/notes/1", params={"text": "second"}, headers={"If-Match": tag})
        stale = client.patch("/notes/1", params={"text": "third"}, headers={"If-Match": tag})
        missing = client.get("/notes/2")
    assert read.json() == {"id": "1", "text": "hello"}
    assert same.status_code == 304
    assert written.json() == {"id": "1", "text": "second"}
    assert written.headers["ETag"] != tag
    assert stale.status_code == 412
    assert stale.headers["ETag"] == written.headers["ETag"]
    assert stale.json()["current_etag"] == written.headers["ETag"]
    assert missing.status_code == 404
    with serving(command, port=port, log=tmp_path / "log2", ready="/notes/1", cwd=tmp_path) as app:
        assert httpx.get(f"{app.url}/notes/1").json() == {"id": "1", "text": "second"}


def test_client_example_runs_against_the_service(tmp_path: Path) -> None:
    """The client block, run as written against ``optimist serve`` on 127.0.0.1:8000
    (what the first command serves), renames the demo project."""
    command = optimist_command("serve", "--port", "8000")
    with serving(command, port=8000, log=tmp_path / "log", ready="/healthz", cwd=tmp_path):
        ran = subprocess.run(
            [sys.executable, "-c", _block("optimist.httpx")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        project = httpx.get(f"{SERVICE_URL}/projects/proj_abc123").json()["result"]
    assert project["name"] == "Main Street Sign, v2"

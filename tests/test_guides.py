"""The guides' examples run as written: each Python block of a guide in docs/ that names
its file is saved under that name and served by uvicorn, as a reader would run it."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, free_port, serving

pytestmark = pytest.mark.slow

IDEMPOTENCY = ROOT / "docs" / "idempotency.md"


def example(guide: Path, name: str) -> str:
    """The Python block of ``guide`` that starts with ``# <name> —``."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    (block,) = (block for block in blocks if block.startswith(f"# {name} "))
    return block


def test_idempotency_example_replays_a_resend_and_refuses_a_reuse(tmp_path: Path) -> None:
    """counters.py: a keyed PATCH adds once; the resend is the same answer marked as a
    replay; the key with another request is a 422; no key is an ordinary write."""
    (tmp_path / "counters.py").write_text(example(IDEMPOTENCY, "counters.py"))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "counters:app", "--port", str(port)]
    with (
        serving(command, port=port, log=tmp_path / "log", ready="/docs", cwd=tmp_path) as app,
        httpx.Client(base_url=app.url) as client,
    ):
        key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        first = client.patch("/counters/1", params={"by": 5}, headers=key)
        again = client.patch("/counters/1", params={"by": 5}, headers=key)
        reused = client.patch("/counters/1", params={"by": 6}, headers=key)
        plain = client.patch("/counters/1", params={"by": 1})
    assert (first.status_code, first.json()["value"]) == (200, 5), first.text
    assert (again.status_code, again.content, again.headers["etag"]) == (
        200,
        first.content,
        first.headers["etag"],
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert (reused.status_code, reused.headers["content-type"]) == (422, "application/problem+json")
    assert plain.json()["value"] == 6

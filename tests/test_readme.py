"""The README's promises: two commands on its first screen, and an example that works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from optimist.sqlalchemy import create

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_first_screen_has_exactly_the_two_commands() -> None:
    """The first code block is the serve command and the test command, nothing else."""
    lines = [line.split("#")[0].strip() for line in _blocks("sh")[0].splitlines()]
    assert [line for line in lines if line] == ["python3 dev.py serve", "python3 dev.py test"]


@pytest.mark.anyio
async def test_example_app_refuses_a_stale_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's app serves ETags, applies a matching If-Match and refuses a stale one."""
    monkeypatch.chdir(tmp_path)
    example = next(block for block in _blocks("python") if "versioned_table" in block)
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # our own README
    engine = namespace["engine"]
    async with engine.begin() as connection:
        await connection.run_sync(namespace["metadata"].create_all)
    await create(engine, namespace["notes"], {"id": "n1", "text": "first"})

    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        read = await client.get("/notes/n1")
        tag = read.headers["ETag"]
        same = await client.get("/notes/n1", headers={"If-None-Match": tag})
        written = await client.patch("/notes/n1?text=second", headers={"If-Match": tag})
        stale = await client.patch("/notes/n1?text=third", headers={"If-Match": tag})
    await engine.dispose()

    assert read.json() == {"id": "n1", "text": "first"}
    assert same.status_code == 304
    assert written.status_code == 200
    assert written.json() == {"id": "n1", "text": "second"}
    assert written.headers["ETag"] != tag
    assert stale.status_code == 412
    assert stale.headers["ETag"] == written.headers["ETag"]
    assert stale.json()["current_etag"] == written.headers["ETag"]

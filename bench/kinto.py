"""Kinto, from PyPI, in a virtualenv of its own, on a PostgreSQL database of its own.

Kinto is a WSGI (Pyramid) application; it is served by the same uvicorn, through
uvicorn's WSGI interface, with the same flags as the other subjects. Its records
live in ``/v1/buckets/bench/collections/items/records/{id}``, writable by anyone
(no authentication policy: what every other subject does too), and its request log
is quietened to warnings, as uvicorn's access log is for every subject.

:func:`prepare` returns the subject, or raises :class:`KintoUnavailable` with the
reason; the suite then prints the reason and goes on without Kinto.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Final

import httpx

from bench.database import CONTENTION_ROW
from bench.servers import Running
from bench.subjects import KINTO, Subject

__all__ = ["VENV", "KintoUnavailable", "fill", "prepare", "version"]

VENV: Final = Path(__file__).resolve().parent / ".kinto-venv"
_PYTHON: Final = VENV / "bin" / "python"
_KINTO: Final = VENV / "bin" / "kinto"
_STAMP: Final = VENV / ".bench-installed"
_REQUIREMENTS: Final = ("kinto[postgresql]", "uvicorn[standard]")
_BATCH: Final = 25  # Kinto's default kinto.batch_max_requests

_INI: Final = """\
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = {url}
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.postgresql
kinto.permission_url = {url}
kinto.userid_hmac_secret = benchmark
kinto.bucket_create_principals = system.Everyone
multiauth.policies =

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARNING
formatter = plain

[formatter_plain]
format = %(levelname)s %(name)s %(message)s
"""

_WSGI: Final = """\
import os
from pyramid.paster import get_app, setup_logging

setup_logging(os.environ["KINTO_INI"])
application = get_app(os.environ["KINTO_INI"], "main")
"""


class KintoUnavailable(RuntimeError):
    """Kinto could not be installed, configured or started; the message says why."""


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise KintoUnavailable(f"{what} failed: " + " / ".join(tail))
    return done.stdout


def _install() -> None:
    wanted = " ".join(_REQUIREMENTS)
    if _STAMP.exists() and _STAMP.read_text() == wanted:
        return
    if not _PYTHON.exists():
        print(f"creating {VENV} for Kinto", flush=True)
        _run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], "python -m venv")
        _run([str(_PYTHON), "-m", "ensurepip", "--upgrade"], "ensurepip")
    print("installing Kinto from PyPI into its virtualenv", flush=True)
    _run([str(_PYTHON), "-m", "pip", "install", "--quiet", *_REQUIREMENTS], "pip install kinto")
    _STAMP.write_text(wanted)


def version() -> str:
    """The installed Kinto's version."""
    return _run([str(_KINTO), "version"], "kinto version").strip()


def prepare(workdir: Path, database_url: str) -> Subject:
    """Install Kinto if needed, write its configuration for ``database_url`` and migrate."""
    _install()
    libpq = database_url.replace("postgresql+asyncpg://", "postgresql://")
    directory = workdir / "kinto"
    directory.mkdir(parents=True, exist_ok=True)
    ini = directory / "kinto.ini"
    ini.write_text(_INI.format(url=libpq))
    (directory / "kinto_wsgi.py").write_text(_WSGI)
    _run([str(_KINTO), "migrate", "--ini", str(ini)], "kinto migrate")
    return replace(KINTO, python=str(_PYTHON), cwd=directory, env={"KINTO_INI": str(ini)})


async def fill(running: Running, rows: int = CONTENTION_ROW) -> None:
    """The bucket, the collection and records 1..``rows`` (counter 0), unless there."""
    everyone = {"read": ["system.Everyone"], "write": ["system.Everyone"]}
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        if (await client.get(running.subject.item(rows))).status_code == 200:
            return
        bucket = await client.put("/v1/buckets/bench", json={"permissions": everyone})
        collection = await client.put("/v1/buckets/bench/collections/items", json={})
        for response in (bucket, collection):
            if response.status_code not in (200, 201):
                raise KintoUnavailable(f"{response.request.url}: {response.text[:300]}")
        # One batch at a time: Kinto refuses concurrent creates in one collection (409).
        path = running.subject.item_prefix
        for start in range(1, rows + 1, _BATCH):
            requests = [
                {
                    "method": "PUT",
                    "path": f"{path}{key}",
                    "body": {"data": {"counter": 0, "text": f"an item of the benchmark {key}"}},
                }
                for key in range(start, min(start + _BATCH, rows + 1))
            ]
            response = await client.post("/v1/batch", json={"requests": requests})
            statuses = {answer["status"] for answer in response.json().get("responses", [])}
            if response.status_code != 200 or not statuses <= {200, 201}:
                raise KintoUnavailable(f"filling Kinto: {response.text[:300]}")

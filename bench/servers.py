"""Start a subject as uvicorn processes on 127.0.0.1 and stop it again.

Every subject runs under the same server: uvicorn with uvloop and httptools when its
interpreter has them (``uvicorn[standard]``, what a deployment installs), no access
log, ``--workers N``. An application built by a factory is built through
``bench/launch/bench_launch.py``, which then freezes what the process holds after startup
out of the garbage collector, as ``optimist serve`` does, for every such subject alike.
Only loopback addresses are ever served or loaded.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from bench.subjects import Subject

__all__ = ["HOST", "Running", "ServerFailed", "environment", "fast_stack", "serving"]

HOST: Final = "127.0.0.1"
ROOT: Final = Path(__file__).resolve().parent.parent
#: The directory of ``bench_launch``, the factory every factory subject is built through.
LAUNCH: Final = ROOT / "bench" / "launch"
_START_SECONDS: Final = 60.0


class ServerFailed(RuntimeError):
    """A subject's server did not start or died; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class Running:
    """A started server: its base URL, process and log file."""

    subject: Subject
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def check(self) -> None:
        """Raise ServerFailed if the server has exited."""
        if self.process.poll() is not None:
            raise ServerFailed(f"{self.subject.name} exited:\n{self.output()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@functools.cache
def fast_stack(python: str) -> bool:
    """Whether ``python`` has uvloop and httptools."""
    probe = subprocess.run([python, "-c", "import uvloop, httptools"], check=False)
    return probe.returncode == 0


def _command(subject: Subject, port: int, workers: int) -> list[str]:
    if subject.server == "granian":
        return _granian(subject, port, workers)
    command = [
        subject.python, "-m", "uvicorn", _target(subject),
        "--host", HOST, "--port", str(port), "--workers", str(workers),
        "--interface", subject.interface, "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    if subject.factory:
        command.append("--factory")
    if fast_stack(subject.python):
        command += ["--loop", "uvloop", "--http", "httptools"]
    return command


def _granian(subject: Subject, port: int, workers: int) -> list[str]:
    """granian's command for ``subject``: its ASGI interface, the event loop uvicorn runs
    on here, no access log, one runtime thread per worker (as uvicorn's one thread)."""
    command = [
        subject.python, "-m", "granian", _target(subject),
        "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--runtime-threads", "1", "--no-ws",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    if subject.factory:
        command.append("--factory")
    if fast_stack(subject.python):
        command += ["--loop", "uvloop"]
    return command


def _target(subject: Subject) -> str:
    """What the server imports: a factory subject through ``bench_launch`` (which freezes
    the startup's objects out of the collector), any other as it is."""
    return "bench_launch:create_app" if subject.factory else subject.target


def environment(subject: Subject, env: Mapping[str, str]) -> dict[str, str]:
    """The environment ``subject``'s server runs in: this one, ``subject.env`` and ``env``,
    the import path led by ``subject.path``, then this checkout (and ``bench_launch``'s
    directory, with the factory it builds for a factory subject)."""
    path = [*map(str, subject.path), str(ROOT), str(LAUNCH), os.environ.get("PYTHONPATH", "")]
    factory = {"BENCH_FACTORY": subject.target} if subject.factory else {}
    return {**os.environ, **subject.env, **env, **factory, "PYTHONPATH": os.pathsep.join(path)}


@contextmanager
def serving(subject: Subject, env: Mapping[str, str], workers: int, log: Path) -> Iterator[Running]:
    """Serve ``subject`` with ``workers`` processes until the block ends."""
    port = _free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            _command(subject, port, workers),
            cwd=subject.cwd or ROOT,
            env=environment(subject, env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(subject, f"http://{HOST}:{port}", process, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # Its own session: the group is this server's supervisor and workers only.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(running: Running) -> None:
    deadline = time.monotonic() + _START_SECONDS
    url = running.url + running.subject.ready_path
    while True:
        running.check()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"{running.subject.name} did not answer {url}:\n{running.output()}")
        time.sleep(0.1)

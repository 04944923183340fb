"""Real server processes for the tests that race clients over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["ROOT", "Server", "free_port", "optimist_command", "serving"]

#: The project root: the ``tests`` package and ``bench`` are importable from it.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def optimist_command(*arguments: str) -> list[str]:
    """The ``optimist`` command of this interpreter's environment."""
    return [str(Path(sys.executable).parent / "optimist"), *arguments]


@dataclass(frozen=True)
class Server:
    """A server process tree and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def serving(
    command: Sequence[str],
    *,
    port: int,
    log: Path,
    ready: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> Iterator[Server]:
    """Run ``command`` until the ``with`` ends, once GET ``ready`` answers 200.

    ``PYTHONPATH`` gains the project root, so a server can import test apps. The
    process is stopped with SIGTERM, as an operator would, and its exit awaited.
    """
    environment = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command), env=environment, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{server.url}{ready}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""Real server processes for the tests that race clients over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

__all__ = [
    "ROOT",
    "SERVE_ENV",
    "Server",
    "free_port",
    "optimist_command",
    "optimist_serving",
    "read_until_closed",
    "serving",
    "wait_until",
]

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
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """Run ``command`` until the ``with`` ends, once GET ``ready`` answers 200.

    ``PYTHONPATH`` gains the project root, so a server can import test apps. The
    process is stopped with SIGTERM, as an operator would, and its exit awaited.
    ``preexec_fn`` runs in the child before the command (e.g. to set a resource limit).
    """
    environment = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            env=environment,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,  # noqa: PLW1509 - sets a resource limit, no threads involved
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


#: The environment of a test's ``optimist serve``: no variable of the test runner's own.
SERVE_ENV: Final = {
    "OPTIMIST_DATABASE_URL": "",
    "OPTIMIST_SECRET_KEY": "test-secret",
    "OPTIMIST_NODE_ID": "test-node",
    "OPTIMIST_DEMO_DATA": "0",
    # The runner's own environment must not switch CORS on.
    "OPTIMIST_CORS_ORIGINS": "",
}


@contextmanager
def optimist_serving(
    directory: Path,
    *arguments: str,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    ready: str = "/readyz",
) -> Iterator[Server]:
    """``optimist serve`` on a free port, run in ``directory`` (its SQLite database there
    unless ``arguments`` name another), logging to ``directory / "serve.log"``."""
    port = free_port()
    command = optimist_command("serve", "--port", str(port), *arguments)
    environment = {**SERVE_ENV, **(env or {})}
    log = directory / "serve.log"
    with serving(
        command, port=port, log=log, ready=ready, env=environment, cwd=directory,
        preexec_fn=preexec_fn,
    ) as server:  # fmt: skip
        yield server


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds, a generous bound
    that only a broken server reaches, never a slow machine."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        time.sleep(0.05)


def read_until_closed(connection: socket.socket, *, timeout: float = 60) -> bytes:
    """Everything the server sends on ``connection`` until it closes it (a reset counts).

    Fails if the server keeps the connection open for ``timeout`` seconds.
    """
    received = b""
    connection.settimeout(timeout)
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open for {timeout} s") from None
        if not chunk:
            return received
        received += chunk

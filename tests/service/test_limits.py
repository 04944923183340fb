"""The open-file budget: the cap fits below the limit, the limit is raised at start, and a
flood of idle sockets beyond it leaves ``optimist serve`` answering with a short log."""

from __future__ import annotations

import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from optimist.service.limits import REFUSING, RESERVED_FILES, connection_cap
from tests.support.servers import (
    Server,
    optimist_command,
    optimist_serving,
    read_until_closed,
    wait_until,
)

HEADROOM = RESERVED_FILES + REFUSING


def open_files(soft: int, hard: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that gives the child ``soft`` (and ``hard``) open files, as ulimit -n."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or soft))

    return limit


@pytest.mark.parametrize(
    ("requested", "limit", "cap"),
    [
        (1000, None, 1000),
        (1000, 1_048_576, 1000),
        (1000, 1024, 1024 - HEADROOM),
        (10, HEADROOM + 1, 1),
    ],
    ids=["no-limit", "high-limit", "ulimit-1024", "room-for-one"],
)
def test_the_cap_leaves_room_below_the_open_file_limit(
    requested: int, limit: int | None, cap: int
) -> None:
    """The cap is the one requested, lowered to leave the reserve below the limit."""
    assert connection_cap(requested, limit) == cap


def test_a_limit_without_room_for_a_connection_is_refused() -> None:
    """An open-file limit at or below the reserve cannot serve: an error that says so."""
    with pytest.raises(ValueError, match="open-file limit"):
        connection_cap(1000, HEADROOM)


@pytest.mark.slow
def test_serve_refuses_to_start_below_the_reserve(tmp_path: Path) -> None:
    """``optimist serve`` under ``ulimit -n`` too small exits 2 and names the limit."""
    result = subprocess.run(
        optimist_command("serve", "--port", "9"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=open_files(HEADROOM),
        check=False,
    )
    assert result.returncode == 2
    assert "open-file limit" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/limits")
def test_the_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    """Started with a soft limit below the hard one, the server runs at the hard one."""
    with optimist_serving(tmp_path, preexec_fn=open_files(256, 4096)) as server:
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"]


FILES = 256
IDLE = 400  # more than FILES


@pytest.fixture
def starved(tmp_path: Path) -> Iterator[Server]:
    """``optimist serve`` under ``ulimit -n 256``, keeping idle connections for ten minutes."""
    with optimist_serving(
        tmp_path, "--idle-timeout", "600", preexec_fn=open_files(FILES)
    ) as server:
        yield server


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def answers_until_closed(sockets: list[socket.socket], count: int) -> list[bytes]:
    """What the server sent on each of the first ``count`` of ``sockets`` it closes."""
    received = dict.fromkeys(sockets, b"")
    answers: list[bytes] = []
    deadline = time.monotonic() + 120
    with selectors.DefaultSelector() as selector:
        for connection in sockets:
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
        while len(answers) < count:
            assert time.monotonic() < deadline, f"only {len(answers)} of {count} closed"
            for key, _ in selector.select(timeout=1):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    chunk = ready.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[ready] += chunk
                    continue
                selector.unregister(ready)
                answers.append(received[ready])
    return answers


@pytest.mark.slow
def test_idle_sockets_beyond_the_open_files_are_refused_and_the_log_stays_small(
    starved: Server,
) -> None:
    """400 idle sockets under ulimit -n 256: the extra ones get 503, the log stays short."""
    cap = FILES - HEADROOM
    with ExitStack() as stack:
        sockets = [stack.enter_context(connect(starved)) for _ in range(IDLE)]
        # Every socket beyond the cap is answered 503 (or closed) and closed: none hangs.
        answers = answers_until_closed(sockets, IDLE - cap)
        assert {answer[:12] for answer in answers} <= {b"HTTP/1.1 503", b""}
        with connect(starved) as late:
            assert read_until_closed(late).startswith(b"HTTP/1.1 503 ")
    wait_until(lambda: httpx.get(f"{starved.url}/readyz", timeout=60).status_code == 200)
    log = starved.output()
    assert len(log.encode()) < 16_000, log[-2000:]
    assert "Traceback" not in log

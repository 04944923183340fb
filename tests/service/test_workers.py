"""Workers die with their master: ``kill -9`` of ``optimist serve --workers 2`` leaves no
orphan serving the port, and a new server binds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from tests.support.servers import Server, free_port, optimist_command, serving, wait_until

linux = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in {"Z", "X"}


def workers_of(server: Server) -> set[int]:
    """The process ids of both workers, from /healthz asked over new connections."""
    seen: set[int] = set()

    def both() -> bool:
        seen.add(httpx.get(f"{server.url}/healthz", timeout=60).json()["worker"])
        return len(seen) == 2

    wait_until(both, what="both workers answering")
    return seen


@pytest.fixture
def killed(tmp_path: Path) -> Iterator[tuple[int, set[int]]]:
    """A two-worker server whose master got SIGKILL: its port and its workers' ids.

    Whatever the test finds, no worker outlives it.
    """
    workers: set[int] = set()
    port = free_port()
    env = {"OPTIMIST_DATABASE_URL": "", "OPTIMIST_NODE_ID": "n", "OPTIMIST_SECRET_KEY": "k"}
    try:
        with serving(
            optimist_command("serve", "--port", str(port), "--workers", "2"),
            port=port,
            log=tmp_path / "first.log",
            ready="/healthz",
            env=env,
            cwd=tmp_path,
        ) as server:
            workers |= workers_of(server)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=60)
        yield port, workers
    finally:
        for pid in workers:
            with suppress(OSError):  # gone meanwhile
                # Only a process that is still one of those workers, not a reused id.
                if alive(pid) and b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


@linux
@pytest.mark.slow
def test_workers_stop_when_their_master_is_killed(killed: tuple[int, set[int]]) -> None:
    """After SIGKILL of the master, both worker processes exit on their own."""
    _, workers = killed
    wait_until(lambda: not any(alive(pid) for pid in workers), what=f"workers {workers} gone")


@linux
@pytest.mark.slow
def test_a_new_server_binds_the_port_of_a_killed_master(
    killed: tuple[int, set[int]], tmp_path: Path
) -> None:
    """Once the workers are gone, ``optimist serve`` on the same port starts and answers."""
    port, workers = killed
    wait_until(lambda: not any(alive(pid) for pid in workers), what=f"workers {workers} gone")
    env = {"OPTIMIST_DATABASE_URL": "", "OPTIMIST_NODE_ID": "n", "OPTIMIST_SECRET_KEY": "k"}
    with serving(
        optimist_command("serve", "--port", str(port)),
        port=port,
        log=tmp_path / "second.log",
        ready="/healthz",
        env=env,
        cwd=tmp_path,
    ) as second:
        answer = httpx.get(f"{second.url}/healthz", timeout=60).json()
        assert answer["worker"] == second.process.pid


_ORPHANED = """
import os, sys
from optimist.service.server import die_with_parent
die_with_parent(parent=os.getppid() + 1_000_000)  # a master that is not this parent
sys.stdin.read()  # never reached: the signal stops the process first
"""


@linux
def test_a_worker_whose_master_died_before_it_asked_stops_at_once() -> None:
    """If the parent is not the master any more when the kernel is asked, SIGTERM now."""
    result = subprocess.run(
        [sys.executable, "-c", _ORPHANED],
        stdin=subprocess.PIPE,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGTERM


# Prints this process's parent-death signal, then that of a worker multiprocessing starts.
_PDEATHSIG = """
import ctypes, multiprocessing
from optimist.service.server import die_with_parent

def pdeathsig():
    value = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value

def worker(queue):
    die_with_parent()
    queue.put(pdeathsig())

if __name__ == "__main__":
    die_with_parent()
    print(pdeathsig())
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    process = spawn.Process(target=worker, args=(queue,))
    process.start()
    print(queue.get(timeout=60))
    process.join()
"""


@pytest.fixture(scope="module")
def death_signals(tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """The parent-death signal of a process, and of a worker it starts, after each asked."""
    script = tmp_path_factory.mktemp("pdeathsig") / "pdeathsig.py"
    script.write_text(_PDEATHSIG)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    return [int(line) for line in result.stdout.split()]


@linux
def test_a_worker_asks_for_sigterm_when_its_master_dies(death_signals: list[int]) -> None:
    """In a process multiprocessing started, the kernel is asked for SIGTERM."""
    assert death_signals[1] == signal.SIGTERM


@linux
def test_outside_a_worker_nothing_is_asked(death_signals: list[int]) -> None:
    """The one-process server's parent is whoever started it: nothing is asked."""
    assert death_signals[0] == 0

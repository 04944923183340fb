"""App hosts of a test's own: network namespaces joined to this machine by veth pairs.

Several hosts behind one database are the deployment optimist is built for: stateless
``optimist serve`` processes, one per host, each with its own connection pool. A test
gets them as Linux network namespaces (``ip netns``), each joined to this machine by a
veth pair on a /24 of its own (:data:`SUBNET`): the host is ``10.231.N.2``, this
machine ``10.231.N.1`` on the other end of its link. Traffic goes only between a
namespace and this machine: the namespaces have no route elsewhere, and a process in one
reaches the database through a service this machine listens with on the link's address.

:meth:`Host.cut` takes the link down on this machine's side, as a pulled cable or a
failed switch port would: nothing is reset, packets are just no longer delivered.
:meth:`Host.mend` brings it back. Everything is removed when the ``with`` of
:func:`network_hosts` ends, whatever the test did: each namespace's processes killed,
then the namespace (deleting it deletes its veth pair).

Needs root and iproute2; outside CI a test without them is skipped, saying why, under
CI it fails.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests.support.deployments import PATIENCE, group_members
from tests.support.servers import ROOT, SERVE_ENV, free_port, optimist_command, wait_until

__all__ = ["SUBNET", "AppHost", "Host", "network_hosts", "serve_on"]

#: The addresses of host N are 10.231.N.0/24.
SUBNET: Final = "10.231"
#: Held while a process picks its hosts' numbers and makes their links, so that tests
#: in other processes (xdist's workers) never take the same /24.
_ALLOCATION: Final = Path("/tmp/optimist-netns.lock")


def _numbers_in_use() -> set[int]:
    """The host numbers whose /24 some link on this machine has an address in."""
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    prefix = f" {SUBNET}."
    return {
        int(line.split(prefix, 1)[1].split(".", 1)[0])
        for line in shown.splitlines()
        if prefix in line
    }


def _ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True, timeout=PATIENCE)


@dataclass(frozen=True)
class Host:
    """One namespace and its link: the host's address and this machine's on the link."""

    number: int
    namespace: str
    #: This machine's end of the veth pair.
    link: str

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.number}.2"

    @property
    def gateway(self) -> str:
        """This machine's address on the host's link."""
        return f"{SUBNET}.{self.number}.1"

    def command(self, *arguments: str) -> list[str]:
        """``arguments`` run inside the host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *arguments]

    def cut(self) -> None:
        """Take the link down: the host's packets stop, nothing is reset."""
        _ip("link", "set", self.link, "down")

    def mend(self) -> None:
        """Bring the link back up."""
        _ip("link", "set", self.link, "up")


def _require() -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "network namespaces need root"
    elif shutil.which("ip") is None:
        reason = "no ip command (iproute2)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the multi-host tests", pytrace=False)
        pytest.skip(reason)


def _namespace_pids(namespace: str) -> list[int]:
    found = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


@contextmanager
def network_hosts(count: int) -> Iterator[list[Host]]:
    """``count`` hosts, up and reachable from this machine; all removed at the end."""
    _require()
    tag = os.getpid()
    made: list[Host] = []
    try:
        with _ALLOCATION.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = _numbers_in_use()
            numbers = [n for n in range(1, 255) if n not in taken][:count]
            hosts = [Host(n, f"optimist-h{n}-{tag}", f"oh{n}x{tag}"[:15]) for n in numbers]
            _link(hosts, made)
        yield hosts
    finally:
        for host in made:
            for pid in _namespace_pids(host.namespace):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], check=False, timeout=PATIENCE)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True, check=False)


def _link(hosts: list[Host], made: list[Host]) -> None:
    """Make each host's namespace and link; ``made`` collects those to remove."""
    for host in hosts:
        _ip("netns", "add", host.namespace)
        made.append(host)
        inside = f"{host.link[:12]}in"
        _ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", host.namespace)
        _ip("addr", "add", f"{host.gateway}/24", "dev", host.link)
        _ip("link", "set", host.link, "up")
        _ip(*host.command("ip", "addr", "add", f"{host.address}/24", "dev", inside)[1:])
        _ip(*host.command("ip", "link", "set", inside, "up")[1:])
        _ip(*host.command("ip", "link", "set", "lo", "up")[1:])


@dataclass
class AppHost:
    """``optimist serve`` running inside one host's namespace."""

    host: Host
    port: int
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def serve_on(
    hosts: Sequence[Host], database_url: Callable[[Host], str], directory: Path, *options: str
) -> Iterator[list[AppHost]]:
    """``optimist serve`` on each host, listening on its address, with the database URL
    ``database_url`` gives for the host (reachable from inside its namespace); ready when
    each /readyz answers 200 from this machine. Every process is killed at the end."""
    running: list[AppHost] = []
    try:
        for host in hosts:
            port = free_port()
            arguments = ["serve", "--host", host.address, "--port", str(port)]
            command = host.command(
                *optimist_command(*arguments, "--database-url", database_url(host), *options)
            )
            log = directory / f"host{host.number}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    command,
                    env={**os.environ, **SERVE_ENV, "PYTHONPATH": str(ROOT)},
                    cwd=directory,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            running.append(AppHost(host, port, log, process))
        for app in running:
            wait_until(functools.partial(_ready, app), timeout=PATIENCE, what=f"{app.url} ready")
        yield running
    finally:
        for app in running:
            with suppress(ProcessLookupError):
                os.killpg(app.process.pid, signal.SIGKILL)
            app.process.wait()
            wait_until(functools.partial(_gone, app), timeout=PATIENCE, what="the host's processes")


def _gone(app: AppHost) -> bool:
    return not group_members(app.process.pid)


def _ready(app: AppHost) -> bool:
    if app.process.poll() is not None:
        raise AssertionError(f"optimist serve on host {app.host.number} exited:\n{app.output()}")
    try:
        return httpx.get(f"{app.url}/readyz", timeout=10).status_code == 200
    except httpx.TransportError:
        return False

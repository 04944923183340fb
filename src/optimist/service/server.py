"""How ``optimist serve`` runs the service: uvicorn, bounded, with workers tied to their master.

:func:`fit_connections` raises the open-file limit and fits the connection cap below
it (:mod:`optimist.service.limits`); :func:`serve` then runs ``uvicorn.run`` with the
bounded HTTP protocol (:mod:`optimist.service.connections`): one process, or with
``workers`` > 1 a master that binds the socket and supervises worker processes, each
serving :func:`served_app` (:class:`Supervisor`: uvicorn's, which also keeps the
workers' metric files, :mod:`optimist.service.metrics`, in a directory of their own,
removed at exit). The ASGI scope's ``client`` is always the connection's peer: uvicorn
does not rewrite it from forwarded fields, so that no request can name a trusted peer
for itself. SIGTERM stops it gracefully (requests in progress get
:data:`GRACEFUL_SHUTDOWN` seconds); the access log has a line per request.

:func:`served_app` is the factory every worker (or the one process) builds the
application with: the service of :func:`~optimist.service.app.create_app` behind the
body deadline (:mod:`optimist.service.request_body`), and, at startup, the gate that
logs failed accepts as episodes installed on the serving loop; what it built is then
frozen out of the garbage collector.

A worker must not outlive its master: uvicorn's master stops its workers on SIGTERM,
but a master killed with SIGKILL (the OOM killer, ``kill -9``, a crashed container
runtime) leaves them serving as orphans that keep the port, so that the next start
fails with "address already in use". :func:`die_with_parent` asks Linux to send the
worker SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks that
the parent did not die before the request took effect.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import gc
import logging
import math
import multiprocessing
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from socket import socket
from typing import Any, Final

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

from optimist.service.app import create_app
from optimist.service.connections import BoundedHttpProtocol
from optimist.service.gate import Gate
from optimist.service.limits import connection_cap, raise_open_file_limit
from optimist.service.metrics import metric_files
from optimist.service.request_body import RequestBodyGuard
from optimist.service.settings import Settings

__all__ = [
    "GRACEFUL_SHUTDOWN",
    "Supervisor",
    "die_with_parent",
    "fit_connections",
    "serve",
    "served_app",
]

#: Seconds requests in progress may take to finish after SIGTERM.
GRACEFUL_SHUTDOWN: Final = 10

# <linux/prctl.h>
_PR_SET_PDEATHSIG: Final = 1

_LOGGER: Final = logging.getLogger("uvicorn.error")

#: The factory every worker (or the one process) imports.
_APP: Final = "optimist.service.server:served_app"


def fit_connections(settings: Settings) -> Settings:
    """``settings`` with a connection cap that fits this process's open-file limit.

    Raises the soft open-file limit to the hard one first (the workers inherit it) and
    says so on stderr when the cap had to be lowered. Raises ValueError when the limit
    leaves no room for a single connection.
    """
    open_files = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        print(
            f"optimist: at most {cap} connections per worker, not {settings.max_connections}: "
            f"the open-file limit is {open_files}",
            file=sys.stderr,
        )
    return dataclasses.replace(settings, max_connections=cap)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve ``settings``' deployment on ``host``:``port`` until SIGTERM or SIGINT.

    Every worker builds its application and its connections' limits from the
    ``OPTIMIST_*`` variables, so ``settings`` (fitted by :func:`fit_connections`) are
    written into this process's environment first, which the workers inherit. The
    metric files of its processes go to a private directory
    (:func:`~optimist.service.metrics.metric_files`), which :class:`Supervisor` keeps
    for the workers.
    """
    os.environ.update(settings.to_environment())
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "http": BoundedHttpProtocol,
        # Whole seconds for uvicorn; the protocol times idleness with the exact value.
        "timeout_keep_alive": math.ceil(settings.idle_timeout),
        "access_log": True,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
        # The application sets Date itself, from the clock reading it keeps Last-Modified
        # under (RFC 9110 §8.8.2.1); uvicorn's would be a second Date, up to a second older.
        "date_header": False,
        # The admin API believes identity fields from trusted peers only
        # (settings.trusted_peers): the peer must be the connection's, never one an
        # X-Forwarded-For names, which uvicorn would otherwise take from loopback peers
        # (or from any, with FORWARDED_ALLOW_IPS=*).
        "proxy_headers": False,
    }
    with metric_files() as metrics:
        if workers <= 1:
            # uvicorn raises the signal that stopped it again once it has shut down, for
            # its default action: that would end this process before the block removes
            # the metrics directory. Ended like the workers' master, with status 0.
            signal.signal(signal.SIGTERM, _stopped)
            uvicorn.run(_APP, **options)
            return
        # What uvicorn.run does for workers, with a supervisor that also keeps the metrics.
        config = uvicorn.Config(_APP, workers=workers, **options)
        with suppress(KeyboardInterrupt):
            Supervisor(config, sockets=[config.bind_socket()], metrics=metrics).run()


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM raised again by uvicorn after a graceful shutdown: leave normally."""
    raise SystemExit(0)


class Supervisor(Multiprocess):
    """uvicorn's supervisor of worker processes, which also forgets the live gauges of
    each worker that has exited (prometheus-client's ``mark_process_dead``).

    A worker that dies is replaced by the time :meth:`keep_subprocess_alive` returns;
    one retired on a signal (SIGHUP, SIGTTOU) has been by the next call. Its counters
    and histograms stay: what it served was served.
    """

    def __init__(self, config: uvicorn.Config, *, sockets: list[socket], metrics: Path) -> None:
        super().__init__(config, sockets=sockets)
        self.metrics = metrics
        self._serving: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        """Replace dead workers, as uvicorn does, then forget the ones gone."""
        before = self._workers()
        super().keep_subprocess_alive()
        self._serving, gone = self._workers(), self._serving | before
        for pid in gone - self._serving:
            mark_process_dead(pid, str(self.metrics))  # type: ignore[no-untyped-call]

    def _workers(self) -> set[int]:
        """The process ids of the workers serving now."""
        return {process.pid for process in self.processes if process.pid is not None}


def served_app() -> ASGIApp:
    """The application as ``optimist serve`` serves it, built in each worker process.

    What the worker holds once it is built (the modules, the application, its tables)
    lives as long as the process: it is frozen out of the garbage collector
    (:func:`gc.freeze`), so that a full collection no longer walks it. Walking it paused
    every request in flight for tens of milliseconds, the 99th percentile of a one-row
    GET (55–64 ms against 7–9 ms frozen, in ``bench/``).
    """
    die_with_parent()
    settings = Settings.from_environment()
    app = _InstallGate(RequestBodyGuard(create_app(settings), timeout=settings.body_timeout))
    gc.collect()
    gc.freeze()
    return app


class _InstallGate:
    """ASGI middleware: at lifespan startup, install the serving loop's :class:`Gate`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            Gate.of(asyncio.get_running_loop())
        await self.app(scope, receive, send)


def die_with_parent(parent: int | None = None) -> None:
    """In a worker process, have Linux send SIGTERM when the master dies; elsewhere nothing.

    ``parent`` is the master's process id; by default the one multiprocessing started
    this process from, and when there is none (the single-process server), nothing is
    done: that process's parent is whoever started ``optimist serve``. If the master
    has died already, before the kernel could watch it, the worker stops now.
    """
    if parent is None:
        started_by = multiprocessing.parent_process()
        if started_by is None or started_by.pid is None:
            return
        parent = started_by.pid
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        _LOGGER.warning("Cannot tie this worker to its master: %s", os.strerror(error))
        return
    if os.getppid() != parent:
        # The master died before prctl took effect: no signal will come; act as if it had.
        _LOGGER.warning("The master process [%d] is gone: stopping this worker", parent)
        os.kill(os.getpid(), signal.SIGTERM)

"""Shared caches in front of a real ``optimist serve``: Debian's Varnish and nginx.

Each runs as an operator would run it, in a temporary directory of its own, stopped and
removed when the ``with`` ends:

* Varnish with its default configuration: ``-b`` names the backend, no VCL of ours, so
  the built-in VCL decides what is cached (RFC 9111 by Varnish's reading, and 120
  seconds for a response that says nothing);
* nginx as a reverse proxy with its proxy cache on and ``proxy_cache_valid`` for 200s,
  the setup its documentation shows: a response that says nothing is kept 10 minutes.

Each reports whether it answered a request from its store (:attr:`Cache.hit`), so a test
can tell a response the service sent from one the cache kept.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests.support.servers import Server, free_port, serving

__all__ = ["CACHES", "Cache", "nginx", "program", "varnish"]

#: The Debian packages' programs, by cache.
PROGRAMS: Final = {"varnish": "/usr/sbin/varnishd", "nginx": "/usr/sbin/nginx"}
#: The names of the caches, in the order tests run through them.
CACHES: Final = tuple(PROGRAMS)
#: The header nginx reports its cache's verdict in (the operator's choice of name).
NGINX_STATUS: Final = "X-Cache-Status"


@dataclass(frozen=True)
class Cache:
    """A running shared cache in front of the service."""

    name: str
    server: Server
    #: Whether a response was served from the cache's store, not by the service.
    hit: Callable[[httpx.Response], bool]
    #: The response field the cache adds to every response it passes on.
    mark: str

    @property
    def url(self) -> str:
        """The base URL clients use: the cache's."""
        return self.server.url


def program(name: str) -> str:
    """The installed program of cache ``name``; without it, a skip (a failure under CI)."""
    path = PROGRAMS[name]
    found = path if os.access(path, os.X_OK) else shutil.which(Path(path).name)
    if found is None:
        reason = f"{name} is not installed ({path}; Debian's {name} package)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared caches: {reason}")
        pytest.skip(reason)
    return found


def _varnish_hit(response: httpx.Response) -> bool:
    # X-Varnish holds this request's id, and the stored object's id after it on a hit.
    return len(response.headers.get("x-varnish", "").split()) > 1


@contextmanager
def varnish(backend: Server, directory: Path) -> Iterator[Cache]:
    """Varnish with its default configuration in front of ``backend``."""
    varnishd = program("varnish")
    port = free_port()
    backend_address = backend.url.removeprefix("http://")
    command = [
        varnishd, "-F", "-a", f"127.0.0.1:{port}", "-b", backend_address,
        "-n", str(directory / "varnish"), "-s", "malloc,32m",
    ]  # fmt: skip
    log = directory / "varnish.log"
    with serving(command, port=port, log=log, ready="/readyz", cwd=directory) as server:
        yield Cache("varnish", server, _varnish_hit, "X-Varnish")


def _nginx_config(directory: Path, port: int, backend: Server) -> str:
    """An nginx configuration caching ``backend``'s responses, all paths in ``directory``."""
    # Root starts nginx's workers as nobody, who cannot enter a test's directory.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    proxy_cache_path {directory}/cache levels=1:2 keys_zone=optimist:1m max_size=32m
                     inactive=10m use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {backend.url};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_cache optimist;
            proxy_cache_valid 200 301 302 10m;
            add_header {NGINX_STATUS} $upstream_cache_status always;
        }}
    }}
}}
"""


def _nginx_hit(response: httpx.Response) -> bool:
    return response.headers.get(NGINX_STATUS) in {"HIT", "STALE", "UPDATING", "REVALIDATED"}


@contextmanager
def nginx(backend: Server, directory: Path) -> Iterator[Cache]:
    """nginx as a caching reverse proxy in front of ``backend``."""
    executable = program("nginx")
    port = free_port()
    prefix = directory / "nginx"
    prefix.mkdir()
    config = prefix / "nginx.conf"
    config.write_text(_nginx_config(prefix, port, backend))
    command = [executable, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
    log = directory / "nginx.log"
    with serving(command, port=port, log=log, ready="/readyz", cwd=prefix) as server:
        yield Cache("nginx", server, _nginx_hit, NGINX_STATUS)

"""Settings of the reference service, from ``OPTIMIST_*`` environment variables.

The command line (:mod:`optimist.service.cli`) writes its options into the same
variables before it starts uvicorn, so every worker process of one deployment reads
one configuration, the way uvicorn's own ``--workers`` expects an importable factory.

Besides the application's settings, the limits that keep one deployment standing when
its clients misbehave (:mod:`optimist.service.connections`, :mod:`optimist.service.request_body`)
and the readiness probe's patience (:mod:`optimist.service.health`) live here, in seconds
and connections, so that an operator sets them the same two ways as the rest.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from optimist.errors import InvalidVectorClock
from optimist.vclock import VectorClock

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READY_TIMEOUT",
    "ENVIRONMENT",
    "Settings",
    "default_database_url",
    "default_node_id",
]

#: Option name → environment variable.
ENVIRONMENT = {
    "database_url": "OPTIMIST_DATABASE_URL",
    "node_id": "OPTIMIST_NODE_ID",
    "secret_key": "OPTIMIST_SECRET_KEY",
    "demo_data": "OPTIMIST_DEMO_DATA",
    "cursor_max_age": "OPTIMIST_CURSOR_MAX_AGE",
    "csrf_max_age": "OPTIMIST_CSRF_MAX_AGE",
    "head_timeout": "OPTIMIST_HEAD_TIMEOUT",
    "body_timeout": "OPTIMIST_BODY_TIMEOUT",
    "idle_timeout": "OPTIMIST_IDLE_TIMEOUT",
    "max_connections": "OPTIMIST_MAX_CONNECTIONS",
    "ready_timeout": "OPTIMIST_READY_TIMEOUT",
}

#: Seconds, then connections: the defaults of the server's limits (docs/service.md).
DEFAULT_HEAD_TIMEOUT: Final = 10.0
DEFAULT_BODY_TIMEOUT: Final = 30.0
DEFAULT_IDLE_TIMEOUT: Final = 5.0
DEFAULT_MAX_CONNECTIONS: Final = 1000
DEFAULT_READY_TIMEOUT: Final = 2.0

_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]+")


def default_database_url(directory: Path | None = None) -> str:
    """SQLite in the working directory: ``optimist.db``."""
    path = (directory or Path.cwd()) / "optimist.db"
    return f"sqlite+aiosqlite:///{path}"


def default_node_id() -> str:
    """A stable vector-clock node name derived from the host name."""
    name = _NODE_UNSAFE.sub("-", socket.gethostname()).strip("-")[:64]
    return name or "node"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """The variable of option ``name`` as seconds; unset or empty is ``default``."""
    return float(env.get(ENVIRONMENT[name]) or default)


def _flag(value: str) -> bool:
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Settings:
    """One deployment's configuration; every worker builds the same one."""

    database_url: str
    node_id: str
    #: When None, the key generated once and kept in the database is used.
    secret_key: str | None = None
    demo_data: bool = True
    cursor_max_age: timedelta = timedelta(hours=1)
    csrf_max_age: timedelta = timedelta(hours=1)
    #: Seconds a client may take to send a request's head (its line and header fields).
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    #: Seconds a request's body may take to arrive in full, counted from its head.
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    #: Seconds a connection may wait for its next request (keep-alive) or its first.
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    #: Open connections per worker process; one more is answered 503 and closed.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Seconds /readyz waits for the database before it answers 503.
    ready_timeout: float = DEFAULT_READY_TIMEOUT

    def __post_init__(self) -> None:
        try:
            VectorClock({self.node_id: 1})
        except InvalidVectorClock as error:
            raise ValueError(f"node id {self.node_id!r}: {error.reason}") from None
        for name in ("cursor_max_age", "csrf_max_age"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        for name in ("head_timeout", "body_timeout", "idle_timeout", "ready_timeout"):
            seconds = getattr(self, name)
            # NaN compares false both ways: refuse whatever is not a positive finite number.
            if not 0 < seconds < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {seconds}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``OPTIMIST_*`` variables, with the documented defaults."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get(ENVIRONMENT["database_url"]) or default_database_url(),
            node_id=env.get(ENVIRONMENT["node_id"]) or default_node_id(),
            secret_key=env.get(ENVIRONMENT["secret_key"]) or None,
            demo_data=_flag(env.get(ENVIRONMENT["demo_data"], "1")),
            cursor_max_age=timedelta(seconds=float(env.get(ENVIRONMENT["cursor_max_age"], "3600"))),
            csrf_max_age=timedelta(seconds=float(env.get(ENVIRONMENT["csrf_max_age"], "3600"))),
            head_timeout=_seconds(env, "head_timeout", DEFAULT_HEAD_TIMEOUT),
            body_timeout=_seconds(env, "body_timeout", DEFAULT_BODY_TIMEOUT),
            idle_timeout=_seconds(env, "idle_timeout", DEFAULT_IDLE_TIMEOUT),
            max_connections=int(env.get(ENVIRONMENT["max_connections"]) or DEFAULT_MAX_CONNECTIONS),
            ready_timeout=_seconds(env, "ready_timeout", DEFAULT_READY_TIMEOUT),
        )

    def to_environment(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process."""
        env = {
            ENVIRONMENT["database_url"]: self.database_url,
            ENVIRONMENT["node_id"]: self.node_id,
            ENVIRONMENT["demo_data"]: "1" if self.demo_data else "0",
            ENVIRONMENT["cursor_max_age"]: str(self.cursor_max_age.total_seconds()),
            ENVIRONMENT["csrf_max_age"]: str(self.csrf_max_age.total_seconds()),
            ENVIRONMENT["head_timeout"]: repr(self.head_timeout),
            ENVIRONMENT["body_timeout"]: repr(self.body_timeout),
            ENVIRONMENT["idle_timeout"]: repr(self.idle_timeout),
            ENVIRONMENT["max_connections"]: str(self.max_connections),
            ENVIRONMENT["ready_timeout"]: repr(self.ready_timeout),
        }
        if self.secret_key:
            env[ENVIRONMENT["secret_key"]] = self.secret_key
        return env

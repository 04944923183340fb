"""Settings of the reference service, from ``OPTIMIST_*`` environment variables.

The command line (:mod:`optimist.service.cli`) writes its options into the same
variables before it starts uvicorn, so every worker process of one deployment reads
one configuration, the way uvicorn's own ``--workers`` expects an importable factory.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from optimist.errors import InvalidVectorClock
from optimist.vclock import VectorClock

__all__ = ["ENVIRONMENT", "Settings", "default_database_url", "default_node_id"]

#: Option name → environment variable.
ENVIRONMENT = {
    "database_url": "OPTIMIST_DATABASE_URL",
    "node_id": "OPTIMIST_NODE_ID",
    "secret_key": "OPTIMIST_SECRET_KEY",
    "demo_data": "OPTIMIST_DEMO_DATA",
    "cursor_max_age": "OPTIMIST_CURSOR_MAX_AGE",
    "csrf_max_age": "OPTIMIST_CSRF_MAX_AGE",
}

_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]+")


def default_database_url(directory: Path | None = None) -> str:
    """SQLite in the working directory: ``optimist.db``."""
    path = (directory or Path.cwd()) / "optimist.db"
    return f"sqlite+aiosqlite:///{path}"


def default_node_id() -> str:
    """A stable vector-clock node name derived from the host name."""
    name = _NODE_UNSAFE.sub("-", socket.gethostname()).strip("-")[:64]
    return name or "node"


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

    def __post_init__(self) -> None:
        try:
            VectorClock({self.node_id: 1})
        except InvalidVectorClock as error:
            raise ValueError(f"node id {self.node_id!r}: {error.reason}") from None
        for name in ("cursor_max_age", "csrf_max_age"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")

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
        )

    def to_environment(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process."""
        env = {
            ENVIRONMENT["database_url"]: self.database_url,
            ENVIRONMENT["node_id"]: self.node_id,
            ENVIRONMENT["demo_data"]: "1" if self.demo_data else "0",
            ENVIRONMENT["cursor_max_age"]: str(self.cursor_max_age.total_seconds()),
            ENVIRONMENT["csrf_max_age"]: str(self.csrf_max_age.total_seconds()),
        }
        if self.secret_key:
            env[ENVIRONMENT["secret_key"]] = self.secret_key
        return env

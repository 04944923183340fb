"""Settings of the reference service, from ``OPTIMIST_*`` environment variables.

The command line (:mod:`optimist.service.cli`) writes its options into the same
variables before it starts uvicorn, so every worker process of one deployment reads
one configuration, the way uvicorn's own ``--workers`` expects an importable factory.

Besides the application's settings, the limits that keep one deployment standing when
its clients misbehave (:mod:`optimist.service.connections`, :mod:`optimist.service.request_body`),
the readiness probe's patience (:mod:`optimist.service.health`) and how long a write
waits for SQLite's write lock (the busy timeout) live here, in seconds and connections,
so that an operator sets them the same two ways as the rest.

A value the service cannot run with raises :class:`InvalidSetting`
(:mod:`optimist.service.setting_values`, with the parsers of the CORS origins and the
trusted peers, whose identity header fields the admin API believes). The database URL
is checked and completed by :mod:`optimist.service.database_url`, its ``?pooler=`` (the
mode of a connection pooler such as PgBouncer in front of PostgreSQL, docs/scaling.md)
here against :data:`POOLERS`. In token mode (``auth="token"``) identity comes from a
bearer token instead: the keys file, audience and issuer it is checked against are
required here, and the file is read (with ``optimist.jwt``) when the application is
built, or by the command line at start.
The read database URL (a streaming replica of the database, which serves the APIs'
reads: :mod:`optimist.service.reads`) is checked the same way, and must name PostgreSQL
as the database URL does: SQLite has no replica.

This module imports no third-party package: ``optimist --help`` reads its defaults.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import parse_qs, urlsplit

from optimist.errors import InvalidVectorClock
from optimist.peers import TrustedPeers
from optimist.service.database_url import InvalidDatabaseURL, normalized, redacted_url
from optimist.service.setting_values import (
    EXPECTED,
    InvalidSetting,
    parse_origins,
    parse_trusted_peers,
)
from optimist.vclock import VectorClock

__all__ = [
    "AUTH_MODES",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_JWT_LEEWAY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_READY_TIMEOUT",
    "ENVIRONMENT",
    "POOLERS",
    "InvalidSetting",
    "Settings",
    "default_database_url",
    "default_node_id",
    "redacted_url",
]

#: Option name → environment variable.
ENVIRONMENT = {
    "database_url": "OPTIMIST_DATABASE_URL",
    "read_database_url": "OPTIMIST_READ_DATABASE_URL",
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
    "busy_timeout": "OPTIMIST_BUSY_TIMEOUT",
    "cors_origins": "OPTIMIST_CORS_ORIGINS",
    "trusted_peers": "OPTIMIST_TRUSTED_PEERS",
    "auth": "OPTIMIST_AUTH",
    "jwt_keys": "OPTIMIST_JWT_KEYS",
    "jwt_audience": "OPTIMIST_JWT_AUDIENCE",
    "jwt_issuer": "OPTIMIST_JWT_ISSUER",
    "jwt_leeway": "OPTIMIST_JWT_LEEWAY",
    "tenant_claim": "OPTIMIST_TENANT_CLAIM",
    "role_claim": "OPTIMIST_ROLE_CLAIM",
    "require_identity": "OPTIMIST_REQUIRE_IDENTITY",
}

#: Where the identity of a request comes from: the gateway's header fields, believed
#: from the trusted peers, or a bearer token (a JWT) the service verifies itself.
AUTH_MODES: Final = ("gateway", "token")
#: Seconds of clock skew allowed on a token's exp, nbf and iat by default.
DEFAULT_JWT_LEEWAY: Final = 30.0

#: Seconds, then connections: the defaults of the server's limits (docs/service.md).
DEFAULT_HEAD_TIMEOUT: Final = 10.0
DEFAULT_BODY_TIMEOUT: Final = 30.0
DEFAULT_IDLE_TIMEOUT: Final = 5.0
DEFAULT_MAX_CONNECTIONS: Final = 1000
DEFAULT_READY_TIMEOUT: Final = 2.0
#: optimist.sqlalchemy.engine.SQLITE_BUSY_TIMEOUT, written out: importing it would import
#: SQLAlchemy, which ``optimist --help`` does without (a test keeps the two equal).
DEFAULT_BUSY_TIMEOUT: Final = 30.0

#: The pooling modes a database URL may name (``?pooler=transaction``): those of
#: optimist.sqlalchemy.engine.POOLERS, written out for the same reason (a test keeps the
#: two equal).
POOLERS: Final = frozenset({"transaction"})

_SECONDS: Final = "a positive number of seconds"
_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]+")
N = TypeVar("N", int, float)


def default_database_url(directory: Path | None = None) -> str:
    """SQLite in the working directory: ``optimist.db``."""
    path = (directory or Path.cwd()) / "optimist.db"
    return f"sqlite+aiosqlite:///{path}"


def _pooler_problem(url: str) -> str | None:
    """What is wrong with the ``?pooler=`` of (normalized) ``url``, if anything.

    The library refuses the same with a ValueError when the engine is made; said here, it
    is an operator's mistake in two lines instead.
    """
    modes = parse_qs(urlsplit(url).query, keep_blank_values=True).get("pooler")
    if modes is None:
        return None
    if len(modes) > 1:
        return "the URL names its pooler more than once"
    if not url.startswith("postgresql"):
        return "?pooler= applies to PostgreSQL only"
    if modes[0] not in POOLERS:
        return f"pooler={modes[0][:40]} is not a pooling mode the service knows"
    return None


def default_node_id() -> str:
    """A stable vector-clock node name derived from the host name."""
    name = _NODE_UNSAFE.sub("-", socket.gethostname()).strip("-")[:64]
    return name or "node"


def _leeway(seconds: float) -> timedelta:
    """``seconds`` of clock skew, or InvalidSetting if negative or not finite."""
    # NaN compares false both ways: refuse whatever is not a finite number from 0.
    if not 0 <= seconds < math.inf:
        raise InvalidSetting(
            "jwt_leeway", f"{seconds:g} is not {EXPECTED['jwt_leeway']}", EXPECTED["jwt_leeway"]
        )
    return timedelta(seconds=seconds)


def _flag(value: str) -> bool:
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


def _number(env: Mapping[str, str], name: str, kind: Callable[[str], N], default: N) -> N:
    """The variable of setting ``name`` as a number; unset or empty is ``default``."""
    text = env.get(ENVIRONMENT[name], "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "whole number" if kind is int else "number"
        raise InvalidSetting(
            name, f"{text!r} is not a {what}", EXPECTED.get(name, _SECONDS)
        ) from None


_TOKEN_SETTINGS: Final = ("jwt_keys", "jwt_audience", "jwt_issuer")


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """One deployment's configuration; every worker builds the same one.

    ``database_url`` is completed with the service's driver (``postgres://`` and
    ``postgresql://`` become ``postgresql+asyncpg://``, ``sqlite://``
    ``sqlite+aiosqlite://``). Its repr shows the database URLs without their passwords
    and no secret key, so that settings in a log line or a traceback give neither away.
    """

    database_url: str
    node_id: str
    #: A streaming replica of the (PostgreSQL) database that serves the reads; None: the
    #: database serves them too.
    read_database_url: str | None = None
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
    #: Seconds a write waits for SQLite's write lock before it is answered 503 (SQLite only).
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    #: Origins whose browsers may call the APIs (CORS): none by default; ``*`` is any.
    cors_origins: tuple[str, ...] = ()
    #: The peers whose identity header fields the admin API believes: loopback by default.
    trusted_peers: TrustedPeers = TrustedPeers.LOOPBACK
    #: Where identity comes from: ``gateway`` (the default) or ``token`` (:data:`AUTH_MODES`).
    auth: str = "gateway"
    #: Token mode: the file of the public keys (PEM, or a JWKS document) tokens are
    #: verified with, the audience and issuer they must name, and the clock skew allowed.
    jwt_keys: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: timedelta = timedelta(seconds=DEFAULT_JWT_LEEWAY)
    #: Token mode: the claims that name the tenant and the role.
    tenant_claim: str = "tenant"
    role_claim: str = "role"
    #: Whether the projects and sessions APIs need an identity too (any role, any tenant).
    require_identity: bool = False

    def __post_init__(self) -> None:
        try:
            url = normalized(self.database_url)
        except InvalidDatabaseURL as error:
            raise InvalidSetting.of_database_url(error) from None
        object.__setattr__(self, "database_url", url)
        problem = _pooler_problem(url)
        if problem is not None:
            raise InvalidSetting(
                "database_url",
                problem,
                "a URL such as postgresql://USER@HOST:PORT/NAME?pooler=transaction, the port "
                "being PgBouncer's in transaction pooling mode, or one without ?pooler=",
            )
        self._check_read_database_url()
        try:
            VectorClock({self.node_id: 1})
        except InvalidVectorClock as error:
            raise InvalidSetting("node_id", error.reason, EXPECTED["node_id"]) from None
        for name in ("cursor_max_age", "csrf_max_age"):
            age: timedelta = getattr(self, name)
            if age <= timedelta(0):
                raise InvalidSetting(name, f"{age.total_seconds():g} is not positive", _SECONDS)
        timeouts = ("head_timeout", "body_timeout", "idle_timeout", "ready_timeout", "busy_timeout")
        for name in timeouts:
            seconds = getattr(self, name)
            # NaN compares false both ways: refuse whatever is not a positive finite number.
            if not 0 < seconds < math.inf:
                raise InvalidSetting(name, f"{seconds:g} is not {_SECONDS}", _SECONDS)
        if self.max_connections < 1:
            raise InvalidSetting(
                "max_connections",
                f"{self.max_connections} is less than 1",
                EXPECTED["max_connections"],
            )
        object.__setattr__(self, "cors_origins", parse_origins(self.cors_origins))
        self._check_auth()

    def _check_auth(self) -> None:
        """Refuse an unknown mode, and token mode without what it verifies tokens with."""
        if self.auth not in AUTH_MODES:
            raise InvalidSetting("auth", f"{self.auth[:40]!r} is not a mode", EXPECTED["auth"])
        _leeway(self.jwt_leeway.total_seconds())
        for name in ("tenant_claim", "role_claim"):
            if not getattr(self, name).strip():
                raise InvalidSetting(name, "empty", EXPECTED[name])
        if self.auth != "token":
            return
        for name in _TOKEN_SETTINGS:
            if not getattr(self, name):
                option, variable = f"--{name.replace('_', '-')}", ENVIRONMENT[name]
                raise InvalidSetting(
                    name,
                    "not set, and token mode needs it",
                    EXPECTED[name],
                    f"give {option} {EXPECTED[name]}, or set {variable}",
                )

    def _check_read_database_url(self) -> None:
        """Complete the read database URL with its driver, or refuse it with what it takes."""
        if self.read_database_url is None:
            return
        name = "read_database_url"
        try:
            url = normalized(self.read_database_url)
        except InvalidDatabaseURL as error:
            raise InvalidSetting.of_database_url(error, name) from None
        if not url.startswith("postgresql"):
            raise InvalidSetting(name, "SQLite has no replica to read from", EXPECTED[name])
        if not self.database_url.startswith("postgresql"):
            raise InvalidSetting(
                name,
                "a replica needs a PostgreSQL database, and the database URL names SQLite",
                EXPECTED[name],
                "give the database URL the PostgreSQL primary, or leave the read URL unset",
            )
        problem = _pooler_problem(url)
        if problem is not None:
            raise InvalidSetting(name, problem, EXPECTED[name])
        object.__setattr__(self, name, url)

    def __repr__(self) -> str:
        shown = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in {"database_url", "read_database_url"} and value is not None:
                value = redacted_url(value)
            elif name == "secret_key" and value is not None:
                value = "***"
            shown.append(f"{name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``OPTIMIST_*`` variables, with the documented defaults.

        An unset or empty variable is its default; a value the service cannot run with
        raises :class:`InvalidSetting`.
        """
        env = os.environ if environ is None else environ
        peers = env.get(ENVIRONMENT["trusted_peers"], "").strip()
        keys = env.get(ENVIRONMENT["jwt_keys"], "").strip()
        return cls(
            database_url=env.get(ENVIRONMENT["database_url"]) or default_database_url(),
            node_id=env.get(ENVIRONMENT["node_id"]) or default_node_id(),
            read_database_url=env.get(ENVIRONMENT["read_database_url"]) or None,
            secret_key=env.get(ENVIRONMENT["secret_key"]) or None,
            demo_data=_flag(env.get(ENVIRONMENT["demo_data"], "1")),
            cursor_max_age=timedelta(seconds=_number(env, "cursor_max_age", float, 3600.0)),
            csrf_max_age=timedelta(seconds=_number(env, "csrf_max_age", float, 3600.0)),
            head_timeout=_number(env, "head_timeout", float, DEFAULT_HEAD_TIMEOUT),
            body_timeout=_number(env, "body_timeout", float, DEFAULT_BODY_TIMEOUT),
            idle_timeout=_number(env, "idle_timeout", float, DEFAULT_IDLE_TIMEOUT),
            max_connections=_number(env, "max_connections", int, DEFAULT_MAX_CONNECTIONS),
            ready_timeout=_number(env, "ready_timeout", float, DEFAULT_READY_TIMEOUT),
            busy_timeout=_number(env, "busy_timeout", float, DEFAULT_BUSY_TIMEOUT),
            cors_origins=parse_origins([env.get(ENVIRONMENT["cors_origins"], "")]),
            trusted_peers=parse_trusted_peers(peers) if peers else TrustedPeers.LOOPBACK,
            auth=env.get(ENVIRONMENT["auth"], "").strip().lower() or "gateway",
            jwt_keys=Path(keys) if keys else None,
            jwt_audience=env.get(ENVIRONMENT["jwt_audience"], "").strip() or None,
            jwt_issuer=env.get(ENVIRONMENT["jwt_issuer"], "").strip() or None,
            jwt_leeway=_leeway(_number(env, "jwt_leeway", float, DEFAULT_JWT_LEEWAY)),
            tenant_claim=env.get(ENVIRONMENT["tenant_claim"], "").strip() or "tenant",
            role_claim=env.get(ENVIRONMENT["role_claim"], "").strip() or "role",
            require_identity=_flag(env.get(ENVIRONMENT["require_identity"], "0")),
        )

    def to_environment(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process."""
        env = {
            ENVIRONMENT["database_url"]: self.database_url,
            ENVIRONMENT["node_id"]: self.node_id,
            # Written even when unset: an inherited variable must not add a replica.
            ENVIRONMENT["read_database_url"]: self.read_database_url or "",
            ENVIRONMENT["demo_data"]: "1" if self.demo_data else "0",
            ENVIRONMENT["cursor_max_age"]: str(self.cursor_max_age.total_seconds()),
            ENVIRONMENT["csrf_max_age"]: str(self.csrf_max_age.total_seconds()),
            ENVIRONMENT["head_timeout"]: repr(self.head_timeout),
            ENVIRONMENT["body_timeout"]: repr(self.body_timeout),
            ENVIRONMENT["idle_timeout"]: repr(self.idle_timeout),
            ENVIRONMENT["max_connections"]: str(self.max_connections),
            ENVIRONMENT["ready_timeout"]: repr(self.ready_timeout),
            ENVIRONMENT["busy_timeout"]: repr(self.busy_timeout),
            # Written even when empty: an inherited variable must not add origins.
            ENVIRONMENT["cors_origins"]: ",".join(self.cors_origins),
            ENVIRONMENT["trusted_peers"]: str(self.trusted_peers),
            ENVIRONMENT["auth"]: self.auth,
            # Written even when unset: an inherited variable must not configure tokens.
            ENVIRONMENT["jwt_keys"]: str(self.jwt_keys or ""),
            ENVIRONMENT["jwt_audience"]: self.jwt_audience or "",
            ENVIRONMENT["jwt_issuer"]: self.jwt_issuer or "",
            ENVIRONMENT["jwt_leeway"]: str(self.jwt_leeway.total_seconds()),
            ENVIRONMENT["tenant_claim"]: self.tenant_claim,
            ENVIRONMENT["role_claim"]: self.role_claim,
            ENVIRONMENT["require_identity"]: "1" if self.require_identity else "0",
        }
        if self.secret_key:
            env[ENVIRONMENT["secret_key"]] = self.secret_key
        return env

"""What the ``optimist`` command line accepts: its commands and options, and what a
parsed command line gives, as the settings' variables and the server's address.

Options override the ``OPTIMIST_*`` environment variables (:data:`SERVER_ENVIRONMENT`
for the server's own, the settings' for the rest); each option's help names its
variable and default. A mistake in the command line itself is two lines on stderr (the
mistake, and where help is) and exit status 2, not argparse's usage.

This module imports no third-party package: ``optimist --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Final, NoReturn

import optimist
from optimist.service.mistakes import option_of
from optimist.service.setting_values import whole_number
from optimist.service.settings import (
    AUTH_MODES,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_JWT_LEEWAY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READY_TIMEOUT,
)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "SERVER_ENVIRONMENT", "given", "parser", "server"]

#: The server's options that are no settings (the workers need none of them) → variable.
SERVER_ENVIRONMENT: Final = {
    "host": "OPTIMIST_HOST",
    "port": "OPTIMIST_PORT",
    "workers": "OPTIMIST_WORKERS",
}
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
_PORT: Final = "a TCP port number from 1 to 65535"
_WORKERS: Final = "a whole number of worker processes, 1 or more"

#: Options of ``serve`` that are settings: option → (metavar, help); the variable and the
#: default are the settings' own.
_LIMITS: Final = {
    "head_timeout": (
        "SECONDS",
        "seconds a client may take to send a request's line and header fields; "
        f"then 408 and the connection is closed (env OPTIMIST_HEAD_TIMEOUT; "
        f"default {DEFAULT_HEAD_TIMEOUT:g})",
    ),
    "body_timeout": (
        "SECONDS",
        "seconds a request body may take to arrive in full, counted from its head; "
        f"then 408 and the connection is closed (env OPTIMIST_BODY_TIMEOUT; "
        f"default {DEFAULT_BODY_TIMEOUT:g})",
    ),
    "idle_timeout": (
        "SECONDS",
        "seconds a connection may wait for its first or next request (keep-alive) before "
        f"it is closed (env OPTIMIST_IDLE_TIMEOUT; default {DEFAULT_IDLE_TIMEOUT:g})",
    ),
    "max_connections": (
        "N",
        "open connections per worker process; one more is answered 503 with Retry-After "
        "and closed; lowered at start to fit the open-file limit "
        f"(env OPTIMIST_MAX_CONNECTIONS; default {DEFAULT_MAX_CONNECTIONS})",
    ),
    "ready_timeout": (
        "SECONDS",
        "seconds /readyz waits for the database before it answers 503 "
        f"(env OPTIMIST_READY_TIMEOUT; default {DEFAULT_READY_TIMEOUT:g})",
    ),
}
#: Options of ``serve`` and ``migrate`` alike that are settings, in the same form.
_DATABASE_LIMITS: Final = {
    "busy_timeout": (
        "SECONDS",
        "seconds a write waits for SQLite's write lock, held by another process, before "
        "it gives up (a request then gets 503 with Retry-After) "
        f"(env OPTIMIST_BUSY_TIMEOUT; default {DEFAULT_BUSY_TIMEOUT:g}; SQLite only)",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are two lines (the mistake, where help is) instead of usage.

    An argument no command knows is reported by the command's parser, whose help lists
    the options it does know.
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        for line in (message, f"see: {self.prog} --help"):
            print(f"optimist: {line}", file=sys.stderr)
        raise SystemExit(2)

    def parse_command(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """The parsed command line; a mistake in it exits (status 2) after saying so."""
        arguments, unknown = self.parse_known_args(argv)
        if unknown:
            command = self.commands.get(arguments.command, self)
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
        return arguments


def parser() -> _Parser:
    """The command line's parser: ``serve`` and ``migrate`` with their options."""
    command_line = _Parser(
        prog="optimist",
        description="The optimist reference service: APIs that never lose an update.",
    )
    command_line.add_argument(
        "--version", action="version", version=f"optimist {optimist.__version__}"
    )
    commands = command_line.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def limits(
        command: argparse.ArgumentParser, title: str, options: Mapping[str, tuple[str, str]]
    ) -> None:
        group = command.add_argument_group(title)
        for name, (metavar, text) in options.items():
            group.add_argument(option_of(name), metavar=metavar, help=text)

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--database-url",
            metavar="URL",
            help="the database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME "
            "(postgres:// too; the drivers aiosqlite and asyncpg are added); through PgBouncer "
            "in transaction pooling mode add ?pooler=transaction "
            "(env OPTIMIST_DATABASE_URL; default: SQLite optimist.db in the working directory)",
        )
        command.add_argument(
            "--no-demo-data",
            action="store_true",
            help="do not fill a fresh database with the demo data (env OPTIMIST_DEMO_DATA=0)",
        )

    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument(
        "--host",
        help="the address to listen on; 0.0.0.0 for every interface "
        f"(env OPTIMIST_HOST; default {DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        help=f"the TCP port to listen on (env OPTIMIST_PORT; default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help="worker processes, each with its own connections (env OPTIMIST_WORKERS; default 1)",
    )
    serve.add_argument(
        "--node-id",
        metavar="NAME",
        help="this node's name in vector clocks: 1 to 64 letters, digits and . _ ~ - "
        "(env OPTIMIST_NODE_ID; default: the host name)",
    )
    serve.add_argument(
        "--read-database-url",
        metavar="URL",
        help="a streaming replica of the PostgreSQL database, which serves GET and HEAD "
        "(a page whose cursor it has not replayed yet, and what decides a refusal, are "
        "read from the database) (env OPTIMIST_READ_DATABASE_URL; default: none, the "
        "database serves every read)",
    )
    serve.add_argument(
        "--cors-origin",
        dest="cors_origins",
        metavar="ORIGIN",
        action="append",
        help="an origin (scheme://host[:port]) whose pages may call the APIs, or * for any; "
        "repeat it for more (env OPTIMIST_CORS_ORIGINS, separated by commas or spaces; "
        "default: none, CORS is off)",
    )
    serve.add_argument(
        "--trusted-peers",
        metavar="PEERS",
        help="the peers whose X-Tenant-Id and X-User-Role the admin API believes, the "
        "gateway's: addresses and networks (CIDR) separated by commas, or * for every peer; "
        "from any other peer the admin API answers 401 (env OPTIMIST_TRUSTED_PEERS; "
        "default: loopback, 127.0.0.0/8 and ::1)",
    )
    _identity_options(serve)
    common(serve)
    limits(serve, "timeouts and limits", {**_LIMITS, **_DATABASE_LIMITS})

    migrate = commands.add_parser("migrate", help="apply the schema migrations and exit")
    common(migrate)
    limits(migrate, "timeouts", _DATABASE_LIMITS)
    command_line.commands = {"serve": serve, "migrate": migrate}
    return command_line


#: Options of ``serve`` that say where identity comes from: option → (metavar, help).
_IDENTITY: Final = {
    "jwt_keys": (
        "FILE",
        "token mode: the public keys tokens are verified with, a PEM public key or "
        "certificate, or a JWKS document; read at start (env OPTIMIST_JWT_KEYS)",
    ),
    "jwt_audience": (
        "AUDIENCE",
        "token mode: the audience (aud) a token must name (env OPTIMIST_JWT_AUDIENCE)",
    ),
    "jwt_issuer": (
        "ISSUER",
        "token mode: the issuer (iss) a token must name (env OPTIMIST_JWT_ISSUER)",
    ),
    "jwt_leeway": (
        "SECONDS",
        "token mode: clock skew allowed on a token's exp, nbf and iat "
        f"(env OPTIMIST_JWT_LEEWAY; default {DEFAULT_JWT_LEEWAY:g})",
    ),
    "tenant_claim": (
        "CLAIM",
        "token mode: the claim that names the tenant (env OPTIMIST_TENANT_CLAIM; default tenant)",
    ),
    "role_claim": (
        "CLAIM",
        "token mode: the claim that names the role (env OPTIMIST_ROLE_CLAIM; default role)",
    ),
}


def _identity_options(serve: argparse.ArgumentParser) -> None:
    """The options of ``serve`` that say where identity comes from, and who needs it."""
    group = serve.add_argument_group("identity")
    group.add_argument(
        "--auth",
        choices=AUTH_MODES,
        help="where identity comes from: gateway, X-Tenant-Id and X-User-Role from the "
        "trusted peers; token, a bearer JWT in Authorization, and the identity fields "
        "are refused (env OPTIMIST_AUTH; default gateway)",
    )
    for name, (metavar, text) in _IDENTITY.items():
        group.add_argument(option_of(name), metavar=metavar, help=text)
    group.add_argument(
        "--require-identity",
        action="store_true",
        help="the projects and test-sessions APIs need an identity too, as the admin API "
        "does (any tenant and role) (env OPTIMIST_REQUIRE_IDENTITY=1)",
    )


def given(arguments: argparse.Namespace) -> dict[str, str]:
    """The settings given as options, as the text of their variables."""
    values = {
        name: getattr(arguments, name, None)
        for name in (
            "database_url",
            "read_database_url",
            "node_id",
            "trusted_peers",
            "auth",
            *_IDENTITY,
            *_LIMITS,
            *_DATABASE_LIMITS,
        )
    }
    settings = {name: value for name, value in values.items() if value is not None}
    if arguments.no_demo_data:
        settings["demo_data"] = "0"
    if getattr(arguments, "require_identity", False):
        settings["require_identity"] = "1"
    origins = getattr(arguments, "cors_origins", None)
    if origins is not None:
        settings["cors_origins"] = ",".join(origins)
    return settings


def _server_option(arguments: argparse.Namespace, name: str, default: str) -> str:
    value: str | None = getattr(arguments, name)
    return value if value is not None else os.environ.get(SERVER_ENVIRONMENT[name]) or default


def server(arguments: argparse.Namespace) -> tuple[str, int, int]:
    """Host, port and workers of ``serve``: the options, else the variables, else defaults."""
    host = _server_option(arguments, "host", DEFAULT_HOST)
    port = _server_option(arguments, "port", str(DEFAULT_PORT))
    workers = _server_option(arguments, "workers", "1")
    return (
        host,
        whole_number("port", port, least=1, most=65535, expected=_PORT),
        whole_number("workers", workers, least=1, expected=_WORKERS),
    )

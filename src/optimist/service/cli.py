"""``optimist serve`` and ``optimist migrate``: the reference service's command line.

Options override the ``OPTIMIST_*`` environment variables; the result is written back
into the environment so that every uvicorn worker builds the same settings.

An operator's mistake (a value, an address, a database: :mod:`optimist.service.mistakes`)
stops the command with exit status 2 and two lines on stderr, what is wrong and what to
do; so does a mistake in the command line itself. Serving on an address other machines
reach while trusting every peer with identity (``--trusted-peers '*'``) is allowed, for
a server only its gateway can reach, and said in one warning line at start (in gateway
mode: in token mode those fields are believed from no peer). In token mode the keys
file is read at start, so that one the service cannot use is a mistake too. Variables
are read only when a command runs, so that a bad one never breaks ``optimist --help``,
and the web framework, SQLAlchemy and uvicorn are imported only then, so that
``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final, NoReturn

import optimist
from optimist.service.database_url import InvalidDatabaseURL, check_driver, check_sqlite_path
from optimist.service.mistakes import (
    Mistake,
    check_listening,
    database_mistake,
    option_of,
    setting_mistake,
)
from optimist.service.settings import (
    AUTH_MODES,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_JWT_LEEWAY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READY_TIMEOUT,
    ENVIRONMENT,
    InvalidSetting,
    Settings,
    redacted_url,
    whole_number,
)

__all__ = ["main"]

#: The server's options that are no settings (the workers need none of them) → variable.
SERVER_ENVIRONMENT: Final = {
    "host": "OPTIMIST_HOST",
    "port": "OPTIMIST_PORT",
    "workers": "OPTIMIST_WORKERS",
}
_DEFAULT_HOST: Final = "127.0.0.1"
_DEFAULT_PORT: Final = 8000
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


def _parser() -> _Parser:
    parser = _Parser(
        prog="optimist",
        description="The optimist reference service: APIs that never lose an update.",
    )
    parser.add_argument("--version", action="version", version=f"optimist {optimist.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
        f"(env OPTIMIST_HOST; default {_DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        help=f"the TCP port to listen on (env OPTIMIST_PORT; default {_DEFAULT_PORT})",
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
    parser.commands = {"serve": serve, "migrate": migrate}
    return parser


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


def _given(arguments: argparse.Namespace) -> dict[str, str]:
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
    given = {name: value for name, value in values.items() if value is not None}
    if arguments.no_demo_data:
        given["demo_data"] = "0"
    if getattr(arguments, "require_identity", False):
        given["require_identity"] = "1"
    origins = getattr(arguments, "cors_origins", None)
    if origins is not None:
        given["cors_origins"] = ",".join(origins)
    return given


def _server_option(arguments: argparse.Namespace, name: str, default: str) -> str:
    value: str | None = getattr(arguments, name)
    return value if value is not None else os.environ.get(SERVER_ENVIRONMENT[name]) or default


def _server(arguments: argparse.Namespace) -> tuple[str, int, int]:
    """Host, port and workers of ``serve``: the options, else the variables, else defaults."""
    host = _server_option(arguments, "host", _DEFAULT_HOST)
    port = _server_option(arguments, "port", str(_DEFAULT_PORT))
    workers = _server_option(arguments, "workers", "1")
    return (
        host,
        whole_number("port", port, least=1, most=65535, expected=_PORT),
        whole_number("workers", workers, least=1, expected=_WORKERS),
    )


def _loopback(host: str) -> bool:
    """Whether ``host`` is an address (or the name) only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(given: dict[str, str]) -> Settings:
    """The settings (options over variables), their database's driver and SQLite file
    checked; InvalidSetting for the first value that cannot work."""
    environment = {**os.environ, **{ENVIRONMENT[name]: value for name, value in given.items()}}
    settings = Settings.from_environment(environment)
    try:
        check_driver(settings.database_url)
        check_sqlite_path(settings.database_url)
    except InvalidDatabaseURL as error:
        raise InvalidSetting.of_database_url(error) from None
    if settings.read_database_url is not None:
        try:
            check_driver(settings.read_database_url)
        except InvalidDatabaseURL as error:
            raise InvalidSetting.of_database_url(error, "read_database_url") from None
    if settings.auth == "token":
        # Read now, so that a key file the service cannot use is a mistake at start.
        from optimist.service.admin.identity import verifier_of  # noqa: PLC0415

        try:
            verifier_of(settings)
        except ValueError as error:
            raise InvalidSetting(
                "jwt_keys",
                str(error),
                "a PEM public key or certificate, or a JWKS document of public signature keys",
            ) from None
    return settings


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger`` silent inside the block.

    Preparing the database is not serving it: the outage that the library logs as "answering
    503 until it is back" is a mistake to report here, or an error shown whole.
    """
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


@contextmanager
def _reported(given: Mapping[str, str], url: str, name: str) -> Iterator[None]:
    """Work on the database of setting ``name`` (at ``url``), its failure reported as the
    operator's mistake it stands for, named as they gave the URL."""
    try:
        with _quiet(logging.getLogger("optimist.sqlalchemy")):
            yield
    except Exception as error:
        subject = option_of(name) if name in given else ENVIRONMENT[name]
        mistake = database_mistake(error, url, subject)
        if mistake is None:
            raise
        raise mistake from None


def _run(arguments: argparse.Namespace) -> None:
    given = _given(arguments)
    serving = arguments.command == "serve"
    options = {n for n in SERVER_ENVIRONMENT if getattr(arguments, n, None) is not None}
    try:
        settings = _checked(given)
        host, port, workers = _server(arguments) if serving else (_DEFAULT_HOST, 0, 0)
    except InvalidSetting as error:
        variables = {**ENVIRONMENT, **SERVER_ENVIRONMENT}
        raise setting_mistake(error, {*given, *options}, variables) from None

    # Imported here: --help stays fast.
    import asyncio  # noqa: PLC0415

    from optimist.service.app import prepare  # noqa: PLC0415
    from optimist.service.server import fit_connections, serve  # noqa: PLC0415

    if serving:
        named = {n: option_of(n) if n in options else v for n, v in SERVER_ENVIRONMENT.items()}
        check_listening(host, port, host_from=named["host"], port_from=named["port"])
        try:
            settings = fit_connections(settings)
        except ValueError as error:
            raise Mistake(str(error)) from None
        gateway = settings.auth == "gateway"
        if gateway and settings.trusted_peers.everyone and not _loopback(host):
            print(
                f"optimist: warning: serving on {host} and believing X-Tenant-Id and "
                "X-User-Role from every peer: only the gateway may reach this port",
                file=sys.stderr,
            )
    os.environ.update(settings.to_environment())
    with _reported(given, settings.database_url, "database_url"):
        fresh = asyncio.run(prepare(settings))
    if serving and settings.read_database_url is not None:
        from optimist.service.reads import reachable  # noqa: PLC0415

        with _reported(given, settings.read_database_url, "read_database_url"):
            asyncio.run(reachable(settings))
    state = "created" if fresh else "up to date"
    # The URL may carry the database's password: what is printed goes to logs.
    print(f"optimist: database {state} ({redacted_url(settings.database_url)})", file=sys.stderr)
    if serving:
        serve(settings, host=host, port=port, workers=workers)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``optimist`` command."""
    arguments = _parser().parse_command(argv)
    try:
        _run(arguments)
    except Mistake as mistake:
        for line in mistake.lines():
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

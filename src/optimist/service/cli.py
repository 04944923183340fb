"""``optimist serve`` and ``optimist migrate``: the reference service's command line.

Options override the ``OPTIMIST_*`` environment variables; the result is written back
into the environment so that every uvicorn worker builds the same settings.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Sequence

from optimist.service.settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READY_TIMEOUT,
    Settings,
)

__all__ = ["main"]

#: Options of ``serve`` that are settings: option → (type, help); the variable and the
#: default are the settings' own.
_LIMITS: dict[str, tuple[type[float] | type[int], str]] = {
    "head_timeout": (
        float,
        "seconds a client may take to send a request's line and header fields; "
        f"then 408 and the connection is closed (env OPTIMIST_HEAD_TIMEOUT; "
        f"default {DEFAULT_HEAD_TIMEOUT:g})",
    ),
    "body_timeout": (
        float,
        "seconds a request body may take to arrive in full, counted from its head; "
        f"then 408 and the connection is closed (env OPTIMIST_BODY_TIMEOUT; "
        f"default {DEFAULT_BODY_TIMEOUT:g})",
    ),
    "idle_timeout": (
        float,
        "seconds a connection may wait for its first or next request (keep-alive) before "
        f"it is closed (env OPTIMIST_IDLE_TIMEOUT; default {DEFAULT_IDLE_TIMEOUT:g})",
    ),
    "max_connections": (
        int,
        "open connections per worker process; one more is answered 503 with Retry-After "
        "and closed; lowered at start to fit the open-file limit "
        f"(env OPTIMIST_MAX_CONNECTIONS; default {DEFAULT_MAX_CONNECTIONS})",
    ),
    "ready_timeout": (
        float,
        "seconds /readyz waits for the database before it answers 503 "
        f"(env OPTIMIST_READY_TIMEOUT; default {DEFAULT_READY_TIMEOUT:g})",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimist",
        description="The optimist reference service: APIs that never lose an update.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def database_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--database-url",
            help="SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db "
            "(env OPTIMIST_DATABASE_URL; default: SQLite optimist.db in the working directory)",
        )

    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default=os.environ.get("OPTIMIST_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("OPTIMIST_PORT", "8000")))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("OPTIMIST_WORKERS", "1")),
        help="worker processes (env OPTIMIST_WORKERS)",
    )
    serve.add_argument("--node-id", help="this node's name in vector clocks (env OPTIMIST_NODE_ID)")
    serve.add_argument(
        "--no-demo-data",
        action="store_true",
        help="do not fill a fresh database with the demo data (env OPTIMIST_DEMO_DATA=0)",
    )
    database_option(serve)
    limits = serve.add_argument_group("timeouts and limits")
    for name, (kind, text) in _LIMITS.items():
        metavar = "N" if kind is int else "SECONDS"
        limits.add_argument(f"--{name.replace('_', '-')}", type=kind, metavar=metavar, help=text)

    migrate = commands.add_parser("migrate", help="apply the schema migrations and exit")
    migrate.add_argument("--no-demo-data", action="store_true")
    database_option(migrate)
    return parser


def _settings(arguments: argparse.Namespace) -> Settings:
    settings = Settings.from_environment()
    changes: dict[str, object] = {}
    if arguments.database_url:
        changes["database_url"] = arguments.database_url
    if getattr(arguments, "node_id", None):
        changes["node_id"] = arguments.node_id
    if arguments.no_demo_data:
        changes["demo_data"] = False
    for name in _LIMITS:
        value = getattr(arguments, name, None)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``optimist`` command."""
    # Imported here: --help stays fast.
    from optimist.service.app import prepare  # noqa: PLC0415
    from optimist.service.server import fit_connections, serve  # noqa: PLC0415

    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        settings = _settings(arguments)
        if arguments.command == "serve":
            settings = fit_connections(settings)
    except ValueError as error:
        parser.error(str(error))
    os.environ.update(settings.to_environment())
    fresh = asyncio.run(prepare(settings))
    state = "created" if fresh else "up to date"
    print(f"optimist: database {state} ({settings.database_url})", file=sys.stderr)
    if arguments.command == "migrate":
        return
    serve(settings, host=arguments.host, port=arguments.port, workers=arguments.workers)

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

import uvicorn

from optimist.service.settings import Settings

__all__ = ["main"]


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
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``optimist`` command."""
    from optimist.service.app import prepare  # noqa: PLC0415 - keeps --help fast

    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        settings = _settings(arguments)
    except ValueError as error:
        parser.error(str(error))
    os.environ.update(settings.to_environment())
    fresh = asyncio.run(prepare(settings))
    state = "created" if fresh else "up to date"
    print(f"optimist: database {state} ({settings.database_url})", file=sys.stderr)
    if arguments.command == "migrate":
        return
    uvicorn.run(
        "optimist.service.app:create_app",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        access_log=True,
        timeout_graceful_shutdown=10,
    )

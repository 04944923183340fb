"""``optimist serve`` and ``optimist migrate``: the reference service's command line.

Options (:mod:`optimist.service.command_line`) override the ``OPTIMIST_*`` environment
variables; the result is written back into the environment so that every uvicorn worker
builds the same settings.

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

from optimist.service import command_line
from optimist.service.command_line import DEFAULT_HOST, SERVER_ENVIRONMENT
from optimist.service.database_url import InvalidDatabaseURL, check_driver, check_sqlite_path
from optimist.service.mistakes import (
    Mistake,
    check_listening,
    database_mistake,
    option_of,
    setting_mistake,
)
from optimist.service.settings import (
    ENVIRONMENT,
    InvalidSetting,
    Settings,
    redacted_url,
)

__all__ = ["main"]


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
    given = command_line.given(arguments)
    serving = arguments.command == "serve"
    options = {n for n in SERVER_ENVIRONMENT if getattr(arguments, n, None) is not None}
    try:
        settings = _checked(given)
        host, port, workers = command_line.server(arguments) if serving else (DEFAULT_HOST, 0, 0)
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
    arguments = command_line.parser().parse_command(argv)
    try:
        _run(arguments)
    except Mistake as mistake:
        for line in mistake.lines():
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

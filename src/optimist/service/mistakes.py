"""An operator's mistakes, said in two lines: what is wrong, and what to do.

``optimist serve`` and ``optimist migrate`` stop with exit status 2 and a
:class:`Mistake` on stderr, never a traceback, when what they were given cannot work:
a value (:class:`~optimist.service.settings.InvalidSetting`, named as the operator gave
it: the option, or the ``OPTIMIST_*`` variable), an address to listen on
(:func:`check_listening`), or a database that is not there (:func:`database_mistake`:
unreachable, unknown, refusing the login, a file SQLite cannot open, a connection pooler
in transaction mode that the URL does not name).

Nothing printed shows a password: the database is named by its host, port and name.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Final

from optimist.service.settings import ENVIRONMENT, InvalidSetting

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["Mistake", "check_listening", "database_mistake", "option_of", "setting_mistake"]

#: Settings whose option is not ``--`` and their name with dashes.
_OPTIONS: Final = {"cors_origins": "--cors-origin"}

#: SQLSTATE → what PostgreSQL's refusal means and what to do, ``{db}`` and ``{user}`` filled in.
_POSTGRES: Final = {
    "3D000": (
        "the PostgreSQL database {db} does not exist on {server}",
        "create it (createdb {db}) or give {subject} another database",
    ),
    "28P01": ("PostgreSQL refused the password of {user}", "correct the password in {subject}"),
    "28000": ("PostgreSQL refused the login: {message}", "give {subject} a user it knows"),
    "42501": (
        "PostgreSQL refused the schema's creation: {message}",
        "give {subject} a user that may create tables in {db}",
    ),
    # Prepared statements of one client found, or missed, on a server connection that a
    # pooler in transaction mode shares between clients (docs/scaling.md).
    "42P05": (
        "{server} mixed the prepared statements of two clients: {message}",
        "if {server} is PgBouncer in transaction pooling mode, add ?pooler=transaction to "
        "{subject}",
    ),
    "26000": (
        "{server} lost a prepared statement between two messages: {message}",
        "if {server} is PgBouncer in transaction pooling mode, add ?pooler=transaction to "
        "{subject}",
    ),
}

#: errno of a failed connect → how it reads.
_CONNECT: Final = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


class Mistake(Exception):
    """What is wrong (``what``) and, when there is something to do, what (``fix``)."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def lines(self) -> list[str]:
        """The lines printed on stderr, each prefixed ``optimist:``."""
        return [f"optimist: {line}" for line in (self.what, self.fix) if line]


def option_of(name: str) -> str:
    """The command-line option of setting (or server option) ``name``."""
    return _OPTIONS.get(name, f"--{name.replace('_', '-')}")


def setting_mistake(
    error: InvalidSetting, given: Collection[str], variables: dict[str, str] = ENVIRONMENT
) -> Mistake:
    """``error`` named as the operator gave the value: its option if in ``given``, else its
    variable (from ``variables``)."""
    if error.name in given or error.name not in variables:
        subject = option_of(error.name)
        fix = error.fix or f"give {subject} {error.expected}"
    else:
        subject = variables[error.name]
        fix = error.fix or f"set {subject} to {error.expected}, or unset it"
    return Mistake(f"{subject}: {error.problem}", fix)


def check_listening(host: str, port: int, *, host_from: str, port_from: str) -> None:
    """Raise a Mistake when ``host``:``port`` cannot be listened on: an unknown host, an
    address of another machine, a port in use or reserved to root.

    ``host_from`` and ``port_from`` name where the values came from (option or variable).
    Binds and closes a socket at once, as uvicorn will bind it (``SO_REUSEADDR``).
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError):
        raise Mistake(
            f"{host_from} {host}: no such host name or address",
            f"give {host_from} an address of this machine, e.g. 127.0.0.1, or 0.0.0.0 for all",
        ) from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise Mistake(
                    f"{host}:{port} is in use by another program",
                    f"stop it, or give {port_from} another port",
                ) from None
            if error.errno == errno.EACCES:
                raise Mistake(
                    f"{port_from} {port}: ports below 1024 need root's privileges",
                    f"give {port_from} a port from 1024 to 65535",
                ) from None
            raise Mistake(
                f"{host_from} {host}: cannot listen there: {error.strerror}",
                f"give {host_from} an address of this machine, e.g. 127.0.0.1",
            ) from None


def database_mistake(error: BaseException, url: str, subject: str) -> Mistake | None:
    """The Mistake that ``error``, raised while preparing the database of ``url``, stands
    for; None when it is no mistake of the operator's (then it is a fault to show whole).

    ``subject`` names where the URL came from (``--database-url`` or its variable).
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - the command line imports it late

    parsed = make_url(url)
    postgres = parsed.get_backend_name() == "postgresql"
    server = _servers(parsed)
    for cause in _causes(error):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state in _POSTGRES:
            what, fix = _POSTGRES[state]
            values = {
                "db": parsed.database or parsed.username or "",
                "user": parsed.username or "",
                "server": server,
                "subject": subject,
                "message": str(cause).splitlines()[0],
            }
            return Mistake(what.format(**values), fix.format(**values))
        if isinstance(cause, sqlite3.DatabaseError):
            return _sqlite_mistake(cause, parsed.database or "", subject)
        if not postgres:
            continue
        if type(cause).__name__ == "TargetServerAttributeNotMatched":
            # asyncpg reached every host of a multi-host URL, and none is a primary.
            return Mistake(
                f"no PostgreSQL server at {server} accepts writes",
                f"start or promote the primary, or correct the hosts in {subject}",
            )
        if isinstance(cause, socket.gaierror):
            reason = "unknown host name"
        elif isinstance(cause, TimeoutError):
            reason = "no answer in time"
        elif isinstance(cause, OSError):
            reason = _CONNECT.get(cause.errno or 0) or cause.strerror or str(cause)
        else:
            continue
        return Mistake(
            f"cannot connect to PostgreSQL at {server}: {reason}",
            f"start the server, or correct the host and port in {subject}",
        )
    return None


def _servers(parsed: URL) -> str:
    """Where the URL's PostgreSQL is: ``host:port``, or each host of a multi-host URL."""
    hosts = parsed.query.get("host")
    if hosts:
        named = (hosts,) if isinstance(hosts, str) else hosts
        return ", ".join(host if ":" in host else f"{host}:5432" for host in named)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _sqlite_mistake(error: sqlite3.DatabaseError, path: str, subject: str) -> Mistake | None:
    message = str(error)
    if "unable to open database file" in message:
        return Mistake(
            f"SQLite cannot open the database {path}",
            f"give {subject} a path in a directory you may write to",
        )
    if "database is locked" in message:
        # Another process kept the write lock beyond the busy timeout (a backup, a shell,
        # a second service migrating the same file).
        return Mistake(
            f"another process holds the write lock of the SQLite database {path}",
            "stop it or wait for it, or raise --busy-timeout",
        )
    if "file is not a database" in message:
        return Mistake(
            f"{path} is not a SQLite database", f"give {subject} another file, or a new one"
        )
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it wraps (SQLAlchemy's ``orig``, causes and contexts), once each."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop(0)
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        original = getattr(cause, "orig", None)
        pending += [original if isinstance(original, BaseException) else None]
        pending += [cause.__cause__, cause.__context__]

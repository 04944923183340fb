"""The service's database URL: checked, completed with the driver, shown without password.

The service runs on SQLite through aiosqlite and on PostgreSQL through asyncpg, the
two async drivers its extras install. A URL that names only the database
(``sqlite:///optimist.db``, ``postgresql://user@host/db``, and Heroku's and libpq's
``postgres://``) gets that driver, as the URLs of other tools are written; a URL that
names another driver, another database or no URL at all is refused with what to write
instead (:class:`InvalidDatabaseURL`). Before connecting, the command line checks that
the driver is installed (:func:`check_driver`) and that a SQLite file can be created
where the URL says (:func:`check_sqlite_path`).

SQLAlchemy is imported by the functions that need it, not with this module, so that
``optimist --help`` does not wait for it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Final

__all__ = [
    "DRIVERS",
    "InvalidDatabaseURL",
    "check_driver",
    "check_sqlite_path",
    "normalized",
    "redacted_url",
]

#: Database (as SQLAlchemy names its dialect) → the async driver the service uses for it.
DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}

#: Database → the extra of optimist-http that installs its driver.
_EXTRAS: Final = {"sqlite": "service", "postgresql": "postgres"}

#: Schemes that name PostgreSQL without SQLAlchemy's dialect name.
_ALIASES: Final = {"postgres": "postgresql"}

_EXAMPLES: Final = "sqlite:///PATH or postgresql://USER@HOST/DATABASE"


class InvalidDatabaseURL(ValueError):
    """A database URL the service cannot use: what is wrong, what it takes, what to do."""

    def __init__(self, problem: str, expected: str = f"a URL such as {_EXAMPLES}",
                 fix: str | None = None) -> None:  # fmt: skip
        super().__init__(problem)
        self.problem = problem
        self.expected = expected
        self.fix = fix


def redacted_url(url: str) -> str:
    """``url`` as the service shows it: the password, if any, is ``***``.

    A URL SQLAlchemy cannot parse is shown as ``<unparsable URL>``: it may still carry
    one.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the module's docstring
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL, or a port that is no number
        return "<unparsable URL>"


def _parts(url: str) -> tuple[str, str | None, str | None]:
    """Database, driver (None if the URL names none) and SQLite path of ``url``."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the module's docstring
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not echoed: a URL that does not parse may still carry a password.
        raise InvalidDatabaseURL("not a database URL") from None
    database, _, driver = parsed.drivername.partition("+")
    database = _ALIASES.get(database, database)
    if database not in DRIVERS:
        raise InvalidDatabaseURL(f"{database}:// is not a database the service runs on")
    return database, driver or None, parsed.database if database == "sqlite" else None


def normalized(url: str) -> str:
    """``url`` with the service's driver named, or InvalidDatabaseURL saying what to write.

    Only the scheme changes: the rest of the URL stays as written (its password's
    percent-encoding included).
    """
    database, driver, _ = _parts(url)
    wanted = DRIVERS[database]
    if driver is not None and driver != wanted:
        raise InvalidDatabaseURL(
            f"the driver {driver} is not one the service uses for {database}",
            f"a URL such as {_EXAMPLES}",
            f"write {database}:// (or {database}+{wanted}://): the service uses {wanted}",
        )
    scheme, _, rest = url.partition("://")
    return f"{database}+{wanted}://{rest}" if scheme != f"{database}+{wanted}" else url


def check_driver(url: str) -> None:
    """Raise InvalidDatabaseURL when the driver of (normalized) ``url`` is not installed."""
    database, driver, _ = _parts(url)
    module = driver or DRIVERS[database]
    if importlib.util.find_spec(module) is None:
        raise InvalidDatabaseURL(
            f"the {database} driver {module} is not installed",
            fix=f"install it: pip install 'optimist-http[{_EXTRAS[database]}]'",
        )


def check_sqlite_path(url: str) -> None:
    """Raise InvalidDatabaseURL when the SQLite file of ``url`` cannot be opened or created.

    SQLite itself says only "unable to open database file". A file that exists must be
    readable and writable; otherwise its directory must exist and take new files (SQLite
    also creates its ``-wal`` and ``-shm`` files there). In-memory databases pass.
    """
    _, _, name = _parts(url)
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    elsewhere = "a path in a directory you may write to, e.g. sqlite:///optimist.db"
    fix = f"give the database URL {elsewhere}"
    if path.exists():
        if path.is_dir():
            raise InvalidDatabaseURL(f"the SQLite database {path} is a directory", fix=fix)
        if not os.access(path, os.R_OK | os.W_OK):
            raise InvalidDatabaseURL(f"the SQLite database {path} is not writable", fix=fix)
        return
    directory = path.parent
    if directory.exists() and not directory.is_dir():
        raise InvalidDatabaseURL(
            f"the SQLite database {path} cannot be created: {directory} is not a directory",
            fix=fix,
        )
    if not directory.is_dir():
        raise InvalidDatabaseURL(
            f"the directory of the SQLite database {path} does not exist",
            fix=f"create it (mkdir -p {directory}) or give {elsewhere}",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InvalidDatabaseURL(
            f"the SQLite database {path} cannot be created: {directory} is not writable",
            fix=fix,
        )

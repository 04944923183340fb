"""PostgreSQL behind a connection pooler in transaction mode (PgBouncer's ``pool_mode =
transaction``): the driver settings that keep every statement correct there.

A pooler in transaction mode lends a client a server connection for one transaction
only; the client's next transaction may run on another server connection, one that
other clients used in between. What a session keeps between transactions is therefore
lost, or worse, found by another client (PgBouncer's feature map lists SET, LISTEN,
session advisory locks, WITH HOLD cursors and protocol-level prepared statements as
unsupported in this mode). Of those, this package and asyncpg use only prepared
statements, in two caches:

* asyncpg's statement cache (``statement_cache_size``, 100 by default) names each
  statement ``__asyncpg_stmt_N__``, N counting from 1 on every connection. A second
  client that prepares its first statement on a server connection where another
  client's is still kept fails with ``prepared statement "__asyncpg_stmt_1__" already
  exists``, and a statement prepared on one server connection is not there on the next;
* SQLAlchemy's asyncpg dialect keeps prepared statement objects of its own
  (``prepared_statement_cache_size``, 100 by default) and names them likewise.

``pooler="transaction"`` (or ``?pooler=transaction`` in the URL, which
:func:`pooled` takes out before SQLAlchemy sees the URL) sets both to 0. asyncpg then
prepares every statement unnamed and, because PgBouncer takes the ``Flush`` after
``Parse`` for a transaction boundary and may send the ``Bind`` elsewhere, parses it again
in the same message batch as its ``Bind``, ``Execute`` and ``Sync`` (asyncpg's
``Connection._get_statement``, "assuming people are running PgBouncer"): the statement
and its execution reach one server connection, and nothing of it stays there. The
driver's fast path (:mod:`optimist.sqlalchemy._direct`) uses the same two asyncpg calls
and so stays correct; the rest of the package keeps no session state (every
transaction this package opens ends before its connection goes back to the pool).

A name for SQLAlchemy's statements (``prepared_statement_name_func``), or a cache size
other than 0, contradicts the mode and is refused with a ValueError, as are a pooling
mode other than :data:`POOLERS` and a database other than PostgreSQL on asyncpg.
Session pooling needs none of this: a client keeps its server connection until it
disconnects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.engine import URL

__all__ = ["POOLERS", "POOLER_PARAMETER", "connect_args", "pooled"]

#: The pooling modes :func:`optimist.sqlalchemy.create_engine` knows how to be correct in.
POOLERS: Final = frozenset({"transaction"})

#: The URL query parameter that names the pooling mode (taken out before connecting).
POOLER_PARAMETER: Final = "pooler"

#: asyncpg's statement cache, then SQLAlchemy's: both must be off in transaction mode.
_CACHES: Final = ("statement_cache_size", "prepared_statement_cache_size")
_NAMES: Final = "prepared_statement_name_func"


def pooled(url: URL, pooler: str | None) -> tuple[URL, str | None]:
    """``url`` without its :data:`POOLER_PARAMETER`, and the pooling mode it or ``pooler``
    names (None: connections go to PostgreSQL itself).

    A mode that is not one of :data:`POOLERS`, two modes that differ, or a mode for a
    database other than PostgreSQL on asyncpg raise ValueError.
    """
    given = url.query.get(POOLER_PARAMETER)
    if isinstance(given, tuple):
        raise ValueError(f"the URL names its {POOLER_PARAMETER} more than once")
    if given is not None:
        url = url.difference_update_query([POOLER_PARAMETER])
        if pooler is not None and pooler != given:
            raise ValueError(f"pooler={pooler!r} contradicts the URL's {POOLER_PARAMETER}={given}")
        pooler = given
    if pooler is None:
        return url, None
    if pooler not in POOLERS:
        raise ValueError(f"pooler must be one of {sorted(POOLERS)}, not {pooler!r}")
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        raise ValueError(
            f"pooler={pooler!r} applies to PostgreSQL on asyncpg (postgresql+asyncpg://), "
            f"not {url.drivername}://"
        )
    return url, pooler


def connect_args(url: URL, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (the engine's ``connect_args``) with both statement caches off.

    A cache size other than 0 in ``given`` or in ``url``'s query, or a statement name
    function, raise ValueError: the statements must stay unnamed.
    """
    # PostgreSQL (Extended Query protocol): a named prepared statement lasts until the end
    # of the session, so on a shared server connection it outlives its client; only the
    # unnamed one is replaced by the next Parse. asyncpg's FAQ ("Why am I getting
    # prepared statement errors?"): behind PgBouncer in transaction mode, set
    # statement_cache_size to 0, which makes it use the unnamed statement only.
    for name in _CACHES:
        for where, value in (("connect_args", given.get(name)), ("URL", url.query.get(name))):
            if value is not None and str(value) != "0":
                raise ValueError(
                    f"{name}={value} in the {where} contradicts pooler='transaction', "
                    "which needs it 0: a transaction pooler keeps no prepared statement"
                )
    # SQLAlchemy's asyncpg dialect passes the name this function returns to asyncpg's
    # prepare(); a name other than None makes the statement a named one.
    if given.get(_NAMES) is not None:
        raise ValueError(
            f"{_NAMES} contradicts pooler='transaction': behind a transaction pooler a "
            "statement must stay unnamed"
        )
    return {**given, **dict.fromkeys(_CACHES, 0)}

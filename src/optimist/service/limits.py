"""The open-file budget of ``optimist serve``: every socket and database file is one.

A worker process can hold at most ``RLIMIT_NOFILE`` descriptors. When clients open more
connections than that, ``accept()`` fails with EMFILE for everyone, and the database
cannot open a file either. So, at start:

* :func:`raise_open_file_limit` raises the soft limit to the hard limit (what the
  operator allows; the soft one is often a cautious 1024);
* :func:`connection_cap` lowers the configured connection cap until, below the limit,
  there is room for the database's connections and files (:data:`RESERVED_FILES`) and
  for the connections being refused (:data:`REFUSING`), so the cap is what clients meet
  (503), never EMFILE.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Final

__all__ = [
    "REFUSING",
    "RESERVED_FILES",
    "connection_cap",
    "open_file_limit",
    "raise_open_file_limit",
]

#: Descriptors kept from connections for everything else a worker opens: the database
#: (PostgreSQL: a pool of 20 sockets; SQLite: up to 15 pooled connections of three files
#: each: the database, its WAL and its shared-memory index), the listening socket, the
#: event loop's own, standard streams and log files.
RESERVED_FILES: Final = 128

#: Connections beyond the cap answered 503 and held until the client has read it (see
#: :mod:`optimist.service.gate`); more are answered and closed at once.
REFUSING: Final = 64

#: Where the soft limit stops when the hard one is unlimited: what Linux allows a
#: process by default (``fs.nr_open``); macOS allows less and refuses, which is kept.
_UNLIMITED_TARGET: Final = 1 << 20


def open_file_limit() -> int | None:
    """This process's soft limit on open files, or None where there is none to read."""
    if sys.platform == "win32":
        return None
    import resource  # noqa: PLC0415 - POSIX only

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard one; the soft limit in force after.

    The child processes (``--workers``) inherit it. Where the system refuses the raise
    (macOS caps it below an unlimited hard limit), the limit is left as it was.
    """
    if sys.platform == "win32":
        return None
    import resource  # noqa: PLC0415 - POSIX only

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return open_file_limit()
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_file_limit()


def connection_cap(requested: int, open_files: int | None) -> int:
    """The connections one worker may hold: ``requested``, lowered to fit ``open_files``.

    Raises ValueError when the limit leaves no room for a single connection beside the
    reserve; the service must not start then, since it could not serve anyone.
    """
    if open_files is None:
        return requested
    room = open_files - RESERVED_FILES - REFUSING
    if room < 1:
        raise ValueError(
            f"the open-file limit of {open_files} leaves no room for connections: "
            f"raise it above {RESERVED_FILES + REFUSING} (ulimit -n)"
        )
    return min(requested, room)

"""SQLite's write lock held by another process, as a backup script or a shell would hold it.

A separate Python process opens the database file with ``sqlite3``, runs ``BEGIN
IMMEDIATE`` and keeps the write lock until the ``with`` of :func:`write_lock` ends; the
``with`` begins only once the lock is taken. Readers of the file go on (WAL); writers
wait for their busy timeout.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["LockHolder", "write_lock"]

#: The holder: takes the write lock, says so, holds it until its stdin closes.
_HOLDER: Final = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""
#: Seconds the holder may take to let go and exit: only a stuck one reaches it.
_RELEASE_WAIT: Final = 60


class LockHolder:
    """The process holding the lock: whether it still does."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def holding(self) -> bool:
        """Whether the holder still runs, so the lock is still taken."""
        return self._process.poll() is None


@contextmanager
def write_lock(database: Path) -> Iterator[LockHolder]:
    """Another process holding ``database``'s write lock until the ``with`` ends; then
    it lets go and exits before the ``with`` is left."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield LockHolder(holder)
    finally:
        try:
            holder.communicate(timeout=_RELEASE_WAIT)  # closes stdin: the holder lets go
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0, f"the lock holder failed ({holder.returncode})"

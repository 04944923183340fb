"""A fault run made once per test session, even when pytest-xdist splits its tests.

A fault test module runs its fault once, in a module-scoped fixture that records what
the clients saw, and each of its tests checks one behaviour against the record. Under
pytest-xdist, the tests of one module may go to several worker processes, and each
would run the fault again: minutes of a two-core machine, for nothing. :func:`once`
lets the first worker that asks run it and keep the record (pickled) in the session's
shared temporary directory; a worker that asks meanwhile waits for it (a file lock),
then reads it. A run that failed keeps nothing, so the next worker runs it itself and
fails the same way in its own tests.

This follows pytest-xdist's recipe for "making session-scoped fixtures execute only
once" (its documentation, "How-tos"), with ``fcntl.flock`` for the file lock.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

__all__ = ["once"]

_T = TypeVar("_T")


def once(factory: pytest.TempPathFactory, name: str, run: Callable[[], _T]) -> _T:
    """``run()``'s result, computed once per test session under the key ``name``."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return run()
    # Each worker's base is <session's directory>/popen-gwN: the parent is this session's.
    shared: Path = factory.getbasetemp().parent / "once"
    shared.mkdir(exist_ok=True)
    record = shared / f"{name}.pickle"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if record.exists():
                kept: _T = pickle.loads(record.read_bytes())  # written by this session
                return kept
            result = run()
            written = record.with_suffix(".partial")
            written.write_bytes(pickle.dumps(result))
            written.rename(record)
            return result
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

"""SQLite database files are created readable by their owner only (create_engine)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from optimist.sqlalchemy import create_engine
from optimist.sqlalchemy.engine import SQLITE_FILE_MODE

pytestmark = pytest.mark.anyio

#: The umask of a typical login: without a mode of its own, SQLite creates files 0644.
UMASK = 0o022


@pytest.fixture(autouse=True)
def typical_umask() -> Iterator[None]:
    """Run each test under :data:`UMASK`, whatever the test runner's is."""
    previous = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


async def write_once(path: Path, *file_mode: int | None) -> set[int]:
    """Open ``path`` with create_engine (with ``file_mode`` if given, else its default)
    and write to it; the modes of its WAL files, looked at while a connection is open
    (they exist only then)."""
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url, file_mode=file_mode[0]) if file_mode else create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as connection:
            await connection.execute(text("SELECT n FROM t"))
            return {mode(Path(f"{path}{suffix}")) for suffix in ("-wal", "-shm")}
    finally:
        await engine.dispose()


async def test_new_database_file_is_owner_only(tmp_path: Path) -> None:
    """A database file create_engine creates is 0600."""
    path = tmp_path / "new.db"
    await write_once(path)
    assert mode(path) == SQLITE_FILE_MODE == 0o600


async def test_new_database_wal_files_are_owner_only(tmp_path: Path) -> None:
    """SQLite gives the WAL files of a new database file its 0600."""
    assert await write_once(tmp_path / "new.db") == {0o600}


async def test_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    """A database file that exists already keeps the mode its owner gave it."""
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    await write_once(path)
    assert mode(path) == 0o640


async def test_file_mode_is_configurable(tmp_path: Path) -> None:
    """file_mode= sets the mode a new database file gets."""
    path = tmp_path / "group.db"
    await write_once(path, 0o640)
    assert mode(path) == 0o640


async def test_file_mode_none_leaves_it_to_sqlite(tmp_path: Path) -> None:
    """file_mode=None lets SQLite create the file, with the umask's 0644."""
    path = tmp_path / "default.db"
    await write_once(path, None)
    assert mode(path) == 0o666 & ~UMASK

"""The command line: options over variables, migrate, and refusals before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from optimist.service.cli import main
from optimist.service.settings import ENVIRONMENT


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() writes its settings into os.environ; undo that after each test."""
    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)


def test_migrate_creates_the_database_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``optimist migrate --database-url`` applies the schema and returns."""
    path = tmp_path / "ops.db"
    main(["migrate", "--database-url", f"sqlite+aiosqlite:///{path}", "--no-demo-data"])
    assert "database created" in capsys.readouterr().err
    tables = inspect(create_engine(f"sqlite:///{path}")).get_table_names()
    assert {"admin_users", "projects", "test_sessions", "alembic_version"} <= set(tables)
    main(["migrate", "--database-url", f"sqlite+aiosqlite:///{path}"])
    assert "up to date" in capsys.readouterr().err


def test_bad_node_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid --node-id stops with exit status 2 and says why."""
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--node-id", "no spaces allowed"])
    assert stopped.value.code == 2
    assert "node id" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option",
    [
        ["--head-timeout", "0"],
        ["--body-timeout", "-1"],
        ["--idle-timeout", "nan"],
        ["--ready-timeout", "0"],
        ["--max-connections", "0"],
    ],
    ids=lambda option: option[0],
)
def test_bad_limit_is_a_usage_error(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A timeout or a cap out of range stops with exit status 2 before anything runs."""
    with pytest.raises(SystemExit) as stopped:
        main(["serve", *option])
    assert stopped.value.code == 2
    assert option[0].removeprefix("--").replace("-", "_") in capsys.readouterr().err

"""Settings: the OPTIMIST_* variables, their defaults, and what they refuse."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from optimist.service.settings import Settings, default_database_url, default_node_id
from optimist.vclock import VectorClock


def test_defaults_are_sqlite_in_the_working_directory_and_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no variables: optimist.db here, a node named after the host, demo data on."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_environment({})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'optimist.db'}"
    assert settings.node_id == default_node_id()
    assert settings.demo_data is True
    assert settings.secret_key is None


def test_default_node_id_is_a_valid_clock_node() -> None:
    """Whatever the host is called, the default node name fits in a vector clock."""
    assert VectorClock({default_node_id(): 1})


def test_environment_round_trips() -> None:
    """to_environment gives the variables from which another process rebuilds the same."""
    settings = Settings(
        database_url=default_database_url(Path("/srv")),
        node_id="edge-1",
        secret_key="k",
        demo_data=False,
        cursor_max_age=timedelta(minutes=5),
        csrf_max_age=timedelta(minutes=10),
        head_timeout=1.5,
        body_timeout=20,
        idle_timeout=0.25,
        max_connections=7,
        ready_timeout=3,
    )
    assert Settings.from_environment(settings.to_environment()) == settings


@pytest.mark.parametrize("node_id", ["has space", "x" * 65, "é"], ids=["space", "long", "accent"])
def test_node_id_outside_the_clock_alphabet_is_refused(node_id: str) -> None:
    """A node id no vector clock can carry is refused at start, not at the first write."""
    with pytest.raises(ValueError, match="node id"):
        Settings(database_url="sqlite+aiosqlite://", node_id=node_id)


@pytest.mark.parametrize("variable", ["OPTIMIST_CURSOR_MAX_AGE", "OPTIMIST_CSRF_MAX_AGE"])
@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_bad_max_ages_are_refused(variable: str, value: str) -> None:
    """Token ages must be positive numbers of seconds."""
    with pytest.raises(ValueError):  # noqa: PT011 - float() and the check say different things
        Settings.from_environment({variable: value, "OPTIMIST_NODE_ID": "n"})


def test_server_limits_have_their_documented_defaults() -> None:
    """Unset, the head, body, idle and ready timeouts and the cap are docs/service.md's."""
    settings = Settings.from_environment({"OPTIMIST_NODE_ID": "n"})
    assert (
        settings.head_timeout,
        settings.body_timeout,
        settings.idle_timeout,
        settings.max_connections,
        settings.ready_timeout,
    ) == (10, 30, 5, 1000, 2)


@pytest.mark.parametrize(
    "variable",
    [
        "OPTIMIST_HEAD_TIMEOUT",
        "OPTIMIST_BODY_TIMEOUT",
        "OPTIMIST_IDLE_TIMEOUT",
        "OPTIMIST_READY_TIMEOUT",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_bad_timeouts_are_refused(variable: str, value: str) -> None:
    """A timeout must be a positive, finite number of seconds."""
    with pytest.raises(ValueError):  # noqa: PT011 - float() and the check say different things
        Settings.from_environment({variable: value, "OPTIMIST_NODE_ID": "n"})


@pytest.mark.parametrize("value", ["0", "-3", "1.5"])
def test_bad_connection_caps_are_refused(value: str) -> None:
    """The connection cap is a whole number of at least one."""
    with pytest.raises(ValueError):  # noqa: PT011 - int() and the check say different things
        Settings.from_environment({"OPTIMIST_MAX_CONNECTIONS": value, "OPTIMIST_NODE_ID": "n"})

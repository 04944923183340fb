"""optimist.service.command_line: the options of ``serve`` and ``migrate``, and what a
parsed command line gives."""

from __future__ import annotations

import argparse

import pytest

from optimist.service.command_line import DEFAULT_HOST, DEFAULT_PORT, given, parser, server


def _command(name: str) -> argparse.ArgumentParser:
    [commands] = [action for action in parser()._actions if action.dest == "command"]
    found: argparse.ArgumentParser = commands.choices[name]  # type: ignore[index]
    return found


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_every_option_has_help(command: str) -> None:
    """Every option of ``serve`` and ``migrate`` says what it does."""
    options = [action for action in _command(command)._actions if action.option_strings]
    assert "--database-url" in {name for action in options for name in action.option_strings}
    assert [action.option_strings for action in options if not action.help] == []


def test_options_given_are_the_text_of_their_settings() -> None:
    """Given options become their settings' text; flags and repeated origins become one value."""
    arguments = parser().parse_command(
        [
            "serve",
            "--node-id=edge-1",
            "--busy-timeout=2.5",
            "--no-demo-data",
            "--require-identity",
            "--cors-origin=https://a.example",
            "--cors-origin=https://b.example",
        ]
    )
    assert given(arguments) == {
        "node_id": "edge-1",
        "busy_timeout": "2.5",
        "demo_data": "0",
        "require_identity": "1",
        "cors_origins": "https://a.example,https://b.example",
    }


def test_an_option_is_preferred_to_the_variable_and_the_variable_to_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Host, port and workers: the option, else OPTIMIST_HOST and the rest, else the default."""
    monkeypatch.setenv("OPTIMIST_PORT", "9000")
    monkeypatch.delenv("OPTIMIST_HOST", raising=False)
    monkeypatch.delenv("OPTIMIST_WORKERS", raising=False)
    assert server(parser().parse_command(["serve", "--workers=3"])) == (DEFAULT_HOST, 9000, 3)
    monkeypatch.delenv("OPTIMIST_PORT")
    assert server(parser().parse_command(["serve"])) == (DEFAULT_HOST, DEFAULT_PORT, 1)

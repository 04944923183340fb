"""The package as it is installed: its name, version and licence agree everywhere."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import optimist

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "optimist-http"


def test_version_is_the_installed_distributions() -> None:
    """optimist.__version__ is the version the installed optimist-http declares."""
    assert importlib.metadata.version(DISTRIBUTION) == optimist.__version__


def test_changelog_names_the_current_version() -> None:
    """CHANGELOG.md has a section for the version being made."""
    release = re.match(r"\d+\.\d+\.\d+", optimist.__version__)
    assert release is not None
    assert f"— {release[0]}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_licence_file_is_the_declared_licence() -> None:
    """pyproject declares MIT, and LICENSE is the MIT licence text."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "LICENSE" in project["license-files"]


def test_extras_install_through_the_distributions_own_name() -> None:
    """Every extra that builds on another names this distribution, not another one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == DISTRIBUTION
    for requirements in project["optional-dependencies"].values():
        for requirement in requirements:
            if requirement.startswith("optimist"):
                assert requirement.startswith(f"{DISTRIBUTION}["), requirement

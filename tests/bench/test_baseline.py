"""--baseline: a commit's tree extracted beside the checkout, and what its servers import."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# bench/ is not installed: it is found beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.baseline import BaselineFailed, checkout, imports
from bench.servers import ROOT
from bench.subjects import OPTIMIST, twin

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout"
)


def test_a_commits_tree_is_extracted_once_and_its_twin_imports_from_it(tmp_path: Path) -> None:
    """HEAD's tree lands under the cache, and the twin's app and optimist come from it."""
    baseline = checkout("HEAD", tmp_path)
    assert baseline.tree == tmp_path / baseline.rev
    assert baseline.commit.startswith(baseline.rev)
    assert checkout(baseline.commit, tmp_path) == baseline
    found = imports(twin(OPTIMIST, baseline.rev, baseline.tree))
    assert found == {
        "app": str(baseline.tree / "bench" / "apps" / "optimist_app.py"),
        "optimist": str(baseline.tree / "src" / "optimist" / "__init__.py"),
    }


def test_an_unknown_commit_is_refused(tmp_path: Path) -> None:
    """A name git does not know stops before anything is extracted."""
    with pytest.raises(BaselineFailed, match="rev-parse"):
        checkout("no-such-commit-anywhere", tmp_path)
    assert not any(tmp_path.iterdir())

"""``--baseline REV``: the optimist servers as another commit wrote them, in the same run.

The commit's tree is extracted once with ``git archive`` into bench/.baseline/<rev>
(ignored by git; the checkout's index, HEAD and branch are left alone) and reused by
later runs. Each optimist subject selected gets a twin (:func:`bench.subjects.twin`)
that serves that tree's app module and ``src/optimist``; :func:`imports` asks a
process started like its server which files those are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.servers import ROOT, environment
from bench.subjects import Subject

__all__ = ["CACHE", "Baseline", "BaselineFailed", "checkout", "imports"]

CACHE: Final = ROOT / "bench" / ".baseline"
# What the server's uvicorn does before it imports the app: its --app-dir, ".", first.
_PROBE: Final = """
import importlib, json, sys
sys.path.insert(0, ".")
app = importlib.import_module(sys.argv[1])
import optimist
print(json.dumps({"app": app.__file__, "optimist": optimist.__file__}))
"""


class BaselineFailed(RuntimeError):
    """The commit is unknown, or its servers would not run its own code."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """A commit (``rev``: its short hash, ``commit``: the full one) and its tree."""

    rev: str
    commit: str
    tree: Path


def _git(*arguments: str) -> str:
    found = subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        raise BaselineFailed(f"git {' '.join(arguments)}: {found.stderr.strip()}")
    return found.stdout.strip()


def checkout(rev: str, cache: Path = CACHE) -> Baseline:
    """The commit ``rev`` names, its tree extracted under ``cache`` (once)."""
    commit = _git("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
    short = _git("rev-parse", "--short", commit)
    tree = cache / short
    if not (tree / "src" / "optimist").is_dir():
        partial = cache / f"{short}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as stream:
            stream.extractall(partial, filter="data")
        if archive.wait() != 0:
            raise BaselineFailed(f"git archive {commit} failed")
        shutil.rmtree(tree, ignore_errors=True)
        partial.rename(tree)
    return Baseline(short, commit, tree)


def imports(subject: Subject) -> dict[str, str]:
    """The files of ``subject``'s app module and of ``optimist`` as its server imports them.

    A process with the server's interpreter, environment and working directory imports
    the app module as uvicorn does. Raises BaselineFailed unless both files lie in
    ``subject.cwd`` (the commit's tree).
    """
    module = subject.target.partition(":")[0]
    probe = subprocess.run(
        [subject.python, "-c", _PROBE, module],
        cwd=subject.cwd or ROOT,
        env=environment(subject, {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BaselineFailed(f"{subject.name} does not import:\n{probe.stderr[-2000:]}")
    found: dict[str, str] = json.loads(probe.stdout)
    tree = (subject.cwd or ROOT).resolve()
    strays = [path for path in found.values() if not Path(path).resolve().is_relative_to(tree)]
    if strays:
        raise BaselineFailed(f"{subject.name} imports {', '.join(strays)}, not from {tree}")
    return found

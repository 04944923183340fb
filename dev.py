#!/usr/bin/env python3
"""Set up a development environment, then start the service or run every check.

    python3 dev.py serve [options]   start the reference service (options: optimist serve --help)
    python3 dev.py test  [args]      ruff, mypy --strict, then pytest with coverage (args → pytest)
    python3 dev.py bench [args]      run the benchmarks and rewrite docs/benchmarks.md
                                     (args → python -m bench; --help lists them)

Needs only Python ≥ 3.11. The environment lives in .venv and is reinstalled when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".optimist-installed"
# Branch coverage the framework-free core must keep.
CORE = [
    "src/optimist/etag.py",
    "src/optimist/preconditions.py",
    "src/optimist/conditions.py",
    "src/optimist/policy.py",
    "src/optimist/problem.py",
    "src/optimist/errors.py",
    "src/optimist/vclock.py",
    "src/optimist/tokens.py",
    "src/optimist/cursor.py",
    "src/optimist/merge.py",
    "src/optimist/httpdate.py",
    "src/optimist/_text.py",
]
CORE_COVERAGE = 95


def run(*command: str | Path) -> None:
    """Run a command from the project root; stop with its exit status if it fails."""
    result = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment() -> None:
    """Create .venv and install the project with its extras, unless already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"optimist needs Python >= 3.11; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except subprocess.CalledProcessError:
            sys.exit("could not create .venv: this Python lacks ensurepip (Debian: python3-venv)")
    print("installing optimist and its development tools into .venv", flush=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev,postgres]")
    STAMP.write_text(wanted)


def serve(args: list[str]) -> None:
    os.execv(BIN / "optimist", [str(BIN / "optimist"), "serve", *args])


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
    run(BIN / "ruff", "format", "--check", "src", "tests", "bench", "dev.py")
    run(BIN / "mypy")
    for stale in ROOT.glob(".coverage*"):
        stale.unlink()
    # Two processes: the machines this runs on have two cores, and much of the suite
    # waits on databases and servers.
    workers = os.environ.get("OPTIMIST_TEST_WORKERS", "2")
    run(
        BIN / "pytest",
        *(["-n", workers] if workers != "0" else []),
        "--cov",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        *args,
    )
    core = [path for path in CORE if (ROOT / path).exists()]
    print(f"\nframework-free core (branch coverage must stay >= {CORE_COVERAGE} %):")
    run(BIN / "coverage", "report", f"--include={','.join(core)}", f"--fail-under={CORE_COVERAGE}")


def bench(args: list[str]) -> None:
    # The bench extra (matplotlib, uvloop and httptools, py-spy) is installed only here.
    stamp = VENV / ".optimist-bench-installed"
    wanted = STAMP.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        print("installing the benchmark tools into .venv", flush=True)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev,postgres,bench]")
        stamp.write_text(wanted)
    run(BIN / "python", "-m", "bench", *args)


COMMANDS = {"serve": serve, "test": test, "bench": bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    ensure_environment()
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

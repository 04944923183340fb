#!/usr/bin/env python3
"""Set up a development environment, then start the service or run every check.

    python3 dev.py serve [options]   start the reference service (options: optimist serve --help)
    python3 dev.py test  [args]      ruff, mypy --strict, the core's tests without the extras,
                                     then pytest with coverage (args → pytest)
    python3 dev.py bench [args]      run the benchmarks and rewrite docs/benchmarks.md
                                     (args → python -m bench; --help lists them)

Needs only Python ≥ 3.11. The environment lives in .venv: `serve` installs only what the
service needs, `test` and `bench` add their tools; each reinstalls when pyproject.toml
changes. `test` also keeps .venv-core: optimist installed without extras,
with only the test tools, where tests/core runs to show that the core needs nothing but
the standard library. It takes pytest's options from args, and of the paths in args those
in tests/core (all of tests/core when args name no path); args naming only paths elsewhere
skip it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
CORE_VENV = ROOT / ".venv-core"
CORE_BIN = CORE_VENV / ("Scripts" if os.name == "nt" else "bin")
CORE_TESTS = ROOT / "tests" / "core"
# What tests/core needs besides optimist, at the versions the dev extra asks for: the
# test tools, and the libraries the differential tests compare with.
CORE_TEST_TOOLS = ("pytest", "pytest-xdist", "hypothesis", "werkzeug", "etag")
# Exits non-zero naming those of the packages in argv that this Python can import.
FIND_PACKAGES = """
import importlib.util, sys
found = [name for name in sys.argv[1:] if importlib.util.find_spec(name)]
sys.exit(f"{sys.prefix} must not have {', '.join(found)}" if found else 0)
"""
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
    "src/optimist/idempotency.py",
    "src/optimist/_structured.py",
    "src/optimist/peers.py",
    "src/optimist/bearer.py",
]
CORE_COVERAGE = 95


def run(*command: str | Path, success: tuple[int, ...] = (0,)) -> None:
    """Run a command from the project root; stop with its exit status if it fails."""
    result = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if result.returncode not in success:
        sys.exit(result.returncode)


#: What each command installs into .venv (extras of optimist-http), said as it starts.
NEEDS = {
    "serve": ("service", "what the service needs (FastAPI, SQLAlchemy, uvicorn, drivers)"),
    "test": ("dev", "the service and the development tools (pytest, mypy, ruff...)"),
    "bench": ("dev,bench", "the development and benchmark tools"),
}


def ensure_environment(command: str) -> None:
    """Create .venv and install what ``command`` needs, unless already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"optimist needs Python >= 3.11; this is {sys.version.split()[0]}")
    extras, what = NEEDS[command]
    # Serving is what a newcomer runs first: pip shows what it fetches as it goes.
    install(VENV, what, "-e", f".[{extras}]", stamp=extras, quiet=command != "serve")


def ensure_core_environment() -> None:
    """Create .venv-core with optimist and no extra, plus the core's test tools, unless
    already current; stop if a package the core must do without got in anyway."""
    import tomllib  # noqa: PLC0415 (after the Python version check)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = project["project"]["optional-dependencies"]["dev"]
    tools = [req for req in dev if re.split(r"[^\w.-]", req, maxsplit=1)[0] in CORE_TEST_TOOLS]
    install(
        CORE_VENV, "optimist without extras and the core's test tools", "-e", ".", *tools,
        stamp="core", quiet=True,
    )  # fmt: skip
    (core,) = (c for c in project["tool"]["importlinter"]["contracts"] if c["id"] == "core")
    frameworks = [name for name in core["forbidden_modules"] if "." not in name]
    run(CORE_BIN / "python", "-c", FIND_PACKAGES, *frameworks)


def install(environment: Path, what: str, *requirements: str, stamp: str, quiet: bool) -> None:
    """Create ``environment`` and pip-install ``requirements`` into it, unless done since
    pyproject.toml last changed (``stamp`` names that set of requirements)."""
    done = environment / f".optimist-installed-{stamp}"
    python = environment / ("Scripts" if os.name == "nt" else "bin") / "python"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if done.exists() and done.read_text() == wanted:
        return
    if not python.exists():
        print(f"creating {environment.name}", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(environment)
        except subprocess.CalledProcessError:
            sys.exit(
                f"could not create {environment.name}: this Python lacks ensurepip"
                " (Debian: python3-venv)"
            )
    print(f"installing {what} into {environment.name}", flush=True)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    loud = ["--quiet"] if quiet else ["--progress-bar", "off"]
    run(python, "-m", "pip", "install", *loud, *requirements)
    done.write_text(wanted)


def serve(args: list[str]) -> None:
    print("starting optimist serve (options: python3 dev.py serve --help)", flush=True)
    os.execv(BIN / "optimist", [str(BIN / "optimist"), "serve", *args])


def core_args(args: list[str]) -> list[str] | None:
    """The pytest arguments for .venv-core: the options in ``args`` and its paths inside
    tests/core (tests/core for a path that holds it, or when there is no path); None when
    every path in ``args`` lies elsewhere."""
    options, paths, elsewhere = [], [], False
    for arg in args:
        path = (ROOT / arg.split("::")[0]).resolve()
        if arg.startswith("-") or not path.exists():
            options.append(arg)
        elif path == CORE_TESTS or CORE_TESTS in path.parents:
            paths.append(arg)
        elif path in CORE_TESTS.parents:
            paths.append("tests/core")
        else:
            elsewhere = True
    if elsewhere and not paths:
        return None
    return [*options, *(dict.fromkeys(paths) or ["tests/core"])]


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
    run(BIN / "ruff", "format", "--check", "src", "tests", "bench", "dev.py")
    run(BIN / "mypy")
    # Two processes: the machines this runs on have two cores, and much of the suite
    # waits on databases and servers.
    workers = os.environ.get("OPTIMIST_TEST_WORKERS", "2")
    parallel = ["-n", workers] if workers != "0" else []
    selected = core_args(args)
    if selected is not None:
        ensure_core_environment()
        print("\nthe core without optimist's extras (.venv-core):", flush=True)
        # 5: the options (-k, -m) select no core test, which is no failure here.
        run(CORE_BIN / "pytest", *parallel, *selected, success=(0, 5))
    for stale in ROOT.glob(".coverage*"):
        stale.unlink()
    run(
        BIN / "pytest",
        *parallel,
        "--cov",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        *args,
    )
    core = [path for path in CORE if (ROOT / path).exists()]
    print(f"\nframework-free core (branch coverage must stay >= {CORE_COVERAGE} %):", flush=True)
    run(BIN / "coverage", "report", f"--include={','.join(core)}", f"--fail-under={CORE_COVERAGE}")


def bench(args: list[str]) -> None:
    run(BIN / "python", "-m", "bench", *args)


COMMANDS = {"serve": serve, "test": test, "bench": bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    ensure_environment(sys.argv[1])
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

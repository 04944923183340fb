"""The layers: the core imports only the standard library, an integration only the core
and the framework it is named after, and nothing in the library imports the service.

import-linter checks the contracts in pyproject.toml (``[tool.importlinter]``). The
source checks here need nothing but :mod:`ast`, so they also catch a third-party package
that no contract names. Both read packages, not module files: an integration may be one
module or a package of private modules.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "optimist"
PYPROJECT = ROOT / "pyproject.toml"

#: Each integration, and the top-level packages it may import besides the standard
#: library and the core: what its extra in pyproject.toml installs.
INTEGRATIONS: dict[str, frozenset[str]] = {
    "starlette": frozenset({"starlette", "anyio"}),
    "fastapi": frozenset({"fastapi", "starlette", "pydantic", "anyio"}),
    "sqlalchemy": frozenset({"sqlalchemy", "aiosqlite", "asyncpg"}),
    "httpx": frozenset({"httpx", "anyio"}),
    "cryptography": frozenset({"cryptography"}),
    "jwt": frozenset({"jwt", "cryptography"}),
}
#: The integrations an integration builds on (through their public names).
BUILDS_ON: dict[str, frozenset[str]] = {"fastapi": frozenset({"starlette"})}
SERVICE = "service"


def module_name(path: Path) -> str:
    """``optimist.x.y`` for src/optimist/x/y.py, ``optimist.x`` for src/optimist/x/__init__.py."""
    parts = ["optimist", *path.relative_to(SOURCE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> Iterator[tuple[str, Path]]:
    """Every module of the library, the service excluded."""
    for path in sorted(SOURCE.rglob("*.py")):
        name = module_name(path)
        if component(name) != SERVICE:
            yield name, path


def component(name: str) -> str | None:
    """The top-level part of optimist that ``name`` belongs to; None for the root."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def is_core(name: str) -> bool:
    return component(name) not in {*INTEGRATIONS, SERVICE}


def imported_names(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, wherever it stands (function bodies
    and ``if TYPE_CHECKING:`` included); ``from a import b`` yields ``a.b`` too, as b may
    be a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x, from ..y import z
                base = package.split(".")[: package.count(".") + 2 - node.level]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            if module.split(".")[0] == "optimist":
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"


def stray_imports(
    name: str, path: Path, *, packages: frozenset[str], parts: frozenset[str] = frozenset()
) -> list[str]:
    """``file:line: module`` for each import in the file of anything but the standard
    library, the third-party ``packages``, the core, the module's own part of optimist and
    the other ``parts`` of optimist."""
    stray = []
    for line, imported in imported_names(name, path):
        top = imported.split(".")[0]
        if top == "optimist":
            if is_core(imported) or component(imported) in {component(name), *parts}:
                continue
        elif top in sys.stdlib_module_names or top in packages:
            continue
        stray.append(f"{path.relative_to(ROOT)}:{line}: {imported}")
    return stray


def test_core_imports_only_the_standard_library_and_the_core() -> None:
    """A core module imports the standard library and other core modules, nothing else."""
    stray = [
        line
        for name, path in library_modules()
        if is_core(name)
        for line in stray_imports(name, path, packages=frozenset())
    ]
    assert not stray, "the core imports beyond the standard library:\n" + "\n".join(stray)


@pytest.mark.parametrize("integration", sorted(INTEGRATIONS))
def test_integration_imports_only_the_core_and_its_framework(integration: str) -> None:
    """optimist.<integration> imports the core, itself and its own framework's packages."""
    stray = [
        line
        for name, path in library_modules()
        if component(name) == integration
        for line in stray_imports(
            name,
            path,
            packages=INTEGRATIONS[integration],
            parts=BUILDS_ON.get(integration, frozenset()),
        )
    ]
    assert not stray, f"optimist.{integration} imports beyond its layer:\n" + "\n".join(stray)


def test_core_contract_names_every_core_module() -> None:
    """The import-linter contract for the core lists exactly the core modules."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (core,) = (contract for contract in config["contracts"] if contract["id"] == "core")
    listed = set(core["source_modules"])
    modules = {name for name, _ in library_modules() if is_core(name)}
    assert listed == modules, (
        f"add {sorted(modules - listed)} to, and remove {sorted(listed - modules)} from, "
        "the source_modules of the core contract in pyproject.toml"
    )


def test_import_linter_keeps_every_contract() -> None:
    """lint-imports finds every contract in pyproject.toml kept."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is not installed (the dev extra has it)"
    result = subprocess.run(
        [lint_imports, str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(SOURCE.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(result.stdout + result.stderr, pytrace=False)

"""The load generator: wrk, driven by bench/lua/bench.lua, against 127.0.0.1 only.

wrk (Debian's package) is an event-loop load generator in C; one thread with 32
connections keeps far ahead of a Python server on this machine, and one thread means
one Lua state, so the per-row ETags of the If-Match scenario are shared by every
connection. The script prints a ``BENCH_RESULT`` line of JSON, read here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "INSTALL_HINT",
    "Load",
    "LoadUnavailable",
    "write_etags",
    "wrk",
    "wrk_seconds",
    "wrk_version",
]

SCRIPT: Final = Path(__file__).resolve().parent / "lua" / "bench.lua"
INSTALL_HINT: Final = (
    "wrk is not installed. On Debian or Ubuntu: apt-get update && apt-get install -y wrk "
    "(elsewhere: https://github.com/wg/wrk, make, and put wrk on PATH)."
)


class LoadUnavailable(RuntimeError):
    """wrk is missing, or refused to run."""


@dataclass(frozen=True, slots=True)
class Load:
    """What one wrk run measured (``replayed``: answers marked Idempotent-Replayed)."""

    requests: int
    seconds: float
    errors: int
    precondition_failed: int
    latency_p50_ms: float
    latency_p99_ms: float
    replayed: int = 0

    @property
    def successes(self) -> int:
        """Requests answered 2xx or 3xx."""
        return self.requests - self.errors

    @property
    def per_second(self) -> float:
        """2xx/3xx responses per second."""
        return self.successes / self.seconds if self.seconds else 0.0


def _binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise LoadUnavailable(INSTALL_HINT)
    return found


def wrk_version() -> str:
    """wrk's version line."""
    done = subprocess.run([_binary(), "--version"], capture_output=True, text=True, check=False)
    line = (done.stdout or done.stderr).splitlines()[0]
    return line.split(" Copyright")[0].removeprefix("wrk ").strip()


def write_etags(path: Path, etags: Mapping[int, str]) -> Path:
    """A Lua file returning ``{[id] = etag}``, for the If-Match scenario."""
    lines = [f"  [{key}] = {_lua_string(tag)}," for key, tag in sorted(etags.items())]
    path.write_text("return {\n" + "\n".join(lines) + "\n}\n")
    return path


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_seconds(seconds: float) -> int:
    """How long wrk loads when asked for ``seconds``: whole seconds, at least one."""
    return max(1, round(seconds))


def wrk(
    base_url: str,
    arguments: Sequence[str],
    *,
    seconds: float,
    connections: int,
    timeout: float = 10.0,
) -> Load:
    """Run wrk with one thread and ``connections`` connections for ``seconds``."""
    host = urlsplit(base_url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"load goes to 127.0.0.1 only, not {host}")
    command = [
        _binary(), "-t1", f"-c{connections}", f"-d{wrk_seconds(seconds)}s",
        f"--timeout={timeout:g}s", "-s", str(SCRIPT), base_url, "--", *arguments,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            figures = json.loads(line.removeprefix("BENCH_RESULT "))
            break
    else:
        raise LoadUnavailable(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    socket_errors = sum(
        figures[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        errors=figures["status_errors"] + socket_errors,
        precondition_failed=figures["precondition_failed"],
        replayed=figures["replayed"],
        latency_p50_ms=figures["latency_p50_us"] / 1000,
        latency_p99_ms=figures["latency_p99_us"] / 1000,
    )

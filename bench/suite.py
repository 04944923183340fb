"""The HTTP suite: every subject, every scenario, on SQLite and PostgreSQL, 1 and 2 workers.

For each backend the harness makes a database (a SQLite file; a scratch PostgreSQL
database on 127.0.0.1:5432, dropped at the end) and fills it with ``rows`` items;
for each worker count it starts each subject in turn, warms it up, measures every
scenario with wrk, runs the contention and the lost-update races, and stops it.
Kinto runs on PostgreSQL only (it has no SQLite backend), on a database of its own.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from bench import kinto
from bench.database import (
    CONTENTION_ROW,
    RACE_ROW,
    fill,
    maintain,
    scratch_postgres,
    sqlite_url,
)
from bench.load import LoadUnavailable, wrk_version
from bench.races import contention, lost_updates
from bench.scenarios import (
    ITEM_SCENARIOS,
    PAGE_SCENARIOS,
    Measure,
    ScenarioFailed,
    measure,
    warm_up,
)
from bench.servers import Running, ServerFailed, fast_stack, serving
from bench.subjects import SECRET, SUBJECTS, Subject

__all__ = ["BACKENDS", "Settings", "run"]

BACKENDS: Final = ("sqlite", "postgresql")
_DATABASE: Final = "optimist_bench"
_KINTO_DATABASE: Final = "optimist_bench_kinto"


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run and for how long (seconds are per measurement)."""

    seconds: float = 5.0
    warmup: float = 1.0
    connections: int = 32
    rows: int = 200_000
    depth: int = 100_000
    backends: Sequence[str] = BACKENDS
    workers: Sequence[int] = (1, 2)
    subjects: Sequence[str] = tuple(subject.name for subject in SUBJECTS)
    scenarios: Sequence[str] = (*ITEM_SCENARIOS, *PAGE_SCENARIOS)
    contention_clients: int = 32
    contention_seconds: float = 5.0
    race_clients: int = 16
    race_increments: int = 25
    #: Wait before each server until other processes use at most this share of the
    #: CPUs (None: never wait), for at most quiet_wait seconds.
    quiet: float | None = None
    quiet_wait: float = 300.0
    workdir: Path = field(default=Path(__file__).resolve().parent / ".work")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:  # Linux only; elsewhere the check is skipped
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def others_busy(seconds: float = 1.0) -> float | None:
    """The share of all CPUs busy over ``seconds`` while the harness runs nothing.

    Other people's work on a shared machine shows here; None where /proc/stat is absent.
    """
    try:
        total_before, idle_before = _cpu_times()
        time.sleep(seconds)
        total_after, idle_after = _cpu_times()
    except OSError:
        return None
    total = total_after - total_before
    return round(1 - (idle_after - idle_before) / total, 3) if total else None


def _wait_for_quiet(settings: Settings) -> float | None:
    """Sample the machine; with ``settings.quiet`` set, wait (bounded) until it is that quiet."""
    busy = others_busy()
    deadline = time.monotonic() + settings.quiet_wait
    while (
        settings.quiet is not None
        and busy is not None
        and busy > settings.quiet
        and time.monotonic() < deadline
    ):
        _log(f"  other processes keep {busy:.0%} of the CPUs busy; waiting for quiet")
        time.sleep(4.0)
        busy = others_busy()
    return busy


def _log(message: str) -> None:
    print(message, flush=True)


@dataclass
class _Recorder:
    """Collects the figures of one run."""

    settings: Settings
    measurements: list[dict[str, Any]] = field(default_factory=list)
    contention: list[dict[str, Any]] = field(default_factory=list)
    races: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    busy: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, subject: str, reason: str, **where: Any) -> None:
        _log(f"  skipping {subject}: {reason}")
        self.skipped.append({"subject": subject, "reason": reason, **where})


async def _run_subject(
    record: _Recorder,
    running: Running,
    backend: str,
    workers: int,
    measure_settings: Measure,
    *,
    busy: float | None,
) -> None:
    settings = record.settings
    subject = running.subject
    where = {"backend": backend, "workers": workers, "subject": subject.name}
    record.busy.append({**where, "others_busy": busy, "load_average": load_average()[0]})
    warm_up(running, settings.warmup, settings.connections)
    for scenario in settings.scenarios:
        if scenario in PAGE_SCENARIOS and subject.deep_page is None:
            continue
        try:
            load = await measure(running, scenario, measure_settings)
        except ScenarioFailed as failure:
            record.skip(subject.name, f"{scenario}: {failure}", **where, scenario=scenario)
            continue
        figures = {**where, "scenario": scenario, **asdict(load), "per_second": load.per_second}
        record.measurements.append(figures)
        refused = f", {load.precondition_failed} × 412" if load.precondition_failed else ""
        _log(
            f"  {subject.name:9} {scenario:15} {load.per_second:9.0f}/s  "
            f"p50 {load.latency_p50_ms:6.1f} ms  p99 {load.latency_p99_ms:6.1f} ms  "
            f"errors {load.errors}{refused}"
        )
    if subject.request_envelope is None and settings.contention_seconds > 0:
        fought = await contention(
            running,
            CONTENTION_ROW,
            clients=settings.contention_clients,
            seconds=settings.contention_seconds,
        )
        record.contention.append({**where, **fought.as_dict()})
        _log(
            f"  {subject.name:9} contention      {fought.per_second:9.0f}/s  "
            f"{fought.retries_per_success:.2f} retries/success  Jain {fought.jain:.3f}  "
            f"min {min(fought.successes)} max {max(fought.successes)}  lost {fought.lost}"
        )
    if settings.race_clients > 0:
        race = await lost_updates(
            running, RACE_ROW, clients=settings.race_clients, increments=settings.race_increments
        )
        record.races.append({**where, **race.as_dict()})
        _log(
            f"  {subject.name:9} race            acknowledged {race.acknowledged}, "
            f"final +{race.final_delta}, lost {race.lost}, retries {race.retries}, "
            f"unexpected {race.unexpected or 'none'}"
        )


async def _backend(record: _Recorder, backend: str, stack: AsyncExitStack) -> None:
    settings = record.settings
    workdir = settings.workdir
    if backend == "sqlite":
        url = sqlite_url(workdir)
    else:
        url = await stack.enter_async_context(scratch_postgres(_DATABASE))
    _log(f"{backend}: filling {settings.rows} items")
    started = time.monotonic()
    await fill(url, settings.rows)
    _log(f"{backend}: filled in {time.monotonic() - started:.1f} s")
    subjects: list[Subject] = [s for s in SUBJECTS if s.name in settings.subjects]
    kinto_subject = await _kinto(record, backend, stack, subjects)
    measure_settings = Measure(
        settings.seconds, settings.connections, settings.depth, settings.rows, workdir
    )
    env = {"BENCH_DATABASE_URL": url, "BENCH_SECRET": SECRET}
    for workers in settings.workers:
        for listed in subjects:
            subject = kinto_subject if listed.name == "kinto" else listed
            if subject is None:
                continue
            _log(f"{backend}, {workers} worker{'s' if workers > 1 else ''}: {subject.label}")
            await maintain(url)
            busy = _wait_for_quiet(settings)
            if busy is not None:
                _log(f"  other processes: {busy:.0%} of the CPUs busy before the start")
            log = workdir / f"{backend}-{workers}-{subject.name}.log"
            try:
                with serving(subject, env, workers, log) as running:
                    if subject.name == "kinto":
                        await kinto.fill(running)
                    await _run_subject(
                        record, running, backend, workers, measure_settings, busy=busy
                    )
            except (ServerFailed, kinto.KintoUnavailable) as failure:
                record.skip(subject.name, str(failure), backend=backend, workers=workers)


async def _kinto(
    record: _Recorder, backend: str, stack: AsyncExitStack, subjects: list[Subject]
) -> Subject | None:
    if not any(subject.name == "kinto" for subject in subjects):
        return None
    if backend != "postgresql":
        record.skip("kinto", "Kinto has no SQLite storage backend", backend=backend)
        return None
    try:
        url = await stack.enter_async_context(scratch_postgres(_KINTO_DATABASE))
        return kinto.prepare(record.settings.workdir, url)
    except kinto.KintoUnavailable as failure:
        record.skip("kinto", str(failure), backend=backend)
        return None


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("uvicorn", "fastapi", "starlette", "sqlalchemy", "asyncpg", "aiosqlite"):
        versions[package] = metadata.version(package)
    versions["wrk"] = wrk_version()
    versions["server stack"] = (
        "uvloop + httptools" if fast_stack(sys.executable) else "asyncio + h11"
    )
    return versions


async def run(settings: Settings) -> dict[str, Any]:
    """Run the suite; returns the raw figures (what bench/results/http.json holds)."""
    try:
        versions = _versions()
    except LoadUnavailable as missing:
        raise SystemExit(str(missing)) from None
    settings.workdir.mkdir(parents=True, exist_ok=True)
    record = _Recorder(settings)
    started_at = datetime.now(UTC)
    load_before = load_average()
    _log(f"load average before: {load_before}")
    for backend in settings.backends:
        async with AsyncExitStack() as stack:
            await _backend(record, backend, stack)
    if any(s["subject"] == "kinto" for s in record.measurements):
        versions["kinto"] = kinto.version()
    return {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": load_average(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": versions,
        "settings": {
            key: (list(value) if isinstance(value, tuple | list) else value)
            for key, value in asdict(settings).items()
            if key != "workdir"
        },
        "measurements": record.measurements,
        "contention": record.contention,
        "races": record.races,
        "skipped": record.skipped,
        "quiet": record.busy,
    }

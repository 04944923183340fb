"""The HTTP suite: every subject, every scenario, on SQLite and PostgreSQL, 1 and 2 workers.

For each backend the harness makes a database (a SQLite file; a scratch PostgreSQL
database on 127.0.0.1:5432, dropped at the end) and fills it with ``rows`` items.
For each worker count it starts every subject at once, each on its own port, and
warms each up; then it measures in ``rounds`` rounds: in each round, scenario by
scenario, each subject in turn while the others sit idle, the order of the subjects
rotated by one from round to round. A drift of the shared machine's state over the
minutes of a configuration thus falls on every subject alike, and each cell has one
measurement per round. The contention and lost-update races follow, once per subject;
then the servers stop. Kinto runs on PostgreSQL only (it has no SQLite backend), on a
database of its own.

An idle server keeps the PostgreSQL connections its pools opened, and the shared
server's ``max_connections`` counts everyone's together. Where the subjects' pools
would not fit in that less :data:`HEADROOM`, they run in groups that do (see
:func:`groups`): each group is started, warmed up, measured and stopped in its turn of
every round, the order of the groups rotated as well, and races in its turn of the
last round.

With a baseline (``--baseline REV``, :mod:`bench.baseline`), each optimist server
selected has a twin that serves that commit's code, measured in the same rounds and, in
groups, kept in its server's group where the budget allows.
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

from bench import kinto
from bench.baseline import Baseline, BaselineFailed, imports
from bench.database import (
    CONTENTION_ROW,
    RACE_ROW,
    connection_limit,
    fill,
    maintain,
    scratch_postgres,
    sqlite_url,
)
from bench.load import LoadUnavailable, wrk_seconds, wrk_version
from bench.races import contention, lost_updates
from bench.scenarios import (
    IF_MATCH_SCENARIOS,
    ITEM_SCENARIOS,
    KEYED,
    PAGE_SCENARIOS,
    SCENARIOS,
    Measure,
    ScenarioFailed,
    measure,
    warm_up,
)
from bench.servers import Running, ServerFailed, fast_stack, serving
from bench.subjects import COMPARED, RAW_ON, SECRET, SUBJECTS, UNDER_TEST, Subject, current, twin

__all__ = [
    "BACKENDS",
    "HEADROOM",
    "Settings",
    "expected_seconds",
    "groups",
    "partial",
    "rotation",
    "run",
    "selected",
    "serves",
]

BACKENDS: Final = ("sqlite", "postgresql")
_DATABASE: Final = "optimist_bench"
_KINTO_DATABASE: Final = "optimist_bench_kinto"
#: PostgreSQL connections left to the server's other users and to the harness itself
#: (other people's test runs were seen holding up to 32 at once).
HEADROOM: Final = 40
#: The width of a server's name in the log's columns (a baseline twin's adds "@rev").
_NAME: Final = max(len(subject.name) for subject in SUBJECTS)
#: The width of a scenario's name in the log's columns.
_SCENARIO: Final = max(len(name) for name in SCENARIOS)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run and for how long (seconds per measurement, one measurement a round)."""

    seconds: float = 5.0
    rounds: int = 3
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
    #: Wait before each round until other processes use at most this share of the
    #: CPUs (None: never wait), for at most quiet_wait seconds.
    quiet: float | None = None
    quiet_wait: float = 300.0
    #: The commit whose optimist servers run beside the selected ones (None: none).
    baseline: Baseline | None = None
    workdir: Path = field(default=Path(__file__).resolve().parent / ".work")


def partial(settings: Settings) -> bool:
    """Whether ``settings`` leave out a subject, scenario, backend or worker count of the
    full run: the figures of such a run are kept beside the full run's, not over them."""
    full = Settings()
    return any(
        not set(getattr(full, name)) <= set(getattr(settings, name))
        for name in ("subjects", "scenarios", "backends", "workers")
    )


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


def _width(settings: Settings) -> int:
    """The width of a server's name in the log's columns."""
    return _NAME + (len(settings.baseline.rev) + 1 if settings.baseline else 0)


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
    groups: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, subject: str, reason: str, **where: Any) -> None:
        _log(f"  skipping {subject}: {reason}")
        self.skipped.append({"subject": subject, "reason": reason, **where})


def rotation(items: Sequence[_T], turn: int) -> list[_T]:
    """``items`` rotated left by ``turn`` places: round ``turn`` starts with another item."""
    if not items:
        return []
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


def serves(subject: Subject, scenario: str) -> bool:
    """Whether ``subject`` has what ``scenario`` loads (Kinto has no list here; only the
    optimist servers take an Idempotency-Key)."""
    if subject.scenarios is not None and scenario not in subject.scenarios:
        return False
    if scenario in PAGE_SCENARIOS:
        return subject.deep_page is not None
    return scenario != KEYED or subject.idempotency_keys


def selected(settings: Settings) -> list[Subject]:
    """The subjects ``settings`` selects, in the order of the report, each optimist server
    followed by its twin of the baseline commit, if there is one."""
    chosen: list[Subject] = []
    for subject in SUBJECTS:
        if subject.name not in settings.subjects:
            continue
        chosen.append(subject)
        if settings.baseline is not None and subject.name in UNDER_TEST:
            chosen.append(twin(subject, settings.baseline.rev, settings.baseline.tree))
    return chosen


def _present(settings: Settings, backend: str) -> list[Subject]:
    """The selected subjects that run on ``backend``."""
    return [
        subject for subject in selected(settings) if subject.name != "kinto" or backend != "sqlite"
    ]


#: What a run costs beyond the load itself, in seconds, as timed on the 2-core machine
#: (two runs, 15 minutes and 100 seconds long): per measurement (wrk's start, the check
#: requests), each If-Match scenario's reading of 1 000 ETags, per server (start and
#: stop), the contention clients' last backoff, per increment of the lost-update race,
#: per round (maintenance, the one-second sample of the machine) and per backend (the
#: fill, and Kinto's migration and records).
_PER_MEASUREMENT: Final = 0.3
_PER_ETAG_READ: Final = 1.5
_PER_SERVER: Final = 5.0
_CONTENTION_TAIL: Final = 3.5
_PER_INCREMENT: Final = 0.04
_PER_ROUND: Final = 2.0
_PER_BACKEND: Final = 10.0


def _splits(
    subjects: Sequence[Subject], workers: int, budget: int
) -> Iterator[list[list[Subject]]]:
    """Every split of ``subjects`` into groups whose connections fit ``budget``.

    A subject that needs more than the budget by itself is a group of its own. The
    subjects are placed in order, each tried in the earlier groups before a new one.
    """
    packed: list[list[Subject]] = []
    used: list[int] = []

    def place(index: int) -> Iterator[list[list[Subject]]]:
        if index == len(subjects):
            yield [list(group) for group in packed]
            return
        subject = subjects[index]
        need = subject.connections * workers
        for group, load in enumerate(used):
            if load + need <= budget:
                packed[group].append(subject)
                used[group] += need
                yield from place(index + 1)
                packed[group].pop()
                used[group] -= need
        packed.append([subject])
        used.append(need)
        yield from place(index + 1)
        packed.pop()
        used.pop()

    yield from place(0)


def _baselines(first: Subject, second: Subject) -> bool:
    """Whether one of the two is the other's baseline: its twin, the raw driver on its
    framework (:data:`~bench.subjects.RAW_ON`), or the server it is compared with
    (:data:`~bench.subjects.COMPARED`)."""
    one, other = current(first.name), current(second.name)
    paired = {**RAW_ON, **COMPARED}
    return one == other or paired.get(one) == other or paired.get(other) == one


def _together(group: Sequence[Subject]) -> tuple[int, int]:
    """The pairs of servers in ``group`` the report compares: a server and its baseline
    (twin or raw driver on its framework), then one of the two under test and another
    server."""
    pairs = list(itertools.combinations(group, 2))
    twins = sum(_baselines(first, second) for first, second in pairs)
    under_test = sum(
        first.name in UNDER_TEST or second.name in UNDER_TEST for first, second in pairs
    )
    return twins, under_test


def groups(subjects: Sequence[Subject], workers: int, budget: int | None) -> list[list[Subject]]:
    """``subjects`` in groups whose servers' connections fit ``budget`` together.

    None: no limit, one group. Otherwise the fewest groups (a subject that needs more
    than the budget by itself runs alone); of those, the split that keeps the most
    servers with their baselines (twins, the raw driver on their framework), then the
    most pairs of a subject under test (:data:`~bench.subjects.UNDER_TEST`) and another
    server in one group, so that the
    fewest of the report's ratios divide measurements taken apart; of those, the first
    in the given order, each subject in the earliest group it fits. Every split is
    tried: there are a handful of servers.
    """
    if budget is None:
        return [list(subjects)]

    def kept_apart(packed: list[list[Subject]]) -> tuple[int, int, int]:
        together = [_together(group) for group in packed]
        return len(packed), -sum(t for t, _ in together), -sum(u for _, u in together)

    return min(_splits(subjects, workers, budget), key=kept_apart)


def expected_seconds(settings: Settings, budget: int | None = None) -> float:
    """About how long :func:`run` takes, waits for quiet aside.

    ``budget``: the PostgreSQL connections the servers may hold together (None: no limit).
    """
    race = _PER_INCREMENT * settings.race_clients * settings.race_increments
    total = 0.0
    for backend in settings.backends:
        subjects = _present(settings, backend)
        total += _PER_BACKEND * (1 + any(s.name == "kinto" for s in subjects))
        limit = budget if backend == "postgresql" else None
        for workers in settings.workers:
            # Servers in groups start and warm up again in every round.
            starts = settings.rounds if len(groups(subjects, workers, limit)) > 1 else 1
            total += _PER_ROUND * settings.rounds
            for subject in subjects:
                scenarios = [s for s in settings.scenarios if serves(subject, s)]
                measuring = len(scenarios) * (wrk_seconds(settings.seconds) + _PER_MEASUREMENT)
                measuring += _PER_ETAG_READ * sum(s in IF_MATCH_SCENARIOS for s in scenarios)
                total += settings.rounds * measuring + race
                total += starts * (_PER_SERVER + 2 * wrk_seconds(settings.warmup))
                if subject.request_envelope is None and settings.contention_seconds > 0:
                    total += settings.contention_seconds + _CONTENTION_TAIL
    return total


async def _start(
    record: _Recorder,
    servers: ExitStack,
    subjects: Sequence[Subject],
    env: dict[str, str],
    **where: Any,
) -> list[Running]:
    """Start every subject (each on its own port) and warm each up; the ones that started."""
    settings = record.settings
    started: list[Running] = []
    for subject in subjects:
        log = settings.workdir / f"{where['backend']}-{where['workers']}-{subject.name}.log"
        try:
            running = servers.enter_context(serving(subject, env, where["workers"], log))
            if subject.name == "kinto":
                await kinto.fill(running)
        except (ServerFailed, kinto.KintoUnavailable) as failure:
            record.skip(subject.name, str(failure), **where)
            continue
        started.append(running)
    for running in started:
        warm_up(running, settings.warmup, settings.connections)
    return started


async def _round(
    record: _Recorder,
    servers: list[Running],
    turn: int,
    measure_settings: Measure,
    refused: set[tuple[str, str]],
    **where: Any,
) -> None:
    """One measurement of every cell, scenario by scenario, the servers in ``turn``'s order.

    A server that dies leaves ``servers``; a scenario a subject answers wrongly is
    added to ``refused`` and not measured again.
    """
    order = rotation(servers, turn)
    _log(f"  round {turn + 1}: {', '.join(running.subject.name for running in order)}")
    for scenario in record.settings.scenarios:
        for running in order:
            subject = running.subject
            if (
                running not in servers
                or (subject.name, scenario) in refused
                or not serves(subject, scenario)
            ):
                continue
            here = {**where, "subject": subject.name}
            try:
                load = await measure(running, scenario, measure_settings)
            except ScenarioFailed as failure:
                refused.add((subject.name, scenario))
                record.skip(subject.name, f"{scenario}: {failure}", **here, scenario=scenario)
                continue
            except ServerFailed as failure:
                servers.remove(running)
                record.skip(subject.name, str(failure), **where)
                continue
            record.measurements.append(
                {
                    **here,
                    "round": turn + 1,
                    "scenario": scenario,
                    **asdict(load),
                    "per_second": load.per_second,
                }
            )
            refusals = f", {load.precondition_failed} × 412" if load.precondition_failed else ""
            name = f"{subject.name:{_width(record.settings)}}"
            _log(
                f"  {name} {scenario:{_SCENARIO}} {load.per_second:9.0f}/s  "
                f"p50 {load.latency_p50_ms:6.1f} ms  p99 {load.latency_p99_ms:6.1f} ms  "
                f"errors {load.errors}{refusals}"
            )


async def _races(record: _Recorder, running: Running, **where: Any) -> None:
    """The contention run (conflict-aware clients) and the lost-update race on one server."""
    settings = record.settings
    subject = running.subject
    where = {**where, "subject": subject.name}
    name = f"{subject.name:{_width(settings)}}"
    if subject.request_envelope is None and settings.contention_seconds > 0:
        fought = await contention(
            running,
            CONTENTION_ROW,
            clients=settings.contention_clients,
            seconds=settings.contention_seconds,
        )
        record.contention.append({**where, **fought.as_dict()})
        _log(
            f"  {name} {'contention':{_SCENARIO}} {fought.per_second:9.0f}/s  "
            f"{fought.retries_per_success:.2f} retries/success  Jain {fought.jain:.3f}  "
            f"min {min(fought.successes)} max {max(fought.successes)}  lost {fought.lost}"
        )
    if settings.race_clients > 0:
        race = await lost_updates(
            running, RACE_ROW, clients=settings.race_clients, increments=settings.race_increments
        )
        record.races.append({**where, **race.as_dict()})
        _log(
            f"  {name} {'race':{_SCENARIO}} acknowledged {race.acknowledged}, "
            f"final +{race.final_delta}, lost {race.lost}, retries {race.retries}, "
            f"unexpected {race.unexpected or 'none'}"
        )


async def _configuration(
    record: _Recorder,
    subjects: Sequence[Subject],
    env: dict[str, str],
    url: str,
    budget: int | None,
    **where: Any,
) -> None:
    """One backend and worker count: every round, then the races; in groups if need be."""
    settings = record.settings
    workers = where["workers"]
    packed = groups(subjects, workers, budget)
    record.groups.append({**where, "groups": [[s.name for s in group] for group in packed]})
    _log(
        f"{where['backend']}, {workers} worker{'s' if workers > 1 else ''}: "
        + "; then ".join(", ".join(s.label for s in group) for group in packed)
    )
    measure_settings = Measure(
        settings.seconds, settings.connections, settings.depth, settings.rows, settings.workdir
    )
    refused: set[tuple[str, str]] = set()
    standing: dict[int, list[Running]] = {}
    with ExitStack() as kept:
        for turn in range(settings.rounds):
            await maintain(url)
            busy = _wait_for_quiet(settings)
            if busy is not None:
                _log(f"  other processes: {busy:.0%} of the CPUs busy before round {turn + 1}")
            record.busy.append(
                {**where, "round": turn + 1, "others_busy": busy, "load_average": load_average()[0]}
            )
            for index in rotation(range(len(packed)), turn):
                # One group stands through every round; groups come and go in their turns.
                with ExitStack() as passing:
                    if index in standing:
                        servers = standing[index]
                    else:
                        stack = kept if len(packed) == 1 else passing
                        servers = await _start(record, stack, packed[index], env, **where)
                        if len(packed) == 1:
                            standing[index] = servers
                    await _round(record, servers, turn, measure_settings, refused, **where)
                    if turn == settings.rounds - 1:
                        await _races_of(record, servers, **where)


async def _races_of(record: _Recorder, servers: Sequence[Running], **where: Any) -> None:
    """The races on every server still running."""
    for server in servers:
        try:
            server.check()
            await _races(record, server, **where)
        except ServerFailed as failure:
            record.skip(server.subject.name, str(failure), **where)


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
    subjects = selected(settings)
    kinto_subject = await _kinto(record, backend, stack, subjects)
    present = [subject for subject in subjects if subject.name != "kinto"]
    if kinto_subject is not None:
        present.append(kinto_subject)
    env = {"BENCH_DATABASE_URL": url, "BENCH_SECRET": SECRET}
    budget = await _budget() if backend == "postgresql" else None
    for workers in settings.workers:
        await _configuration(record, present, env, url, budget, backend=backend, workers=workers)


async def _budget() -> int:
    """The PostgreSQL connections the servers may hold together."""
    return await connection_limit() - HEADROOM


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


def _check_baseline(settings: Settings) -> dict[str, Any] | None:
    """The baseline commit and the files its twins import (None: no baseline).

    Stops the run if a twin would import anything but the commit's own app and package.
    """
    if settings.baseline is None:
        return None
    found = {}
    for subject in selected(settings):
        if current(subject.name) != subject.name:
            try:
                found[subject.name] = imports(subject)
            except BaselineFailed as failure:
                raise SystemExit(str(failure)) from None
            _log(f"{subject.name} imports {found[subject.name]}")
    return {"rev": settings.baseline.rev, "commit": settings.baseline.commit, "imports": found}


async def run(settings: Settings) -> dict[str, Any]:
    """Run the suite; returns the raw figures (what bench/results/http.json holds)."""
    try:
        versions = _versions()
    except LoadUnavailable as missing:
        raise SystemExit(str(missing)) from None
    settings.workdir.mkdir(parents=True, exist_ok=True)
    baseline = _check_baseline(settings)
    record = _Recorder(settings)
    started_at = datetime.now(UTC)
    load_before = load_average()
    _log(f"load average before: {load_before}")
    budget = await _budget() if "postgresql" in settings.backends else None
    _log(
        f"expected duration: about {expected_seconds(settings, budget) / 60:.0f} min "
        f"({settings.rounds} round{'s' * (settings.rounds > 1)} of {settings.seconds:g} s "
        "per measurement), plus any wait for quiet"
    )
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
            if key not in {"workdir", "baseline"}
        },
        **({"baseline": baseline} if baseline else {}),
        "measurements": record.measurements,
        "contention": record.contention,
        "races": record.races,
        "skipped": record.skipped,
        "quiet": record.busy,
        "groups": record.groups,
    }

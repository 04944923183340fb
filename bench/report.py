"""docs/benchmarks.md and its chart, from bench/results/http.json.

Every figure that matters is a ratio of two throughputs measured in the same run, on
the same machine, by the same load generator; the targets are checked against those
ratios, per backend and worker count. A cell measured in several rounds counts as the
median of its measurements; a target's ratio divides two medians, and each round's own
ratio (of that round's two measurements) says whether the verdict holds round by round.
Result files from before rounds hold one measurement per cell, counted as round 1.
A run with a baseline commit (``--baseline``) adds a section that divides each optimist
server's medians by its twin's, the servers of that commit measured in the same rounds.
A target is judged where the run selected both its scenarios and the server it divides
by; a run of part of the grid (:func:`render_part`) is a section of its own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bench.scenarios import ITEM_SCENARIOS, KEYED, PAGE_SCENARIOS, SCENARIOS
from bench.subjects import RAW, RAW_FASTAPI, RAW_ON, SUBJECTS, UNDER_TEST, current

__all__ = [
    "Target",
    "configurations",
    "measurements",
    "rate",
    "render_http",
    "render_part",
    "targets",
]

_LABELS: Final = {subject.name: subject.label for subject in SUBJECTS}
_BACKEND_LABELS: Final = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

Figures = Mapping[str, Any]


def measurements(
    data: Figures, backend: str, workers: int, subject: str, scenario: str
) -> dict[int, float]:
    """One cell's throughputs by round (empty: not measured)."""
    return {
        figure.get("round", 1): figure["per_second"]
        for figure in data["measurements"]
        if (figure["backend"], figure["workers"], figure["subject"], figure["scenario"])
        == (backend, workers, subject, scenario)
    }


def rate(data: Figures, backend: str, workers: int, subject: str, scenario: str) -> float | None:
    """One cell's figure: the median of its measurements (None: not measured)."""
    found = measurements(data, backend, workers, subject, scenario)
    return statistics.median(found.values()) if found else None


def configurations(data: Figures) -> list[tuple[str, int]]:
    """The (backend, workers) pairs measured, in the order of the run."""
    seen: list[tuple[str, int]] = []
    for figure in data["measurements"]:
        where = (figure["backend"], figure["workers"])
        if where not in seen:
            seen.append(where)
    return seen


def _label(name: str) -> str:
    """What the report calls a subject; a baseline twin: its server's label @ its commit."""
    server = current(name)
    label = _LABELS.get(server, server)
    return label if server == name else f"{label} @ {name[len(server) + 1 :]}"


def _where(backend: str, workers: int) -> str:
    return f"{_BACKEND_LABELS.get(backend, backend)}, {workers} worker{'s' * (workers > 1)}"


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio a subject under test must reach (or stay under) in a configuration, and
    what it reached.

    ``subject`` names the server judged. ``measured`` divides two medians; ``per_round``
    holds the same ratio of each round's own two measurements. ``reference`` is the
    raw-driver endpoint's own value of the same ratio, where it has one: how far the
    machine and the backend alone move it.
    """

    name: str
    where: str
    subject: str
    wanted: float
    measured: float | None
    at_most: bool = False
    reference: float | None = None
    per_round: tuple[float | None, ...] = ()

    def meets(self, value: float | None) -> bool | None:
        """Whether ``value`` reaches the target (None: not measured)."""
        if value is None or math.isnan(value):
            return None
        return value <= self.wanted if self.at_most else value >= self.wanted

    @property
    def met(self) -> bool | None:
        return self.meets(self.measured)

    @property
    def rounds_agreeing(self) -> tuple[int, int] | None:
        """In how many rounds that round's own ratio gives the medians' verdict, of how many."""
        verdict = self.met
        judged = [self.meets(value) for value in self.per_round]
        counted = [one for one in judged if one is not None]
        if verdict is None or not counted:
            return None
        return sum(one == verdict for one in counted), len(counted)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


Cell = tuple[str, str]  # (subject, scenario)


def _compare(
    data: Figures, backend: str, workers: int, top: Cell, bottom: Cell
) -> tuple[float | None, tuple[float | None, ...]]:
    """``top`` ÷ ``bottom``: the ratio of the medians, and the ratio in each round of both."""
    above = measurements(data, backend, workers, *top)
    below = measurements(data, backend, workers, *bottom)
    medians = _ratio(rate(data, backend, workers, *top), rate(data, backend, workers, *bottom))
    rounds = sorted(above.keys() & below.keys())
    return medians, tuple(_ratio(above[turn], below[turn]) for turn in rounds)


def _target(
    data: Figures,
    backend: str,
    workers: int,
    name: str,
    wanted: float,
    *,
    top: Cell,
    bottom: Cell,
    at_most: bool = False,
    raw_own: bool = False,
) -> Target:
    """The target ``top`` ÷ ``bottom`` against ``wanted``; ``raw_own``: with the raw endpoint's."""
    measured, per_round = _compare(data, backend, workers, top, bottom)
    reference = None
    if raw_own:
        reference = _compare(data, backend, workers, ("raw", top[1]), ("raw", bottom[1]))[0]
    where = _where(backend, workers)
    return Target(name, where, top[0], wanted, measured, at_most, reference, per_round)


def targets(data: Figures) -> list[Target]:
    """Every target of the benchmark, per backend and worker count, for each subject under
    test that the run measured."""
    found: list[Target] = []
    judged = [subject for subject in _subjects_in(data) if subject in UNDER_TEST]
    for backend, workers in configurations(data):
        for subject in judged:
            found += _targets_of(data, backend, workers, subject)
    return found


@dataclass(frozen=True, slots=True)
class _Goal:
    """One target, the same for every subject under test: its ``top`` scenario ÷ the
    ``bottom`` scenario of ``against`` (None: of the subject itself, beside the raw
    driver's own value of that ratio)."""

    name: str
    wanted: float
    top: str
    bottom: str
    against: str | None = None
    at_most: bool = False


_CONDITIONAL: Final = "patch_if_match"
_RAW: Final = "raw"
#: How a target names the framework its raw-driver baseline runs on.
_FRAMEWORKS: Final = {RAW.name: "Starlette", RAW_FASTAPI.name: "FastAPI"}
_GOALS: Final = (
    _Goal("conditional PATCH ≥ 0.90× our unconditional PATCH", 0.90, _CONDITIONAL, "patch"),
    # The raw driver on the subject's own framework (RAW_ON), where the run measured it.
    _Goal("GET ≥ 0.85× the raw driver's", 0.85, "get", "get", _RAW),
    _Goal("conditional PATCH ≥ 0.85× the raw driver's", 0.85, _CONDITIONAL, _CONDITIONAL, _RAW),
    _Goal("page 1 ≥ 0.85× the raw driver's", 0.85, "page_first", "page_first", _RAW),
    _Goal("conditional PATCH ≥ 3× seed 003's pattern", 3.0, _CONDITIONAL, _CONDITIONAL, "seed"),
    _Goal("conditional PATCH ≥ 10× Kinto's", 10.0, _CONDITIONAL, _CONDITIONAL, "kinto"),
    _Goal("keyed conditional PATCH ≥ 0.80× the same without a key", 0.80, KEYED, _CONDITIONAL),
    _Goal("304 ≥ 1.3× a full GET", 1.3, "revalidate", "get"),
    # "Within 1.5×": the deep page takes at most 1.5 times as long as page 1, i.e.
    # page 1's throughput is at most 1.5 times the deep page's.
    _Goal(
        "deep page within 1.5× of page 1 (time per page)",
        1.5,
        "page_first",
        "page_deep",
        at_most=True,
    ),
)


def _selected(data: Figures, goal: _Goal) -> bool:
    """Whether the run selected ``goal``'s scenarios and the server it divides by (result
    files from before the selection was recorded: everything)."""
    settings = data["settings"]
    scenarios = settings.get("scenarios")
    subjects = settings.get("subjects")
    if scenarios is not None and not {goal.top, goal.bottom} <= set(scenarios):
        return False
    if goal.against == _RAW and subjects is not None:
        return bool(set(_FRAMEWORKS) & set(subjects))
    return goal.against is None or subjects is None or goal.against in subjects


def _raw_for(data: Figures, backend: str, workers: int, subject: str, scenario: str) -> str:
    """The raw driver ``subject`` is judged against: on its own framework where the run
    measured that one (result files from before it: the raw driver on Starlette)."""
    own = RAW_ON[current(subject)]
    return own if measurements(data, backend, workers, own, scenario) else RAW.name


def _targets_of(data: Figures, backend: str, workers: int, subject: str) -> list[Target]:
    """The targets of ``subject`` in one configuration."""
    found = []
    for goal in _GOALS:
        if not _selected(data, goal):
            continue
        name, against = goal.name, goal.against
        if against == _RAW:
            against = _raw_for(data, backend, workers, subject, goal.bottom)
            name = f"{name} on {_FRAMEWORKS[against]}"
        bottom = (against or subject, goal.bottom)
        # Kinto runs on PostgreSQL only: no row where it did not run.
        if goal.against == "kinto" and not measurements(data, backend, workers, *bottom):
            continue
        found.append(
            _target(
                data,
                backend,
                workers,
                name,
                goal.wanted,
                top=(subject, goal.top),
                bottom=bottom,
                at_most=goal.at_most,
                raw_own=goal.against is None,
            )
        )
    return found


def _lost_rows(data: Figures) -> list[list[str]]:
    rows = []
    for race in data["races"]:
        if race["subject"] not in UNDER_TEST:
            continue
        lost = race["lost"] if race["finished"] else None
        verdict = "not measured" if lost is None else "met" if lost == 0 else "**not met**"
        rows.append(
            [
                f"0 lost updates ({race['clients']} × {race['increments']} increments)",
                _where(race["backend"], race["workers"]),
                _label(race["subject"]),
                f"{'–' if lost is None else lost} lost of {race['acknowledged']} acknowledged",
                "–",
                verdict,
            ]
        )
    return rows


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}×"


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] = ()
) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join(align or ["---"] * len(header)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _subjects_in(data: Figures) -> list[str]:
    present = {figure["subject"] for figure in data["measurements"]}
    return [subject.name for subject in SUBJECTS if subject.name in present]


def _rounds(data: Figures) -> int:
    """How many rounds the run measured (1 in result files from before rounds)."""
    rounds: int = data["settings"].get("rounds", 1)
    return rounds


def _cell(found: Mapping[int, float]) -> str:
    """A cell's median and, measured more than once, its largest ÷ smallest measurement."""
    if not found:
        return "–"
    values = list(found.values())
    median = _number(statistics.median(values))
    low, high = min(values), max(values)
    if len(values) < 2 or low <= 0:
        return median
    return f"{median} ({high / low:.2f})"


def _throughput(data: Figures) -> list[str]:
    subjects = _subjects_in(data)
    settings = data["settings"]
    rounds = _rounds(data)
    if rounds > 1:
        each = (
            f"Each cell is the median of {rounds} measurements of {settings['seconds']:g} s "
            "(one per round), with, in brackets, the largest of them divided by the smallest"
        )
    else:
        each = f"Each cell is one measurement of {settings['seconds']:g} s"
    lines = [
        "## Throughput",
        "",
        f"Responses per second (2xx and 3xx only), {settings['connections']} connections. "
        f"{each}; the ratio columns divide optimist's median by each other server's. Every "
        "measurement and its p50/p99 latencies are in the JSON.",
        "",
    ]
    baselines = [subject for subject in subjects if subject != "optimist"]
    for backend, workers in configurations(data):
        lines += [f"### {_where(backend, workers)}", ""]
        header = ["scenario", *(_label(s) for s in subjects)]
        header += [f"optimist ÷ {_label(s)}" for s in baselines]
        rows = []
        for scenario in (*ITEM_SCENARIOS, *PAGE_SCENARIOS):
            found = {s: measurements(data, backend, workers, s, scenario) for s in subjects}
            if not any(found.values()):
                continue
            rates = {s: rate(data, backend, workers, s, scenario) for s in subjects}
            row = [SCENARIOS[scenario], *(_cell(found[s]) for s in subjects)]
            row += [_times(_ratio(rates.get("optimist"), rates[s])) for s in baselines]
            rows.append(row)
        lines += [*_table(header, rows, ["---", *["---:"] * (len(header) - 1)]), ""]
    return lines


def _twins(data: Figures) -> list[tuple[str, str]]:
    """The (server, its baseline twin) pairs measured, in the order of the report."""
    present = {figure["subject"] for figure in data["measurements"]}
    return [
        (server, twin)
        for server in _subjects_in(data)
        for twin in sorted(present)
        if twin != server and current(twin) == server
    ]


def _against_baseline(data: Figures) -> list[str]:
    """Each optimist server's medians divided by its twin's, from the baseline commit."""
    compared = data.get("baseline")
    pairs = _twins(data)
    if not compared or not pairs:
        return []
    rev = compared["rev"]
    rows = []
    for backend, workers in configurations(data):
        for server, twin in pairs:
            for scenario in (*ITEM_SCENARIOS, *PAGE_SCENARIOS):
                now = measurements(data, backend, workers, server, scenario)
                then = measurements(data, backend, workers, twin, scenario)
                if not now and not then:
                    continue
                ratio, per_round = _compare(
                    data, backend, workers, (server, scenario), (twin, scenario)
                )
                rows.append(
                    [
                        _where(backend, workers),
                        _label(server),
                        SCENARIOS[scenario],
                        _cell(now),
                        _cell(then),
                        _spread(ratio, per_round),
                    ]
                )
    header = ["configuration", "server", "scenario", "current", rev, f"current ÷ {rev}"]
    return [
        f"## Against commit {rev}",
        "",
        f"Each optimist server also ran as commit `{rev}` (`{compared['commit']}`) wrote it: "
        "that commit's app module and `src/optimist`, served and measured by this harness "
        "in the same rounds as the current code. Responses per second; each cell is the "
        "median of its measurements with, in brackets, the largest divided by the smallest. "
        f"*current ÷ {rev}* divides the medians (above 1: the current code is faster), "
        "with, in brackets, the lowest and the highest of the same ratio round by round.",
        "",
        *_table(header, rows, ["---", "---", "---", "---:", "---:", "---:"]),
        "",
    ]


def _spread(ratio: float | None, per_round: Sequence[float | None]) -> str:
    """A ratio of medians and, from two rounds on, the range of the rounds' own ratios."""
    rounds = [value for value in per_round if value is not None]
    if len(rounds) < 2 or ratio is None:
        return _times(ratio)
    return f"{_times(ratio)} ({min(rounds):.2f}–{max(rounds):.2f}×)"


def _contention(data: Figures) -> list[str]:
    if not data["contention"]:
        return []
    clients = data["contention"][0]["clients"]
    lines = [
        "## Contention: one row, many conflict-aware clients",
        "",
        f"{clients} `optimist.httpx.AsyncClient`s each call `update(url, increment, "
        "on_conflict=OnConflict.REAPPLY)` on the same item in a loop for "
        f"{data['settings']['contention_seconds']:g} s. *Retries per success* counts the "
        "412s the clients absorbed; *Jain* is Jain's fairness index of the per-client "
        "successes (1 = all equal); *lost* is successes the row does not hold.",
        "",
    ]
    rows = [
        [
            _where(entry["backend"], entry["workers"]),
            _label(entry["subject"]),
            _number(entry["per_second"], 1),
            _number(entry["retries_per_success"], 2),
            _number(entry["jain"], 3),
            f"{entry['min']} / {entry['max']}",
            str(entry["gave_up"]),
            str(entry["lost"]),
        ]
        for entry in data["contention"]
    ]
    header = [
        "configuration", "server", "successful writes/s", "retries per success", "Jain",
        "min / max per client", "gave up", "lost",
    ]  # fmt: skip
    return [*lines, *_table(header, rows), ""]


def _races(data: Figures) -> list[str]:
    if not data["races"]:
        return []
    first = data["races"][0]
    lines = [
        "## Lost updates",
        "",
        f"{first['clients']} plain httpx clients × {first['increments']} increments of one "
        "item: GET, then PATCH with the served ETag as If-Match, retried on 412. "
        "*Lost* = acknowledged increments minus what the row gained.",
        "",
    ]
    rows = [
        [
            _where(race["backend"], race["workers"]),
            _label(race["subject"]),
            str(race["acknowledged"]),
            str(race["final_delta"]),
            f"**{race['lost']}**" if race["lost"] else "0",
            str(race["retries"]),
            ", ".join(f"{k}: {v}" for k, v in race["unexpected"].items()) or "none",
            _number(race["seconds"], 1),
        ]
        for race in data["races"]
    ]
    header = [
        "configuration", "server", "acknowledged", "row gained", "lost", "412 retries",
        "other statuses", "seconds",
    ]  # fmt: skip
    return [*lines, *_table(header, rows), ""]


def _targets(data: Figures) -> list[str]:
    def verdict(target: Target) -> str:
        met = target.met
        if met is None:
            return "not measured"
        said = "met" if met else "**not met**"
        agreeing = target.rounds_agreeing
        if agreeing is None or _rounds(data) < 2:
            return said
        held, counted = agreeing
        return f"{said} ({held}/{counted} rounds)"

    def shown(target: Target, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "–"
        # Enough digits that a value just short of the target does not print as it.
        close = abs(value - target.wanted) < 0.005
        return f"{value:.3f}×" if close else f"{value:.2f}×"

    def measured(target: Target) -> str:
        per_round = [value for value in target.per_round if value is not None]
        if len(per_round) < 2 or target.measured is None:
            return shown(target, target.measured)
        low, high = min(per_round), max(per_round)
        return f"{shown(target, target.measured)} ({low:.2f}–{high:.2f}×)"

    rows = [
        [
            target.name,
            target.where,
            _label(target.subject),
            measured(target),
            shown(target, target.reference),
            verdict(target),
        ]
        for target in targets(data)
    ]
    rows += _lost_rows(data)
    header = ["target", "configuration", "server", "measured", "raw driver's own", "verdict"]
    if _rounds(data) > 1:
        how = (
            "Each ratio divides two medians from the same run; in brackets beside it, the "
            "lowest and the highest of the same ratio computed round by round (from the "
            "round's own two measurements, taken within the same minute), and beside the "
            "verdict, in how many rounds that ratio gives the same verdict."
        )
    else:
        how = "Each ratio is of two throughputs from the same run."
    return [
        "## Targets",
        "",
        "The same targets judge each optimist server (*server*): the library under FastAPI "
        f"and on plain Starlette. {how} *Raw driver's own* is the same ratio for "
        "the raw endpoint, where it has one: what the backend and the machine alone do to it.",
        "",
        *_table(header, rows),
        "",
    ]


def _skipped(data: Figures) -> list[str]:
    if not data["skipped"]:
        return []
    lines = ["## Skipped", ""]
    for entry in data["skipped"]:
        where = ", ".join(
            str(entry[key]) for key in ("backend", "workers", "scenario") if key in entry
        )
        lines.append(
            f"- {_label(entry['subject'])} ({where}): {entry['reason'].splitlines()[0][:300]}"
        )
    return [*lines, ""]


def _quiet(data: Figures) -> str:
    """How busy other processes kept the machine, sampled before each round (or server)."""
    entries = [entry for entry in data.get("quiet", []) if entry["others_busy"] is not None]
    if not entries:
        return ""

    def sampled(entry: Mapping[str, Any]) -> str:
        where = _where(entry["backend"], entry["workers"])
        if "subject" in entry:
            return f"{where}, {_label(entry['subject'])}"
        return f"{where}, round {entry['round']}"

    samples = [entry["others_busy"] for entry in entries]
    noisy = [sampled(entry) for entry in entries if entry["others_busy"] > 0.25]
    before = "each server started" if "subject" in entries[0] else "each round"
    text = (
        f"; other processes kept {min(samples):.0%} to {max(samples):.0%} of the CPUs busy "
        f"in the second before {before}"
    )
    if noisy:
        text += " (over 25 % before: " + "; ".join(noisy) + ")"
    return text


def _groups(data: Figures) -> str:
    """Where the servers ran in groups, and which (nothing where they all ran at once)."""
    split = [entry for entry in data.get("groups", []) if len(entry["groups"]) > 1]
    if not split:
        return ""
    where = "; ".join(
        f"{_where(entry['backend'], entry['workers'])}: "
        + ", then ".join(" and ".join(_label(name) for name in group) for group in entry["groups"])
        for entry in split
    )
    return (
        " Where the servers' connection pools together would not fit in the shared "
        "PostgreSQL server's connection limit (less what its other users need), they ran "
        f"in groups ({where}): each group was started, warmed up, measured and stopped in "
        "its turn of every round, the order of the groups rotated as well, and raced in "
        "its turn of the last round; ratios between servers of different groups come "
        "from measurements further apart."
    )


def _method(data: Figures) -> str:
    """How the servers were measured, in the words of the run's own settings."""
    settings = data["settings"]
    seconds = f"{settings['seconds']:g} s"
    if "rounds" not in settings:
        return (
            "Each server in turn was started, warmed up, measured once per scenario for "
            f"{seconds}, raced and stopped."
        )
    rounds = settings["rounds"]
    quiet = ""
    if settings.get("quiet") is not None:
        quiet = (
            f" and waits (for at most {settings['quiet_wait']:g} s) until other processes "
            f"use at most {settings['quiet']:.0%} of the CPUs"
        )
    return (
        "For each backend and worker count the harness starts every server at once, each "
        f"on its own port, and warms each up (GETs, then PATCHes, {settings['warmup']:g} s "
        f"each). Then it measures in {rounds} round{'s' * (rounds > 1)}: in each round, "
        f"scenario by scenario, each server in turn for {seconds} while the others sit "
        "idle, the order of the servers rotated by one from round to round, so that a "
        "drift of the shared machine's state falls on every server alike. Before each "
        "round it vacuums and analyses the PostgreSQL table (checkpoints SQLite's "
        f"write-ahead log){quiet}. The contention and lost-update runs follow the rounds, "
        "once per server. The servers of a backend share the table and write the same "
        "rows; the If-Match scenario reads each row's current ETag from the server under "
        f"test just before each of its runs.{_keys(data)}{_groups(data)}"
    )


def _keys(data: Figures) -> str:
    """How the keyed scenario's keys were made, where it ran (nothing elsewhere)."""
    if KEYED not in data["settings"].get("scenarios", ()):
        return ""
    return (
        " The keyed scenario does the same with a new Idempotency-Key on every request "
        '(`"<token>-<n>"`, the token made afresh for each measurement), never one sent '
        "before; it runs on the servers that take a key, and a measurement that met a "
        "replayed answer would be refused."
    )


def render_http(data: Figures, chart: str | None) -> list[str]:
    """The HTTP suite's sections of docs/benchmarks.md."""
    load_before, load_after = data["load_before"], data["load_after"]
    versions = ", ".join(f"{name} {version}" for name, version in data["versions"].items())
    settings = data["settings"]
    quiet = _quiet(data)
    lines = [
        "## HTTP servers side by side",
        "",
        f"Run from {data['started_at']} to {data['finished_at']} (UTC) on {data['machine']}; "
        f"load average (1, 5, 15 min) {load_before} before and {load_after} after{quiet}. "
        f"{versions}.",
        "",
        "Each server runs as uvicorn processes started by the harness on 127.0.0.1 "
        "(an application made by a factory built through `bench/launch/bench_launch.py`, "
        "which then freezes what the process holds out of the garbage collector, as "
        "`optimist serve` does), against the same `items` table "
        f"({settings['rows']:,} rows) in a SQLite file or a scratch PostgreSQL database; "
        "the load is wrk with one thread and a Lua script (`bench/lua/bench.lua`). "
        "Servers: **optimist** (`bench/apps/optimist_app.py`, the library as a user "
        "writes it), **optimist on Starlette** (`bench/apps/optimist_starlette_app.py`: "
        "the same routes on plain Starlette with `optimist.starlette`, without FastAPI's "
        "dependency injection and response models), **raw driver** "
        "(`bench/apps/raw_app.py`: Starlette and asyncpg/aiosqlite, the same "
        "compare-and-set by hand), **seed 003 pattern** (`bench/apps/seed_app.py`: "
        "FastAPI and the SQLAlchemy ORM, fetch, compare in Python, commit) and **Kinto** "
        "(from PyPI, PostgreSQL only). " + _method(data),
        "",
    ]
    if chart:
        lines += [f"![throughput per scenario]({chart})", ""]
    lines += _against_baseline(data)
    lines += _targets(data)
    lines += _throughput(data)
    lines += _contention(data)
    lines += _races(data)
    lines += _skipped(data)
    return lines


def _demoted(lines: Iterable[str]) -> list[str]:
    """``lines`` with every heading one level deeper: sections inside a section."""
    return ["#" + line if line.startswith("#") else line for line in lines]


def render_part(data: Figures, source: str) -> list[str]:
    """The section of a run that measured part of the grid, its figures read from ``source``.

    Its targets and tables are those of :func:`render_http`, from its own measurements
    only: a ratio never divides one of its figures by one of another run's.
    """
    settings = data["settings"]
    load_before, load_after = data["load_before"], data["load_after"]
    versions = ", ".join(f"{name} {version}" for name, version in data["versions"].items())
    scenarios = "; ".join(SCENARIOS.get(name, name) for name in settings["scenarios"])
    servers = ", ".join(f"**{_label(name)}**" for name in _subjects_in(data))
    where = "; ".join(_where(backend, workers) for backend, workers in configurations(data))
    lines = [
        f"## A run of part of the grid (`{source}`)",
        "",
        f"Run from {data['started_at']} to {data['finished_at']} (UTC) on {data['machine']}; "
        f"load average (1, 5, 15 min) {load_before} before and {load_after} after"
        f"{_quiet(data)}. {versions}.",
        "",
        f"Scenarios: {scenarios}. Servers: {servers}. Configurations: {where}. "
        + _method(data)
        + " Every ratio in this section divides two measurements of this run.",
        "",
    ]
    sections = [*_targets(data), *_throughput(data), *_contention(data), *_races(data)]
    return [*lines, *_demoted([*sections, *_skipped(data)])]

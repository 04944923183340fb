"""docs/benchmarks.md and its chart, from bench/results/http.json.

Every figure that matters is a ratio of two throughputs measured in the same run, on
the same machine, by the same load generator; the targets are checked against those
ratios, per backend and worker count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bench.scenarios import ITEM_SCENARIOS, PAGE_SCENARIOS, SCENARIOS
from bench.subjects import SUBJECTS

__all__ = ["Target", "render_http", "targets"]

_LABELS: Final = {subject.name: subject.label for subject in SUBJECTS}
_BACKEND_LABELS: Final = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

Figures = Mapping[str, Any]


def _rate(data: Figures, backend: str, workers: int, subject: str, scenario: str) -> float | None:
    for figure in data["measurements"]:
        if (figure["backend"], figure["workers"], figure["subject"], figure["scenario"]) == (
            backend,
            workers,
            subject,
            scenario,
        ):
            rate: float = figure["per_second"]
            return rate
    return None


def _configurations(data: Figures) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for figure in data["measurements"]:
        where = (figure["backend"], figure["workers"])
        if where not in seen:
            seen.append(where)
    return seen


def _where(backend: str, workers: int) -> str:
    return f"{_BACKEND_LABELS.get(backend, backend)}, {workers} worker{'s' * (workers > 1)}"


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio a configuration must reach (or stay under), and what it reached.

    ``reference`` is the raw-driver endpoint's own value of the same ratio, where it has
    one: how far the machine and the backend alone move it.
    """

    name: str
    where: str
    wanted: float
    measured: float | None
    at_most: bool = False
    reference: float | None = None

    @property
    def met(self) -> bool | None:
        if self.measured is None or math.isnan(self.measured):
            return None
        return self.measured <= self.wanted if self.at_most else self.measured >= self.wanted


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def targets(data: Figures) -> list[Target]:
    """Every target of the benchmark, per backend and worker count."""
    found: list[Target] = []
    for backend, workers in _configurations(data):
        where = _where(backend, workers)

        def rate(subject: str, scenario: str) -> float | None:
            return _rate(data, backend, workers, subject, scenario)  # noqa: B023

        def own(subject: str, numerator: str, denominator: str) -> float | None:
            return _ratio(rate(subject, numerator), rate(subject, denominator))

        conditional = rate("optimist", "patch_if_match")
        found.append(
            Target(
                "conditional PATCH ≥ 0.90× our unconditional PATCH",
                where,
                0.90,
                own("optimist", "patch_if_match", "patch"),
                reference=own("raw", "patch_if_match", "patch"),
            )
        )
        for name, wanted, baseline in (
            ("conditional PATCH ≥ 0.85× the raw driver's", 0.85, "raw"),
            ("conditional PATCH ≥ 3× seed 003's pattern", 3.0, "seed"),
            ("conditional PATCH ≥ 10× Kinto's", 10.0, "kinto"),
        ):
            if rate(baseline, "patch_if_match") is None and baseline == "kinto":
                continue
            measured = _ratio(conditional, rate(baseline, "patch_if_match"))
            found.append(Target(name, where, wanted, measured))
        found.append(
            Target(
                "304 ≥ 1.3× a full GET",
                where,
                1.3,
                own("optimist", "revalidate", "get"),
                reference=own("raw", "revalidate", "get"),
            )
        )
        # "Within 1.5×": the deep page takes at most 1.5 times as long as page 1, i.e.
        # page 1's throughput is at most 1.5 times the deep page's.
        found.append(
            Target(
                "deep page within 1.5× of page 1 (time per page)",
                where,
                1.5,
                own("optimist", "page_first", "page_deep"),
                at_most=True,
                reference=own("raw", "page_first", "page_deep"),
            )
        )
    return found


def _lost_rows(data: Figures) -> list[list[str]]:
    rows = []
    for race in data["races"]:
        if race["subject"] != "optimist":
            continue
        lost = race["lost"] if race["finished"] else None
        verdict = "not measured" if lost is None else "met" if lost == 0 else "**not met**"
        rows.append(
            [
                "0 lost updates (16 × 25 increments)",
                _where(race["backend"], race["workers"]),
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


def _throughput(data: Figures) -> list[str]:
    subjects = _subjects_in(data)
    lines = [
        "## Throughput",
        "",
        "Responses per second (2xx and 3xx only) over "
        f"{data['settings']['seconds']:g} s per cell, {data['settings']['connections']} "
        "connections; the ratio columns divide optimist's figure by the baseline's, "
        "from the same run. p50/p99 latencies are in the JSON.",
        "",
    ]
    baselines = [subject for subject in subjects if subject != "optimist"]
    for backend, workers in _configurations(data):
        lines += [f"### {_where(backend, workers)}", ""]
        header = ["scenario", *(_LABELS[s] for s in subjects)]
        header += [f"optimist ÷ {_LABELS[s]}" for s in baselines]
        rows = []
        for scenario in (*ITEM_SCENARIOS, *PAGE_SCENARIOS):
            rates = {s: _rate(data, backend, workers, s, scenario) for s in subjects}
            if all(rate is None for rate in rates.values()):
                continue
            row = [SCENARIOS[scenario], *(_number(rates[s]) for s in subjects)]
            row += [_times(_ratio(rates.get("optimist"), rates[s])) for s in baselines]
            rows.append(row)
        lines += [*_table(header, rows, ["---", *["---:"] * (len(header) - 1)]), ""]
    return lines


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
            _LABELS[entry["subject"]],
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
            _LABELS[race["subject"]],
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
        return "not measured" if met is None else "met" if met else "**not met**"

    def shown(target: Target, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "–"
        # Enough digits that a value just short of the target does not print as it.
        close = abs(value - target.wanted) < 0.005
        return f"{value:.3f}×" if close else f"{value:.2f}×"

    rows = [
        [
            target.name,
            target.where,
            shown(target, target.measured),
            shown(target, target.reference),
            verdict(target),
        ]
        for target in targets(data)
    ]
    rows += _lost_rows(data)
    header = ["target", "configuration", "optimist", "raw driver's own", "verdict"]
    return [
        "## Targets",
        "",
        "Each ratio is of two throughputs from the same run. *Raw driver's own* is the "
        "same ratio for the raw endpoint, where it has one: what the backend and the "
        "machine alone do to it.",
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
            f"- {_LABELS.get(entry['subject'], entry['subject'])} ({where}): "
            f"{entry['reason'].splitlines()[0][:300]}"
        )
    return [*lines, ""]


def _quiet(data: Figures) -> str:
    """How busy other processes kept the machine, sampled before each server started."""
    samples = [
        entry["others_busy"] for entry in data.get("quiet", []) if entry["others_busy"] is not None
    ]
    if not samples:
        return ""
    noisy = [
        f"{_where(entry['backend'], entry['workers'])}, {_LABELS[entry['subject']]}"
        for entry in data["quiet"]
        if (entry["others_busy"] or 0) > 0.25
    ]
    text = (
        f"; other processes kept {min(samples):.0%} to {max(samples):.0%} of the CPUs busy "
        "in the second before each server started"
    )
    if noisy:
        text += " (over 25 % before: " + "; ".join(noisy) + ")"
    return text


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
        "Each server runs as uvicorn processes started by the harness on 127.0.0.1, "
        "against the same `items` table "
        f"({settings['rows']:,} rows) in a SQLite file or a scratch PostgreSQL database; "
        "the load is wrk with one thread and a Lua script (`bench/lua/bench.lua`). "
        "Servers: **optimist** (`bench/apps/optimist_app.py`, the library as a user "
        "writes it), **raw driver** (`bench/apps/raw_app.py`: Starlette and "
        "asyncpg/aiosqlite, the same compare-and-set by hand), **seed 003 pattern** "
        "(`bench/apps/seed_app.py`: FastAPI and the SQLAlchemy ORM, fetch, compare in "
        "Python, commit) and **Kinto** (from PyPI, PostgreSQL only).",
        "",
    ]
    if chart:
        lines += [f"![throughput per scenario]({chart})", ""]
    lines += _targets(data)
    lines += _throughput(data)
    lines += _contention(data)
    lines += _races(data)
    lines += _skipped(data)
    return lines

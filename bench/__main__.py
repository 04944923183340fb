"""``python -m bench``: run the benchmarks, keep the raw figures, rewrite the report.

Suites: ``micro`` (the core's microbenchmarks) and ``http`` (the servers side by side,
bench/suite.py). Raw figures go to bench/results/<suite>.json; docs/benchmarks.md
and docs/benchmarks.png are rendered from every result file present, so suites can be
rerun one at a time (``python -m bench micro``) and the report alone redrawn
(``python -m bench --render``). Durations and the grid are options; see ``--help``.

An HTTP run that leaves out part of the grid (some subjects, scenarios, backends or
worker counts) does not replace the full run's http.json: its figures go to
bench/results/http-<part>.json (``--part``, by default its scenarios joined by ``+``),
which a later run of the same part replaces, and the report shows each such run in a
section of its own, its ratios from its own measurements only.

``--baseline REV --output DIR`` serves each optimist subject selected a second time as
commit REV wrote it (bench/baseline.py), in the same rounds, and writes the result files
and the report (with a section that divides each server's figures by its twin's) to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import baseline, chart, micro, report
from bench.scenarios import ITEM_SCENARIOS, PAGE_SCENARIOS
from bench.subjects import SUBJECTS, UNDER_TEST
from bench.suite import BACKENDS, Settings, load_average, partial, run

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "benchmarks.png"
NOTES = ROOT / "bench" / "notes.md"
SUITES = ("micro", "http")
#: A part's name, as it appears in its file's name.
_PART: Final = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,80}")


def _machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"


def _write(results: Path, name: str, data: dict[str, Any]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def _run_micro(results: Path) -> None:
    figures = micro.run()
    _write(
        results,
        "micro",
        {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "load_average": load_average(),
            "target_us": micro.TARGET_MICROSECONDS,
            "figures": [asdict(figure) | {"ratio": figure.ratio} for figure in figures],
            "encoders": [asdict(figure) | {"ratio": figure.ratio} for figure in micro.encoders()],
        },
    )


def _render_micro(data: dict[str, Any]) -> list[str]:
    load = f"; load average {data['load_average']}" if "load_average" in data else ""
    lines = [
        "## Core microbenchmarks",
        "",
        f"Measured {data['measured_at']} on {data['machine']}{load}; best of 7 timeit "
        f"repeats. Target: under {data['target_us']} µs per operation. Ratio = baseline "
        "time / optimist time, both measured in the same run (above 1: optimist is faster).",
        "",
        "| operation | optimist (µs) | target met | baseline | baseline (µs) | ratio |",
        "| --- | ---: | :---: | --- | ---: | ---: |",
    ]
    target = float(data["target_us"])
    for figure in data["figures"]:
        met = "yes" if figure["optimist_us"] < target else "**no**"
        lines.append(
            f"| {figure['name']} | {figure['optimist_us']:.2f} | {met} | {figure['baseline']} "
            f"| {figure['baseline_us']:.2f} | {figure['ratio']:.2f}x |"
        )
    return [*lines, "", *_render_encoders(data.get("encoders", []))]


def _render_encoders(figures: list[dict[str, Any]]) -> list[str]:
    """The JSON encoders' table, if the run measured them."""
    if not figures:
        return []
    lines = [
        "### JSON encoding",
        "",
        "What Starlette's `JSONResponse` (the standard library's `json`, which the apps and "
        "the service answer with) takes to encode a hot response, beside orjson, in the "
        "same run. Ratio = orjson's time / JSONResponse's (below 1: orjson is faster).",
        "",
        "| response | JSONResponse (µs) | orjson (µs) | saved per response (µs) | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for figure in figures:
        saved = figure["optimist_us"] - figure["baseline_us"]
        lines.append(
            f"| {figure['name'].removeprefix('encode ')} | {figure['optimist_us']:.2f} "
            f"| {figure['baseline_us']:.2f} | {saved:.2f} | {figure['ratio']:.2f}x |"
        )
    return [*lines, ""]


def _shown(directory: Path) -> str:
    """``directory`` as the report names it: from the checkout's root where it is inside."""
    resolved = directory.resolve()
    return str(resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved)


def render(output: Path | None = None) -> Path:
    """Rewrite docs/benchmarks.md (and its chart) from the result files; the report's path.

    ``output``: read the result files from there and write the report and its chart
    there (as benchmarks.md and benchmarks.png), without bench/notes.md.
    """
    results, report_file, chart_file = (
        (RESULTS, REPORT, CHART)
        if output is None
        else (output, output / "benchmarks.md", output / "benchmarks.png")
    )
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python3 dev.py bench`; the raw figures are in `{_shown(results)}/`. "
        "Every figure that matters is a ratio against a baseline measured in the same run.",
        "",
    ]
    http_file = results / "http.json"
    if http_file.exists():
        data = json.loads(http_file.read_text())
        drawn = chart.draw(data, chart_file)
        lines += report.render_http(data, chart_file.name if drawn else None)
    for part_file in sorted(results.glob("http-*.json")):
        data = json.loads(part_file.read_text())
        lines += report.render_part(data, f"{_shown(results)}/{part_file.name}")
    micro_file = results / "micro.json"
    if micro_file.exists():
        lines += _render_micro(json.loads(micro_file.read_text()))
    if output is None and NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    report_file.parent.mkdir(parents=True, exist_ok=True)
    report_file.write_text("\n".join(lines))
    return report_file


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suites", nargs="*", help=f"some of {', '.join(SUITES)} (default: all)")
    parser.add_argument("--render", action="store_true", help="only redraw the report")
    add = parser.add_argument
    add("--seconds", type=float, default=defaults.seconds, help="per measurement (%(default)s)")
    add(
        "--rounds",
        type=int,
        default=defaults.rounds,
        help="measurements of each cell, the servers taking turns (%(default)s)",
    )
    add("--warmup", type=float, default=defaults.warmup, help="per server (%(default)s)")
    add("--connections", type=int, default=defaults.connections, help="wrk's (%(default)s)")
    add("--rows", type=int, default=defaults.rows, help="items in the list (%(default)s)")
    add("--depth", type=int, default=defaults.depth, help="the deep page's (%(default)s)")
    add("--backends", default=",".join(BACKENDS), help="(%(default)s)")
    add("--workers", default="1,2", help="server processes (%(default)s)")
    add("--subjects", default=",".join(s.name for s in SUBJECTS), help="(%(default)s)")
    add("--scenarios", default=",".join((*ITEM_SCENARIOS, *PAGE_SCENARIOS)), help="(%(default)s)")
    add("--contention-seconds", type=float, default=defaults.contention_seconds, help="0: skip")
    add("--contention-clients", type=int, default=defaults.contention_clients)
    add("--race-clients", type=int, default=defaults.race_clients, help="0: skip the race")
    add("--race-increments", type=int, default=defaults.race_increments)
    add(
        "--quiet",
        type=float,
        default=defaults.quiet,
        help="before each round, wait until other processes use at most this share of "
        "the CPUs, e.g. 0.2 (default: measure and record it, never wait)",
    )
    add("--quiet-wait", type=float, default=defaults.quiet_wait, help="at most (%(default)s s)")
    add(
        "--baseline",
        metavar="REV",
        help="also serve each optimist subject selected as commit REV wrote it (its app "
        "module and src/optimist, from a tree kept in bench/.baseline/), in the same rounds; "
        "needs --output",
    )
    add(
        "--part",
        metavar="NAME",
        help="write the HTTP run's figures to bench/results/http-NAME.json, beside the full "
        "run's (default for a run that leaves out part of the grid: its scenarios joined "
        "by '+'; a full run: http.json)",
    )
    add(
        "--output",
        metavar="DIR",
        type=Path,
        help="read and write the result files and the report (benchmarks.md) in DIR "
        "(default: bench/results/ and docs/)",
    )
    return parser


def _grid(
    parser: argparse.ArgumentParser, arguments: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """The subjects and scenarios asked for, each one known; the part's name checked."""
    subjects = _names(arguments.subjects)
    unknown = set(subjects) - {subject.name for subject in SUBJECTS}
    if unknown:
        parser.error(f"unknown subjects: {', '.join(sorted(unknown))}")
    scenarios = _names(arguments.scenarios)
    unknown = set(scenarios) - {*ITEM_SCENARIOS, *PAGE_SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if arguments.part is not None and not _PART.fullmatch(arguments.part):
        parser.error("--part: lower-case letters, digits and _.+- only")
    return subjects, scenarios


def main() -> None:
    parser = _parser()
    arguments = parser.parse_args()
    unknown = set(arguments.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suites: {', '.join(sorted(unknown))}")
    if arguments.render:
        print(render(arguments.output).read_text())
        return
    suites = arguments.suites or list(SUITES)
    if arguments.depth >= arguments.rows:
        parser.error("--depth must be below --rows")
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    subjects, scenarios = _grid(parser, arguments)
    compared = None
    if arguments.baseline is not None:
        if arguments.output is None:
            parser.error("--baseline needs --output: its run is not the committed one")
        if not set(UNDER_TEST) & set(subjects):
            parser.error(f"--baseline compares {' or '.join(UNDER_TEST)}: select one")
        try:
            compared = baseline.checkout(arguments.baseline)
        except baseline.BaselineFailed as failure:
            parser.error(str(failure))
    results = RESULTS if arguments.output is None else arguments.output
    if "http" in suites:
        settings = Settings(
            seconds=arguments.seconds,
            rounds=arguments.rounds,
            warmup=arguments.warmup,
            connections=arguments.connections,
            rows=arguments.rows,
            depth=arguments.depth,
            backends=_names(arguments.backends),
            workers=[int(n) for n in _names(arguments.workers)],
            subjects=subjects,
            scenarios=scenarios,
            contention_clients=arguments.contention_clients,
            contention_seconds=arguments.contention_seconds,
            race_clients=arguments.race_clients,
            race_increments=arguments.race_increments,
            quiet=arguments.quiet,
            quiet_wait=arguments.quiet_wait,
            baseline=compared,
        )
        part = arguments.part
        if part is None and arguments.output is None and partial(settings):
            part = "+".join(scenarios)
        _write(results, "http" if part is None else f"http-{part}", asyncio.run(run(settings)))
    if "micro" in suites:
        _run_micro(results)
    print(render(arguments.output).read_text())


if __name__ == "__main__":
    main()

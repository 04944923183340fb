"""``python -m bench``: run the benchmarks, keep the raw figures, rewrite the report.

Raw figures go to bench/results/<suite>.json; docs/benchmarks.md is rendered from
every result file present, so suites can be rerun one at a time.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import micro

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "docs" / "benchmarks.md"
SUITES = ("micro",)


def _machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"


def _run_micro() -> None:
    figures = micro.run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "micro.json").write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": _machine(),
                "target_us": micro.TARGET_MICROSECONDS,
                "figures": [asdict(figure) | {"ratio": figure.ratio} for figure in figures],
            },
            indent=2,
        )
        + "\n"
    )


def _render_micro(data: dict[str, object]) -> list[str]:
    lines = [
        "## Core microbenchmarks",
        "",
        f"Measured {data['measured_at']} on {data['machine']}; best of 7 timeit repeats. "
        f"Target: under {data['target_us']} µs per operation. Ratio = baseline time / optimist "
        "time, both measured in the same run (above 1: optimist is faster).",
        "",
        "| operation | optimist (µs) | target met | baseline | baseline (µs) | ratio |",
        "| --- | ---: | :---: | --- | ---: | ---: |",
    ]
    target = float(str(data["target_us"]))
    figures = data["figures"]
    assert isinstance(figures, list)
    for figure in figures:
        met = "yes" if figure["optimist_us"] < target else "**no**"
        lines.append(
            f"| {figure['name']} | {figure['optimist_us']:.2f} | {met} | {figure['baseline']} "
            f"| {figure['baseline_us']:.2f} | {figure['ratio']:.2f}x |"
        )
    return [*lines, ""]


def render() -> None:
    """Rewrite docs/benchmarks.md from the result files."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python3 dev.py bench`; the raw figures are in `bench/results/`. "
        "Every figure that matters is a ratio against a baseline measured in the same run.",
        "",
    ]
    micro_file = RESULTS / "micro.json"
    if micro_file.exists():
        lines += _render_micro(json.loads(micro_file.read_text()))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"some of {', '.join(SUITES)} (default: all)")
    arguments = parser.parse_args()
    unknown = set(arguments.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suites: {', '.join(sorted(unknown))}")
    suites = arguments.suites or list(SUITES)
    if "micro" in suites:
        _run_micro()
    render()
    print(REPORT.read_text())


if __name__ == "__main__":
    main()

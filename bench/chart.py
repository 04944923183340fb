"""The chart of docs/benchmarks.md: throughput per scenario, one panel per configuration.

Each bar is a cell's median; its whisker spans the smallest to the largest measurement.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from bench.report import configurations, measurements
from bench.scenarios import ITEM_SCENARIOS, PAGE_SCENARIOS
from bench.subjects import SUBJECTS

__all__ = ["draw"]

_SHORT: Final = {
    "get": "GET",
    "revalidate": "304",
    "patch": "PATCH",
    "patch_if_match": "PATCH\nIf-Match",
    "patch_if_match_keyed": "PATCH\nIf-Match\n+ key",
    "page_first": "page 1",
    "page_deep": "page\n100 000 deep",
}
_COLOURS: Final = {
    "optimist": "#1b6ca8",
    "optimist-starlette": "#6baed6",
    "raw": "#7f7f7f",
    "seed": "#e08214",
    "kinto": "#8c510a",
}


def draw(data: Mapping[str, Any], path: Path) -> bool:
    """Write the chart to ``path``; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional: the bench extra

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    drawn = configurations(data)
    if not drawn:
        return False
    present = {figure["subject"] for figure in data["measurements"]}
    subjects = [subject for subject in SUBJECTS if subject.name in present]
    measured = {figure["scenario"] for figure in data["measurements"]}
    scenarios = [s for s in (*ITEM_SCENARIOS, *PAGE_SCENARIOS) if s in measured]
    columns = 2 if len(drawn) > 1 else 1
    rows = (len(drawn) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.6 * rows), squeeze=False)
    width = 0.8 / len(subjects)
    for panel, (backend, workers) in zip(axes.flat, drawn, strict=False):
        for index, subject in enumerate(subjects):
            heights, below, above = [], [], []
            for scenario in scenarios:
                found = list(measurements(data, backend, workers, subject.name, scenario).values())
                median = statistics.median(found) if found else 0.0
                heights.append(median)
                below.append(median - min(found, default=0.0))
                above.append(max(found, default=0.0) - median)
            offset = (index - (len(subjects) - 1) / 2) * width
            positions = [x + offset for x in range(len(scenarios))]
            panel.bar(
                positions,
                heights,
                width,
                yerr=[below, above],
                error_kw={"elinewidth": 0.8, "capsize": 1.5},
                label=subject.label,
                color=_COLOURS.get(subject.name),
            )
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        panel.set_title(f"{name}, {workers} worker{'s' * (workers > 1)}", fontsize=10)
        panel.set_xticks(range(len(scenarios)), [_SHORT[s] for s in scenarios], fontsize=8)
        panel.set_ylabel("responses / s", fontsize=8)
        panel.tick_params(axis="y", labelsize=8)
        panel.grid(axis="y", alpha=0.3)
    for panel in list(axes.flat)[len(drawn) :]:
        panel.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(subjects), fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True

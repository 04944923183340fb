"""The chart of docs/benchmarks.md: throughput per scenario, one panel per configuration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from bench.scenarios import ITEM_SCENARIOS, PAGE_SCENARIOS
from bench.subjects import SUBJECTS

__all__ = ["draw"]

_SHORT: Final = {
    "get": "GET",
    "revalidate": "304",
    "patch": "PATCH",
    "patch_if_match": "PATCH\nIf-Match",
    "page_first": "page 1",
    "page_deep": "page\n100 000 deep",
}
_COLOURS: Final = {"optimist": "#1b6ca8", "raw": "#7f7f7f", "seed": "#e08214", "kinto": "#8c510a"}


def draw(data: Mapping[str, Any], path: Path) -> bool:
    """Write the chart to ``path``; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional: the bench extra

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    measurements = data["measurements"]
    configurations: list[tuple[str, int]] = []
    for figure in measurements:
        where = (figure["backend"], figure["workers"])
        if where not in configurations:
            configurations.append(where)
    if not configurations:
        return False
    subjects = [s for s in SUBJECTS if any(f["subject"] == s.name for f in measurements)]
    scenarios = [*ITEM_SCENARIOS, *PAGE_SCENARIOS]
    columns = 2 if len(configurations) > 1 else 1
    rows = (len(configurations) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.6 * rows), squeeze=False)
    width = 0.8 / len(subjects)
    for panel, (backend, workers) in zip(axes.flat, configurations, strict=False):
        for index, subject in enumerate(subjects):
            heights = []
            for scenario in scenarios:
                rate = next(
                    (
                        f["per_second"]
                        for f in measurements
                        if (f["backend"], f["workers"], f["subject"], f["scenario"])
                        == (backend, workers, subject.name, scenario)
                    ),
                    0.0,
                )
                heights.append(rate)
            offset = (index - (len(subjects) - 1) / 2) * width
            positions = [x + offset for x in range(len(scenarios))]
            panel.bar(
                positions, heights, width, label=subject.label, color=_COLOURS.get(subject.name)
            )
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        panel.set_title(f"{name}, {workers} worker{'s' * (workers > 1)}", fontsize=10)
        panel.set_xticks(range(len(scenarios)), [_SHORT[s] for s in scenarios], fontsize=8)
        panel.set_ylabel("responses / s", fontsize=8)
        panel.tick_params(axis="y", labelsize=8)
        panel.grid(axis="y", alpha=0.3)
    for panel in list(axes.flat)[len(configurations) :]:
        panel.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(subjects), fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True

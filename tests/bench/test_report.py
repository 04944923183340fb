"""The benchmark report: medians of rounds, spreads, verdicts round by round, and runs of
part of the grid beside the full run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# bench/ is not installed: it is found beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.__main__ import render
from bench.report import measurements, rate, render_http, render_part, targets
from bench.scenarios import KEYED


def _figure(subject: str, scenario: str, per_second: float, turn: int | None) -> dict[str, Any]:
    figure = {
        "backend": "sqlite",
        "workers": 1,
        "subject": subject,
        "scenario": scenario,
        "per_second": per_second,
    }
    return figure if turn is None else {**figure, "round": turn}


def _data(cells: dict[tuple[str, str], list[float]], *, rounds: int | None = 3) -> dict[str, Any]:
    figures = [
        _figure(subject, scenario, value, None if rounds is None else turn)
        for (subject, scenario), values in cells.items()
        for turn, value in enumerate(values, start=1)
    ]
    settings: dict[str, Any] = {"seconds": 5.0, "connections": 32, "rows": 1000, "warmup": 1.0}
    if rounds is not None:
        settings["rounds"] = rounds
    return {
        "started_at": "start",
        "finished_at": "end",
        "load_before": [0.0, 0.0, 0.0],
        "load_after": [0.0, 0.0, 0.0],
        "machine": "test",
        "versions": {},
        "settings": settings,
        "measurements": figures,
        "contention": [],
        "races": [],
        "skipped": [],
        "quiet": [],
    }


def _target(data: dict[str, Any], name: str, subject: str = "optimist") -> Any:
    return next(
        target
        for target in targets(data)
        if target.name.startswith(name) and target.subject == subject
    )


def test_a_cell_is_the_median_of_its_rounds() -> None:
    """A cell measured in three rounds counts as the middle of the three."""
    data = _data({("optimist", "get"): [300.0, 100.0, 200.0]})
    assert rate(data, "sqlite", 1, "optimist", "get") == 200.0


def test_figures_from_before_rounds_are_round_one() -> None:
    """A result file without rounds holds one measurement per cell, as round 1."""
    data = _data({("optimist", "get"): [150.0]}, rounds=None)
    assert measurements(data, "sqlite", 1, "optimist", "get") == {1: 150.0}


def test_a_target_divides_the_medians() -> None:
    """The target's ratio is median ÷ median, not the median of the rounds' ratios."""
    data = _data(
        {
            ("optimist", "patch_if_match"): [100.0, 300.0, 200.0],
            ("optimist", "patch"): [100.0, 100.0, 400.0],
        }
    )
    target = _target(data, "conditional PATCH ≥ 0.90× our")
    assert target.measured == 2.0
    assert target.per_round == (1.0, 3.0, 0.5)


def test_rounds_agreeing_counts_rounds_with_the_medians_verdict() -> None:
    """A target met by the medians but missed in one round holds in 2 of 3 rounds."""
    data = _data(
        {
            ("optimist", "patch_if_match"): [100.0, 300.0, 200.0],
            ("optimist", "patch"): [100.0, 100.0, 400.0],
        }
    )
    assert _target(data, "conditional PATCH ≥ 0.90× our").rounds_agreeing == (2, 3)


def test_an_upper_bound_is_judged_round_by_round_as_an_upper_bound() -> None:
    """The deep-page target is met in a round whose ratio stays at or under 1.5."""
    data = _data(
        {
            ("optimist", "page_first"): [100.0, 100.0, 200.0],
            ("optimist", "page_deep"): [100.0, 50.0, 200.0],
        }
    )
    target = _target(data, "deep page")
    assert (target.met, target.rounds_agreeing) == (True, (2, 3))


def test_the_report_shows_a_cells_spread_and_the_rounds_held() -> None:
    """A cell prints its median with max ÷ min; a verdict prints the rounds that agree."""
    data = _data(
        {
            ("optimist", "patch_if_match"): [100.0, 300.0, 200.0],
            ("optimist", "patch"): [100.0, 100.0, 400.0],
        }
    )
    page = "\n".join(render_http(data, None))
    assert "| 200 (3.00) |" in page
    assert "| 2.00× (0.50–3.00×) | – | met (2/3 rounds) |" in page


def test_optimist_on_starlette_is_judged_by_the_same_targets() -> None:
    """Its conditional PATCH is divided by the raw driver's, like optimist's."""
    data = _data(
        {
            ("optimist", "patch_if_match"): [100.0],
            ("optimist-starlette", "patch_if_match"): [180.0],
            ("raw", "patch_if_match"): [200.0],
        }
    )
    target = _target(data, "conditional PATCH ≥ 0.85× the raw", "optimist-starlette")
    assert target.measured == 0.9


def test_optimist_under_fastapi_is_divided_by_the_raw_driver_on_fastapi() -> None:
    """Where the run measured the raw driver on FastAPI, optimist's FastAPI app is
    divided by it, not by the raw driver on Starlette, and the target says so."""
    data = _data(
        {
            ("optimist", "get"): [90.0],
            ("raw", "get"): [200.0],
            ("raw-fastapi", "get"): [100.0],
        }
    )
    target = _target(data, "GET ≥ 0.85× the raw driver's")
    assert (target.name, target.measured) == ("GET ≥ 0.85× the raw driver's on FastAPI", 0.9)


def test_without_the_raw_driver_on_fastapi_the_one_on_starlette_is_the_baseline() -> None:
    """A result file from before the raw driver ran on FastAPI divides by the one on
    Starlette, and the target names that framework."""
    data = _data({("optimist", "page_first"): [90.0], ("raw", "page_first"): [100.0]})
    target = _target(data, "page 1 ≥ 0.85× the raw driver's")
    assert (target.name, target.measured) == ("page 1 ≥ 0.85× the raw driver's on Starlette", 0.9)


def test_each_optimist_server_has_every_target() -> None:
    """Both optimist servers get the same list of targets, in one configuration."""
    data = _data({("optimist", "get"): [100.0], ("optimist-starlette", "get"): [100.0]}, rounds=1)
    names = {
        subject: [target.name for target in targets(data) if target.subject == subject]
        for subject in ("optimist", "optimist-starlette")
    }
    assert names["optimist"] == names["optimist-starlette"] != []


def test_a_server_under_test_the_run_left_out_has_no_targets() -> None:
    """A run without optimist on Starlette lists no target rows for it."""
    data = _data({("optimist", "get"): [100.0], ("raw", "get"): [300.0]})
    assert {target.subject for target in targets(data)} == {"optimist"}


def test_the_throughput_table_has_a_column_for_optimist_on_starlette() -> None:
    """Its median stands in a column of its own, beside optimist's."""
    data = _data({("optimist", "get"): [100.0], ("optimist-starlette", "get"): [250.0]})
    page = "\n".join(render_http(data, None))
    assert "| scenario | optimist | optimist on Starlette |" in page
    assert "| GET one item (200) | 100 | 250 |" in page


def test_lost_updates_are_a_target_of_optimist_on_starlette() -> None:
    """Its lost-update race is a target row, named by its server."""
    data = _data({("optimist-starlette", "get"): [100.0]})
    data["races"] = [
        {
            "backend": "sqlite",
            "workers": 1,
            "subject": "optimist-starlette",
            "clients": 16,
            "increments": 15,
            "acknowledged": 240,
            "final_delta": 240,
            "lost": 0,
            "retries": 3,
            "unexpected": {},
            "seconds": 1.0,
            "finished": True,
        }
    ]
    row = "| SQLite, 1 worker | optimist on Starlette | 0 lost of 240 acknowledged | – | met |"
    assert row in "\n".join(render_http(data, None))


def test_a_baseline_run_divides_each_server_by_its_twin() -> None:
    """A row per server and scenario: both cells with their spread, and current ÷ baseline."""
    data = _data(
        {
            ("optimist", "get"): [200.0, 300.0, 100.0],
            ("optimist@f7b63ba", "get"): [100.0, 100.0, 200.0],
        }
    )
    data["baseline"] = {"rev": "f7b63ba", "commit": "f7b63ba0", "imports": {}}
    page = "\n".join(render_http(data, None))
    assert "| configuration | server | scenario | current | f7b63ba | current ÷ f7b63ba |" in page
    row = "| SQLite, 1 worker | optimist | GET one item (200) | 200 (3.00) | 100 (2.00) |"
    assert f"{row} 2.00× (0.50–3.00×) |" in page


def test_a_twin_is_neither_a_column_nor_judged() -> None:
    """The baseline's servers stay out of the throughput table and the targets."""
    data = _data({("optimist", "get"): [100.0], ("optimist@f7b63ba", "get"): [50.0]})
    data["baseline"] = {"rev": "f7b63ba", "commit": "f7b63ba0", "imports": {}}
    assert "| scenario | optimist |\n" in "\n".join(render_http(data, None))
    assert {target.subject for target in targets(data)} == {"optimist"}


def test_a_run_without_a_baseline_has_no_such_section() -> None:
    """No baseline in the figures: the report is as before."""
    data = _data({("optimist", "get"): [100.0]})
    assert "## Against commit" not in "\n".join(render_http(data, None))


def _keyed(keyed: list[float], plain: list[float]) -> dict[str, Any]:
    data = _data({("optimist", KEYED): keyed, ("optimist", "patch_if_match"): plain})
    data["settings"]["scenarios"] = ["patch_if_match", KEYED]
    data["settings"]["subjects"] = ["optimist"]
    return data


def test_the_keyed_patch_is_divided_by_the_same_patch_without_a_key() -> None:
    """The key's target is the keyed PATCH's median ÷ the plain If-Match PATCH's."""
    target = _target(_keyed([80.0, 90.0, 70.0], [100.0, 100.0, 100.0]), "keyed conditional")
    assert (target.measured, target.wanted, target.met) == (0.8, 0.8, True)


def test_a_keyed_patch_under_the_bar_misses_its_target() -> None:
    """0.25× the PATCH without a key is not 0.8×."""
    target = _target(_keyed([25.0, 25.0, 25.0], [100.0, 100.0, 100.0]), "keyed conditional")
    assert target.met is False


def test_a_run_without_a_scenario_has_no_target_on_it() -> None:
    """A run that did not select the keyed scenario lists no row for its target."""
    data = _data({("optimist", "patch_if_match"): [100.0], ("optimist", "patch"): [100.0]})
    data["settings"]["scenarios"] = ["patch", "patch_if_match"]
    assert not [target for target in targets(data) if target.name.startswith("keyed")]


def test_a_run_without_the_server_divided_by_has_no_target_on_it() -> None:
    """A run without the raw driver lists no row dividing by the raw driver."""
    data = _keyed([80.0], [100.0])
    assert not [target for target in targets(data) if "raw driver's" in target.name]


def test_a_run_of_part_of_the_grid_has_a_section_of_its_own() -> None:
    """Its heading names its file; its targets and tables sit a level below it."""
    page = "\n".join(render_part(_keyed([80.0], [100.0]), "bench/results/http-keys.json"))
    assert "## A run of part of the grid (`bench/results/http-keys.json`)" in page
    assert "### Targets" in page
    assert "#### SQLite, 1 worker" in page


def test_the_report_keeps_the_full_run_and_adds_each_part(tmp_path: Path) -> None:
    """http.json stays the report's main run; an http-<part>.json follows it."""
    full = _data({("optimist", "get"): [100.0]})
    (tmp_path / "http.json").write_text(json.dumps(full))
    (tmp_path / "http-keys.json").write_text(json.dumps(_keyed([80.0], [100.0])))
    page = render(tmp_path).read_text()
    assert page.index("## HTTP servers side by side") < page.index("## A run of part of the grid")
    assert "| GET one item (200) | 100 |" in page

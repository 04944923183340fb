"""The benchmark suite's plan: the servers' turns, their groups, the expected duration and
what each server is measured on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# bench/ is not installed: it is found beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.baseline import Baseline
from bench.scenarios import KEYED, SCENARIOS
from bench.servers import ROOT, environment
from bench.subjects import (
    KINTO,
    OPTIMIST,
    OPTIMIST_GRANIAN,
    OPTIMIST_STARLETTE,
    RAW,
    RAW_FASTAPI,
    SEED,
    SUBJECTS,
    twin,
)
from bench.suite import (
    HEADROOM,
    Settings,
    expected_seconds,
    groups,
    partial,
    rotation,
    selected,
    serves,
)

#: The connections the servers may hold on a PostgreSQL server of 100 (the default).
_BUDGET = 100 - HEADROOM
_BASELINE = Baseline("f7b63ba", "f7b63ba" + "0" * 33, Path("/cache/f7b63ba"))


def test_every_server_leads_one_round_of_as_many() -> None:
    """Over as many rounds as servers, each server is measured first exactly once."""
    servers = ["optimist", "raw", "seed"]
    firsts = [rotation(servers, turn)[0] for turn in range(len(servers))]
    assert sorted(firsts) == sorted(servers)


def test_a_rotation_keeps_every_server() -> None:
    """A rotated order holds every server once, whatever the round."""
    servers = ["optimist", "raw", "seed", "kinto"]
    assert sorted(rotation(servers, 7)) == sorted(servers)


def test_each_round_adds_to_the_expected_duration() -> None:
    """Three rounds are expected to take longer than one."""
    assert expected_seconds(Settings(rounds=3)) > expected_seconds(Settings(rounds=1))


def test_the_default_run_is_expected_within_70_minutes() -> None:
    """The defaults, servers grouped for a default PostgreSQL server, stay within 70 minutes."""
    assert expected_seconds(Settings(), _BUDGET) <= 70 * 60


def test_servers_within_the_connection_budget_run_as_one_group() -> None:
    """One worker each: 20 + 10 + 15 + 10 connections fit a budget of 60."""
    assert groups([OPTIMIST, RAW, SEED, KINTO], 1, 60) == [[OPTIMIST, RAW, SEED, KINTO]]


def test_servers_over_the_connection_budget_run_in_groups_that_fit() -> None:
    """Two workers each: 40 + 20 fit a budget of 60, then 30 + 20."""
    assert groups([OPTIMIST, RAW, SEED, KINTO], 2, 60) == [[OPTIMIST, RAW], [SEED, KINTO]]


def test_without_a_connection_limit_every_server_runs_at_once() -> None:
    """SQLite has no connection limit: one group, whatever the pools."""
    assert groups([OPTIMIST, RAW, SEED], 2, None) == [[OPTIMIST, RAW, SEED]]


def test_both_optimist_servers_share_a_group_with_both_raw_drivers_on_one_worker() -> None:
    """One worker each: 20 + 20 + 10 + 10 fill a budget of 60, seed 003 and Kinto run next."""
    servers = [OPTIMIST, OPTIMIST_STARLETTE, RAW, RAW_FASTAPI, SEED, KINTO]
    assert groups(servers, 1, _BUDGET) == [
        [OPTIMIST, OPTIMIST_STARLETTE, RAW, RAW_FASTAPI],
        [SEED, KINTO],
    ]


def test_each_optimist_server_keeps_its_raw_driver_beside_it_on_two_workers() -> None:
    """Two workers each: the optimist servers (40 each) cannot share; each runs with the
    raw driver on its own framework."""
    servers = [OPTIMIST, OPTIMIST_STARLETTE, RAW, RAW_FASTAPI, SEED, KINTO]
    assert groups(servers, 2, _BUDGET) == [
        [OPTIMIST, RAW_FASTAPI],
        [OPTIMIST_STARLETTE, RAW],
        [SEED, KINTO],
    ]


def test_the_app_under_granian_runs_beside_the_same_app_under_uvicorn() -> None:
    """One worker each: optimist under granian shares a group with optimist under uvicorn."""
    [group] = [group for group in groups(SUBJECTS, 1, _BUDGET) if OPTIMIST in group]
    assert OPTIMIST_GRANIAN in group


def test_the_app_under_granian_is_measured_on_a_read_a_write_and_a_page() -> None:
    """granian is measured on the scenarios that tell servers apart, not on the rest."""
    measured = {scenario for scenario in SCENARIOS if serves(OPTIMIST_GRANIAN, scenario)}
    assert measured == {"get", "patch_if_match", "page_first"}


def test_a_server_that_does_not_fit_leaves_the_group_open_to_the_next() -> None:
    """Budget 25: the raw driver's 10 and seed 003's 15 share a group past optimist's 20."""
    assert groups([RAW, OPTIMIST, SEED], 1, 25) == [[RAW, SEED], [OPTIMIST]]


def test_groups_keep_the_most_compared_pairs_together() -> None:
    """Baselines first: the optimist servers still join the raw driver and Kinto, not seed 003."""
    assert groups([RAW, SEED, KINTO, OPTIMIST, OPTIMIST_STARLETTE], 1, _BUDGET) == [
        [RAW, KINTO, OPTIMIST, OPTIMIST_STARLETTE],
        [SEED],
    ]


def test_a_server_over_the_budget_by_itself_runs_alone() -> None:
    """A pool larger than the budget is a group of its own, not a failure."""
    assert groups([OPTIMIST, RAW], 2, 30) == [[OPTIMIST], [RAW]]


def test_without_a_baseline_the_selected_subjects_run_alone() -> None:
    """No --baseline: the subjects named, in the order of the report, and no others."""
    settings = Settings(subjects=["raw", "optimist"])
    assert selected(settings) == [OPTIMIST, RAW]


def test_a_baseline_adds_a_twin_after_each_optimist_server() -> None:
    """Each optimist server selected is followed by its twin of the commit; others have none."""
    settings = Settings(subjects=["raw", "optimist-starlette", "optimist"], baseline=_BASELINE)
    assert [subject.name for subject in selected(settings)] == [
        "optimist",
        "optimist@f7b63ba",
        "optimist-starlette",
        "optimist-starlette@f7b63ba",
        "raw",
    ]


def test_a_twin_serves_the_commits_app_and_package_first() -> None:
    """The twin runs in the commit's tree, its src and root ahead of this checkout's."""
    tree = _BASELINE.tree
    served = twin(OPTIMIST_STARLETTE, "f7b63ba", tree)
    assert (served.label, served.target, served.cwd) == (
        "optimist on Starlette @ f7b63ba",
        OPTIMIST_STARLETTE.target,
        tree,
    )
    path = environment(served, {"BENCH_SECRET": "s"})["PYTHONPATH"].split(os.pathsep)
    assert path[:3] == [str(tree / "src"), str(tree), str(ROOT)]


def test_a_server_without_a_twin_keeps_this_checkout_first() -> None:
    """The subjects of today: this checkout leads the import path, as before."""
    assert environment(OPTIMIST, {})["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)


def test_groups_keep_each_optimist_server_with_its_twin() -> None:
    """Four pools of 20 on a budget of 60: each server and its twin share a group."""
    servers = selected(Settings(subjects=["optimist", "optimist-starlette"], baseline=_BASELINE))
    first, first_twin, second, second_twin = servers
    assert groups(servers, 1, _BUDGET) == [[first, first_twin], [second, second_twin]]


def test_the_keyed_scenario_runs_on_the_optimist_servers_and_the_raw_driver() -> None:
    """Both optimist servers and the raw driver's take an Idempotency-Key: each is
    measured with one (the raw driver's gives the keyed target its own ratio)."""
    assert all(serves(subject, KEYED) for subject in (OPTIMIST, OPTIMIST_STARLETTE, RAW))


def test_servers_without_keys_are_left_out_of_the_keyed_scenario() -> None:
    """Seed 003's pattern and Kinto are not measured with a key."""
    assert not any(serves(subject, KEYED) for subject in (SEED, KINTO))


def test_a_server_without_keys_still_runs_the_plain_if_match_scenario() -> None:
    """Leaving out the keyed scenario leaves the others as they were."""
    assert serves(RAW, "patch_if_match")


def test_the_default_run_is_not_partial() -> None:
    """Every subject, scenario, backend and worker count: its figures are the full run's."""
    assert not partial(Settings())


def test_a_run_of_some_scenarios_is_partial() -> None:
    """Two scenarios of the grid: the full run's figures are kept beside it."""
    assert partial(Settings(scenarios=["patch_if_match", KEYED]))


def test_a_run_on_one_backend_is_partial() -> None:
    """One backend of the two: the full run's figures are kept beside it."""
    assert partial(Settings(backends=["sqlite"]))

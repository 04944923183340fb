"""The benchmark suite's plan: the servers' turns, their groups and the expected duration."""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ is not installed: it is found beside tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.subjects import KINTO, OPTIMIST, RAW, SEED
from bench.suite import Settings, expected_seconds, groups, rotation


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


def test_the_default_run_is_expected_within_35_minutes() -> None:
    """The defaults stay within the 35-minute budget of a full run."""
    assert expected_seconds(Settings()) <= 35 * 60


def test_servers_within_the_connection_budget_run_as_one_group() -> None:
    """One worker each: 20 + 10 + 15 + 10 connections fit a budget of 60."""
    assert groups([OPTIMIST, RAW, SEED, KINTO], 1, 60) == [[OPTIMIST, RAW, SEED, KINTO]]


def test_servers_over_the_connection_budget_run_in_groups_that_fit() -> None:
    """Two workers each: 40 + 20 fit a budget of 60, then 30 + 20."""
    assert groups([OPTIMIST, RAW, SEED, KINTO], 2, 60) == [[OPTIMIST, RAW], [SEED, KINTO]]


def test_without_a_connection_limit_every_server_runs_at_once() -> None:
    """SQLite has no connection limit: one group, whatever the pools."""
    assert groups([OPTIMIST, RAW, SEED], 2, None) == [[OPTIMIST, RAW, SEED]]

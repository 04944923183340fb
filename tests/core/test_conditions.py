"""Write conditions: each predicate's meaning, TagIn.candidates, UnmodifiedSince.before, all_of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.conditions import (
    ABSENT,
    ALWAYS,
    EXISTS,
    NEVER,
    AllOf,
    Condition,
    Not,
    ResourceState,
    TagIn,
    UnmodifiedSince,
    all_of,
)
from optimist.etag import Comparison, EntityTag

T0 = datetime(2025, 1, 15, 10, 30, 0, tzinfo=UTC)
A, B, WA = EntityTag("a"), EntityTag("b"), EntityTag("a", weak=True)


def stored(etag: EntityTag | None = None, last_modified: datetime | None = None) -> ResourceState:
    """A state of an existing resource."""
    return ResourceState(exists=True, etag=etag, last_modified=last_modified)


MISSING = ResourceState.missing()


def test_missing_state() -> None:
    """ResourceState.missing() is a resource that does not exist, with nothing stored."""
    assert ResourceState(exists=False, etag=None, last_modified=None) == MISSING


@pytest.mark.parametrize(
    ("condition", "state", "expected"),
    [
        (ALWAYS, MISSING, True),
        (ALWAYS, stored(A), True),
        (NEVER, MISSING, False),
        (NEVER, stored(A), False),
        (EXISTS, MISSING, False),
        (EXISTS, stored(), True),
        (ABSENT, MISSING, True),
        (ABSENT, stored(), False),
        (Not(EXISTS), MISSING, True),
        (Not(EXISTS), stored(), False),
        (AllOf((EXISTS, TagIn((A,)))), stored(A), True),
        (AllOf((EXISTS, TagIn((A,)))), stored(B), False),
        (AllOf(()), MISSING, True),
    ],
    ids=[
        "always-missing",
        "always-stored",
        "never-missing",
        "never-stored",
        "exists-missing",
        "exists-stored",
        "absent-missing",
        "absent-stored",
        "not-missing",
        "not-stored",
        "all-of-true",
        "all-of-false",
        "all-of-empty",
    ],
)
def test_holds(condition: Condition, state: ResourceState, expected: bool) -> None:
    """Each condition means what its docstring says."""
    assert condition.holds(state) is expected


@pytest.mark.parametrize(
    ("tags", "comparison", "state", "expected"),
    [
        ((A,), Comparison.STRONG, stored(A), True),
        ((A,), Comparison.STRONG, stored(B), False),
        ((B, A), Comparison.STRONG, stored(A), True),
        ((WA,), Comparison.STRONG, stored(A), False),
        ((A,), Comparison.STRONG, stored(WA), False),
        ((WA,), Comparison.STRONG, stored(WA), False),
        ((WA,), Comparison.WEAK, stored(A), True),
        ((A,), Comparison.WEAK, stored(WA), True),
        ((WA,), Comparison.WEAK, stored(WA), True),
        ((A,), Comparison.WEAK, stored(B), False),
        ((A,), Comparison.STRONG, MISSING, False),
        ((A,), Comparison.WEAK, stored(None), False),
        ((), Comparison.WEAK, stored(A), False),
    ],
    ids=[
        "strong-equal",
        "strong-different",
        "strong-in-list",
        "strong-weak-sent",
        "strong-weak-stored",
        "strong-both-weak",
        "weak-weak-sent",
        "weak-weak-stored",
        "weak-both-weak",
        "weak-different",
        "missing-resource",
        "no-stored-tag",
        "no-tags",
    ],
)
def test_tag_in_holds(
    tags: tuple[EntityTag, ...], comparison: Comparison, state: ResourceState, expected: bool
) -> None:
    """TagIn applies the RFC 9110 §8.8.3.2 comparison to the stored tag."""
    assert TagIn(tags, comparison).holds(state) is expected


def test_tag_in_defaults_to_strong() -> None:
    """TagIn compares strongly unless told otherwise, as If-Match does."""
    assert TagIn((A,)).comparison is Comparison.STRONG


@pytest.mark.parametrize(
    ("tags", "comparison", "stored_weak", "expected"),
    [
        ((A, WA, B), Comparison.STRONG, False, {"a", "b"}),
        ((WA,), Comparison.STRONG, False, set()),
        ((A, B), Comparison.STRONG, True, set()),
        ((A, EntityTag("c", weak=True)), Comparison.WEAK, False, {"a", "c"}),
        ((A, EntityTag("c", weak=True)), Comparison.WEAK, True, {"a", "c"}),
    ],
    ids=[
        "strong-storage-strong-comparison",
        "strong-storage-only-weak-sent",
        "weak-storage-strong-comparison",
        "strong-storage-weak-comparison",
        "weak-storage-weak-comparison",
    ],
)
def test_candidates(
    tags: tuple[EntityTag, ...], comparison: Comparison, stored_weak: bool, expected: set[str]
) -> None:
    """candidates lists the opaque values that match a stored tag of the given weakness."""
    assert TagIn(tags, comparison).candidates(stored_weak) == frozenset(expected)


opaques = st.sampled_from(["a", "b", "c"])
tag_strategy = st.builds(EntityTag, opaques, st.booleans())


@given(
    st.lists(tag_strategy, max_size=4).map(tuple),
    st.sampled_from(list(Comparison)),
    tag_strategy,
)
def test_candidates_agree_with_holds(
    tags: tuple[EntityTag, ...], comparison: Comparison, current: EntityTag
) -> None:
    """Comparing the stored opaque value with candidates() decides exactly as holds()."""
    condition = TagIn(tags, comparison)
    compiled = current.opaque in condition.candidates(current.weak)
    assert compiled == condition.holds(stored(current))


@pytest.mark.parametrize(
    ("last_modified", "expected"),
    [
        (T0 - timedelta(seconds=1), True),
        (T0, True),
        (T0 + timedelta(microseconds=999_999), True),
        (T0 + timedelta(seconds=1), False),
        (T0.replace(tzinfo=None), True),
        ((T0 + timedelta(seconds=1)).replace(tzinfo=None), False),
        (T0.astimezone(timezone(timedelta(hours=2))), True),
        (None, True),
    ],
    ids=[
        "earlier",
        "same-second",
        "same-second-with-fraction",
        "next-second",
        "naive-read-as-utc",
        "naive-later",
        "other-zone",
        "no-modification-date",
    ],
)
def test_unmodified_since_holds(last_modified: datetime | None, expected: bool) -> None:
    """At one-second resolution, the stored time must be at or before the bound."""
    assert UnmodifiedSince(T0).holds(stored(A, last_modified)) is expected


def test_unmodified_since_holds_for_a_missing_resource() -> None:
    """§13.1.4 has nothing to compare when no representation exists."""
    assert UnmodifiedSince(T0).holds(MISSING)


def test_unmodified_since_reads_a_naive_bound_as_utc() -> None:
    """A naive bound is taken as UTC, so it compares with aware stored times."""
    condition = UnmodifiedSince(T0.replace(tzinfo=None))
    assert condition.at == T0
    assert condition.holds(stored(A, T0))
    assert not condition.holds(stored(A, T0 + timedelta(seconds=1)))


@pytest.mark.parametrize(
    ("at", "before"),
    [
        (T0, T0 + timedelta(seconds=1)),
        (T0 + timedelta(microseconds=500_000), T0 + timedelta(seconds=1)),
    ],
    ids=["whole-second", "fraction-dropped"],
)
def test_before_is_the_exclusive_bound(at: datetime, before: datetime) -> None:
    """before is the start of the second after ``at``."""
    assert UnmodifiedSince(at).before == before


LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
FIRST = datetime(1, 1, 1, tzinfo=UTC)
# Fixed offsets up to a day either way: a time near an end of the range in such a zone
# lies past that end in UTC.
zones = st.just(UTC) | st.builds(
    timezone, st.integers(-1439, 1439).map(lambda minutes: timedelta(minutes=minutes))
)
# Any time a datetime holds, the ends of the range drawn often.
any_moments = st.one_of(
    st.datetimes(timezones=zones),
    st.sampled_from([FIRST, LAST_SECOND, datetime.max.replace(tzinfo=UTC)]),
    st.builds(
        lambda naive, zone: naive.replace(tzinfo=zone),
        st.sampled_from([datetime.min, datetime.max, LAST_SECOND.replace(tzinfo=None)]),
        zones,
    ),
)


def storable(moment: datetime) -> bool:
    """Whether a store (which keeps UTC) can hold ``moment``: its UTC time is a datetime."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


@given(any_moments, any_moments.filter(storable))
def test_before_agrees_with_holds(at: datetime, modified: datetime) -> None:
    """For every time a store can hold, comparing ``modified < before`` (no bound: true)
    decides exactly as holds()."""
    condition = UnmodifiedSince(at)
    before = condition.before
    assert (before is None or modified < before) == condition.holds(stored(A, modified))


def test_the_last_second_has_no_bound() -> None:
    """If-Unmodified-Since in the last second of year 9999: every stored time meets it."""
    condition = UnmodifiedSince(LAST_SECOND)
    assert condition.before is None
    assert condition.holds(stored(A, datetime.max.replace(tzinfo=UTC)))


def test_a_bound_before_the_first_moment_is_the_first_moment() -> None:
    """A date before 0001-01-01 UTC (in an eastern zone) is a bound no stored time is below."""
    east = datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5)))
    condition = UnmodifiedSince(east)
    assert condition.before == FIRST
    assert not condition.holds(stored(A, FIRST))


def test_all_of_nothing_is_always() -> None:
    """An empty conjunction is ALWAYS: an unconditional write."""
    assert all_of([]) is ALWAYS


def test_all_of_one_is_itself() -> None:
    """A single part is returned unwrapped."""
    part = TagIn((A,))
    assert all_of([part]) is part


def test_all_of_drops_always() -> None:
    """ALWAYS parts add nothing and disappear."""
    assert all_of([ALWAYS, EXISTS, ALWAYS]) is EXISTS
    assert all_of([ALWAYS, ALWAYS]) is ALWAYS


def test_all_of_never_wins() -> None:
    """Any NEVER part makes the whole NEVER, whatever else there is."""
    assert all_of([EXISTS, NEVER, TagIn((A,))]) is NEVER


def test_all_of_flattens_nested_conjunctions() -> None:
    """Nested AllOf parts are spliced in, keeping their order."""
    inner = AllOf((EXISTS, TagIn((A,))))
    assert all_of([inner, Not(ABSENT)]) == AllOf((EXISTS, TagIn((A,)), Not(ABSENT)))


def test_all_of_keeps_order() -> None:
    """Parts appear in the order given, so a compiled WHERE clause is predictable."""
    parts = [TagIn((A,)), UnmodifiedSince(T0), Not(TagIn((B,), Comparison.WEAK))]
    assert all_of(parts) == AllOf(tuple(parts))


conditions: st.SearchStrategy[Condition] = st.recursive(
    st.sampled_from([ALWAYS, NEVER, EXISTS, ABSENT])
    | st.builds(TagIn, st.lists(tag_strategy, max_size=2).map(tuple), st.sampled_from(Comparison))
    | st.builds(UnmodifiedSince, st.just(T0)),
    lambda inner: st.builds(Not, inner) | st.lists(inner, max_size=3).map(tuple).map(AllOf),
    max_leaves=8,
)
states = st.one_of(
    st.just(MISSING),
    st.builds(
        stored,
        st.none() | tag_strategy,
        st.none() | st.sampled_from([T0, T0 + timedelta(seconds=1)]),
    ),
)


@given(st.lists(conditions, max_size=4), states)
def test_all_of_means_conjunction(parts: list[Condition], state: ResourceState) -> None:
    """Whatever it simplifies, all_of holds exactly when every part holds."""
    assert all_of(parts).holds(state) == all(part.holds(state) for part in parts)

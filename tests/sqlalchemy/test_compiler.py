"""Compiled conditions mean what Condition.holds means (optimist.sqlalchemy.compiler)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, true

from optimist.conditions import (
    ABSENT,
    ALWAYS,
    EXISTS,
    NEVER,
    AllOf,
    Condition,
    Not,
    TagIn,
    UnmodifiedSince,
)
from optimist.etag import Comparison, EntityTag
from optimist.sqlalchemy import Record, Versioned, create, where
from tests.support.stores import Store, declare, open_store

pytestmark = pytest.mark.anyio

STORED_AT = datetime(2025, 1, 15, 10, 30, 0, 500_000, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def stored(store: Store, versioned: Versioned) -> Record:
    """A row whose opaque-tag is ``a`` and whose updated_at is STORED_AT."""
    record = await create(store.engine, versioned, {"id": "r"})
    async with store.engine.begin() as connection:
        await connection.execute(versioned.table.update().values(etag="a", updated_at=STORED_AT))
    return Record({**record.values, "etag": "a"}, versioned.tag("a"), STORED_AT)


async def selects(store: Store, versioned: Versioned, condition: Condition) -> bool:
    """Whether the database finds the row under the compiled condition."""
    compiled = where(versioned, condition)
    if compiled is False:
        return False
    clause = true() if compiled is True else compiled
    async with store.engine.connect() as connection:
        count: int | None = await connection.scalar(
            select(func.count()).select_from(versioned.table).where(clause)
        )
    return count == 1


STRONG_A = EntityTag("a")
WEAK_A = EntityTag("a", weak=True)
OTHER = EntityTag("b")
SECOND = timedelta(seconds=1)

TABLE = [
    (ALWAYS, True),
    (NEVER, False),
    (EXISTS, True),
    (ABSENT, False),
    (TagIn((STRONG_A,)), True),
    (TagIn((OTHER, STRONG_A)), True),
    (TagIn((OTHER,)), False),
    (TagIn((WEAK_A,)), False),
    (TagIn((WEAK_A,), Comparison.WEAK), True),
    (Not(TagIn((STRONG_A,), Comparison.WEAK)), False),
    (Not(TagIn((OTHER,), Comparison.WEAK)), True),
    (Not(ABSENT), True),
    (UnmodifiedSince(STORED_AT.replace(microsecond=0)), True),
    (UnmodifiedSince(STORED_AT.replace(microsecond=0) - SECOND), False),
    (AllOf((TagIn((STRONG_A,)), Not(TagIn((OTHER,), Comparison.WEAK)))), True),
    (AllOf((TagIn((STRONG_A,)), NEVER)), False),
]
IDS = [
    "always",
    "never",
    "exists",
    "absent",
    "if-match-current",
    "if-match-list",
    "if-match-other",
    "if-match-weak-strongly",
    "if-match-weak-weakly",
    "if-none-match-current",
    "if-none-match-other",
    "not-absent",
    "unmodified-since-same-second",
    "unmodified-since-earlier",
    "if-match-and-if-none-match",
    "all-with-never",
]


@pytest.mark.parametrize(("condition", "expected"), TABLE, ids=IDS)
async def test_strong_table_decision_table(
    store: Store, condition: Condition, expected: bool
) -> None:
    """On a strong-tag table, the database selects the row exactly when the condition holds."""
    record = await stored(store, store.items)
    assert condition.holds(record.state) is expected
    assert await selects(store, store.items, condition) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (TagIn((WEAK_A,)), False),
        (TagIn((STRONG_A,)), False),
        (TagIn((WEAK_A,), Comparison.WEAK), True),
        (TagIn((STRONG_A,), Comparison.WEAK), True),
        (Not(TagIn((STRONG_A,), Comparison.WEAK)), False),
    ],
    ids=["strong-weak", "strong-strong", "weak-weak", "weak-strong", "if-none-match"],
)
async def test_weak_table_decision_table(
    store: Store, condition: Condition, expected: bool
) -> None:
    """On a weak-tag table, only the weak comparison ever matches (RFC 9110 §8.8.3.2)."""
    record = await stored(store, store.weak_items)
    assert condition.holds(record.state) is expected
    assert await selects(store, store.weak_items, condition) is expected


@pytest.mark.parametrize(
    ("condition", "folded"),
    [
        (ALWAYS, True),
        (NEVER, False),
        (EXISTS, True),
        (ABSENT, False),
        (Not(NEVER), True),
        (AllOf((EXISTS, ALWAYS)), True),
        (AllOf((TagIn((STRONG_A,)), ABSENT)), False),
        (TagIn(()), False),
    ],
    ids=["always", "never", "exists", "absent", "not-never", "all-true", "all-false", "no-tags"],
)
def test_constant_conditions_fold(condition: Condition, folded: bool) -> None:
    """Conditions that need no SQL compile to a constant, so writes can skip the statement."""
    items, _ = declare()
    assert where(items, condition) is folded


def test_strong_if_match_on_weak_table_folds_to_false() -> None:
    """A strong comparison against weak stored tags can never match: no statement needed."""
    _, weak_items = declare()
    assert where(weak_items, TagIn((STRONG_A,))) is False


def test_unknown_condition_is_a_type_error() -> None:
    """A condition class the compiler does not know is refused, not ignored."""
    items, _ = declare()

    class Custom(Condition):
        __slots__ = ()

    with pytest.raises(TypeError):
        where(items, Custom())


tags = st.sampled_from([STRONG_A, WEAK_A, OTHER, EntityTag("b", weak=True)])
comparisons = st.sampled_from(list(Comparison))
moments = st.integers(min_value=-3, max_value=3).map(
    lambda s: STORED_AT.replace(microsecond=0) + timedelta(seconds=s)
)
leaves = st.one_of(
    st.sampled_from([ALWAYS, NEVER, EXISTS, ABSENT]),
    st.builds(TagIn, st.lists(tags, min_size=1, max_size=3).map(tuple), comparisons),
    st.builds(UnmodifiedSince, moments),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(AllOf, st.lists(inner, min_size=1, max_size=3).map(tuple)),
    ),
    max_leaves=6,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(condition=conditions, weak=st.booleans())
async def test_compiled_condition_agrees_with_holds(
    store: Store, condition: Condition, weak: bool
) -> None:
    """Law: for any condition, the database selects the stored row iff the condition holds."""
    versioned = store.weak_items if weak else store.items
    async with store.engine.begin() as connection:
        await connection.execute(versioned.table.delete())
    record = await stored(store, versioned)
    assert await selects(store, versioned, condition) is condition.holds(record.state)

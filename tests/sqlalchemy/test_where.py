"""Translated conditions mean what Condition.holds means (optimist.sqlalchemy._where)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, func, select, true

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
from optimist.errors import PreconditionFailed
from optimist.etag import Comparison, EntityTag
from optimist.sqlalchemy import Record, Versioned, create, update, where
from optimist.sqlalchemy._where import Form, Guard, guard_holds, predicate
from tests.support.stores import Store, declare, open_store

pytestmark = pytest.mark.anyio

STORED_AT = datetime(2025, 1, 15, 10, 30, 0, 500_000, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


async def stored(store: Store, versioned: Versioned, updated_at: datetime = STORED_AT) -> Record:
    """A row whose opaque-tag is ``a`` and whose updated_at is ``updated_at``."""
    record = await create(store.engine, versioned, {"id": "r"})
    async with store.engine.begin() as connection:
        await connection.execute(versioned.table.update().values(etag="a", updated_at=updated_at))
    return Record({**record.values, "etag": "a"}, versioned.tag("a"), updated_at)


async def finds(store: Store, versioned: Versioned, clause: ColumnElement[bool] | None) -> bool:
    """Whether the database finds the row under ``clause`` (None: no clause)."""
    async with store.engine.connect() as connection:
        count: int | None = await connection.scalar(
            select(func.count())
            .select_from(versioned.table)
            .where(true() if clause is None else clause)
        )
    return count == 1


async def selects(store: Store, versioned: Versioned, condition: Condition) -> bool:
    """Whether the database finds the row under the compiled condition."""
    compiled = where(versioned, condition)
    if compiled is False:
        return False
    return await finds(store, versioned, None if compiled is True else compiled)


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


@pytest.mark.parametrize(("condition", "expected"), TABLE, ids=IDS)
async def test_a_predicate_selects_the_row_exactly_when_the_condition_holds(
    store: Store, condition: Condition, expected: bool
) -> None:
    """A predicate's SQL, a tag to expect included, means what the condition means."""
    await stored(store, store.items)
    test = predicate(store.items, condition)
    assert await finds(store, store.items, test.sql(store.items)) is expected


@pytest.mark.parametrize(
    ("condition", "guard", "form"),
    [
        (ALWAYS, None, Form.ALWAYS),
        (EXISTS, None, Form.ALWAYS),
        (ALWAYS, {}, Form.ALWAYS),
        (NEVER, None, Form.NEVER),
        (ABSENT, None, Form.NEVER),
        (TagIn((STRONG_A,)), None, Form.TAG),
        (TagIn((OTHER, STRONG_A)), None, Form.CLAUSE),
        (UnmodifiedSince(STORED_AT), None, Form.CLAUSE),
        (Not(TagIn((STRONG_A,), Comparison.WEAK)), None, Form.CLAUSE),
        (ALWAYS, {"name": ("x",)}, Form.CLAUSE),
        (TagIn((STRONG_A,)), {"name": ("x",)}, Form.CLAUSE),
        (NEVER, {"name": ("x",)}, Form.NEVER),
    ],
    ids=[
        "always",
        "exists",
        "empty-guard",
        "never",
        "absent",
        "one-strong-tag",
        "two-tags",
        "unmodified-since",
        "if-none-match",
        "guard-alone",
        "tag-and-guard",
        "never-with-guard",
    ],
)
def test_a_predicate_takes_the_form_that_picks_the_statement(
    condition: Condition, guard: Guard | None, form: Form
) -> None:
    """Constants fold, one tag alone is a tag to bind, anything else (a guard too) is SQL."""
    items, _ = declare()
    assert predicate(items, condition, guard).form is form


@pytest.mark.parametrize(
    ("weak", "condition"),
    [(False, TagIn((STRONG_A,))), (True, TagIn((WEAK_A,), Comparison.WEAK))],
    ids=["strong-table", "weak-table-weakly"],
)
def test_a_tag_predicate_carries_the_stored_opaque_tag(weak: bool, condition: Condition) -> None:
    """The tag to expect is the opaque-tag as stored, without quotes or W/."""
    items, weak_items = declare()
    test = predicate(weak_items if weak else items, condition)
    assert (test.form, test.tag) == (Form.TAG, "a")


def test_a_strong_tag_on_a_weak_table_is_never() -> None:
    """RFC 9110 §8.8.3.2: a strong If-Match on weak stored tags is no tag to expect."""
    _, weak_items = declare()
    assert predicate(weak_items, TagIn((STRONG_A,))).form is Form.NEVER


@pytest.mark.parametrize(
    "guard",
    [{"tenant": (1,)}, {"tenant": (2,)}, {"tenant": (2, 1), "counter": (0,)}, {"tenant": ()}],
    ids=["holds", "fails", "several-columns", "no-values"],
)
async def test_a_guard_selects_the_row_exactly_when_it_holds_in_python(
    store: Store, guard: Guard
) -> None:
    """A guard's SQL and guard_holds agree about the stored row."""
    record = await stored(store, store.items)
    test = predicate(store.items, ALWAYS, guard)
    assert await finds(store, store.items, test.sql(store.items)) is guard_holds(record, guard)


@pytest.mark.parametrize(
    ("guard", "error"),
    [({"nope": ("x",)}, ValueError), ({"name": "submitted"}, TypeError)],
    ids=["unknown-column", "string-not-collection"],
)
def test_a_malformed_guard_is_refused(guard: Guard, error: type[Exception]) -> None:
    """An unknown column, or a string where a collection belongs, is a programming error."""
    items, _ = declare()
    with pytest.raises(error):
        predicate(items, ALWAYS, guard)


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


FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
# Stored times are UTC; the ends of the range drawn often.
utc_times = st.one_of(
    st.sampled_from([FIRST, FIRST + SECOND / 2, LAST_SECOND, datetime.max.replace(tzinfo=UTC)]),
    st.datetimes(timezones=st.just(UTC)),
)
# A condition's date may be in any zone, even one that puts it past an end in UTC.
zoned_times = utc_times | st.builds(
    lambda naive, minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.sampled_from([datetime.min, datetime.max, LAST_SECOND.replace(tzinfo=None)]),
    st.integers(-1439, 1439),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(at=zoned_times, updated_at=utc_times)
async def test_unmodified_since_agrees_with_holds_at_the_ends_of_time(
    store: Store, at: datetime, updated_at: datetime
) -> None:
    """Law: at year 1 and 9999 the database selects the row iff If-Unmodified-Since holds."""
    async with store.engine.begin() as connection:
        await connection.execute(store.items.table.delete())
    record = await stored(store, store.items, updated_at)
    condition = UnmodifiedSince(at)
    assert await selects(store, store.items, condition) is condition.holds(record.state)


async def test_an_update_if_unmodified_since_the_last_second_of_9999_applies(
    store: Store,
) -> None:
    """If-Unmodified-Since: Fri, 31 Dec 9999 23:59:59 GMT without If-Match: the write applies."""
    await create(store.engine, store.items, {"id": "r", "name": "before"})
    condition = UnmodifiedSince(LAST_SECOND)
    written = await update(store.engine, store.items, "r", {"name": "after"}, condition=condition)
    assert written["name"] == "after"


async def test_an_update_if_unmodified_since_year_one_is_refused(store: Store) -> None:
    """If-Unmodified-Since of year 1: every stored row is newer, so a 412."""
    await create(store.engine, store.items, {"id": "r", "name": "before"})
    with pytest.raises(PreconditionFailed):
        await update(
            store.engine, store.items, "r", {"name": "after"}, condition=UnmodifiedSince(FIRST)
        )

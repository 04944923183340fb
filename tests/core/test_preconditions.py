"""Conditional requests: parsing the four fields, RFC 9110 §13.2.2 evaluation
step by step, and the law that binds the write condition to the evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TypedDict, TypeVar, Unpack

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimist import conditions as c
from optimist.etag import ANY, Comparison, EntityTag, format_list
from optimist.httpdate import http_date
from optimist.preconditions import (
    Malformed,
    Outcome,
    Preconditions,
    ResourceState,
    evaluate,
)

PROCEED, NOT_MODIFIED, FAILED = (
    Outcome.PROCEED,
    Outcome.NOT_MODIFIED,
    Outcome.PRECONDITION_FAILED,
)
STRONG, WEAK = Comparison.STRONG, Comparison.WEAK

# The example date of RFC 9110 §5.6.7 in its three formats.
EXAMPLE = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
RFC850 = "Sunday, 06-Nov-94 08:49:37 GMT"
ASCTIME = "Sun Nov  6 08:49:37 1994"

T0 = datetime(2025, 1, 15, 10, 30, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
A, B, WA = EntityTag("a"), EntityTag("b"), EntityTag("a", weak=True)
T = TypeVar("T")


class Fields(TypedDict, total=False):
    """Raw precondition field values, as keyword arguments of Preconditions.parse."""

    if_match: str
    if_none_match: str
    if_modified_since: str
    if_unmodified_since: str


# --- Parsing the four fields --------------------------------------------------------


def test_parse_keeps_a_malformed_tag_field() -> None:
    """A malformed If-Match / If-None-Match is kept, with the reason, not dropped."""
    parsed = Preconditions.parse(if_match="nope", if_none_match='"a" "b"')
    assert parsed.if_match == Malformed("nope", "expected '\"' to open an opaque-tag at position 0")
    assert isinstance(parsed.if_none_match, Malformed)
    assert parsed.if_none_match.value == '"a" "b"'
    assert parsed.if_none_match.reason.endswith("at position 4")


def test_parse_reads_tags_and_dates() -> None:
    """Valid fields become tags, ANY and aware datetimes."""
    parsed = Preconditions.parse(
        if_match='"a", W/"b"', if_none_match="*", if_modified_since=IMF, if_unmodified_since=ASCTIME
    )
    assert parsed == Preconditions(
        if_match=(A, EntityTag("b", weak=True)),
        if_none_match=ANY,
        if_modified_since=EXAMPLE,
        if_unmodified_since=EXAMPLE,
    )


def test_parse_drops_invalid_dates() -> None:
    """§13.1.3, §13.1.4: an invalid HTTP-date is ignored, as if it was not sent."""
    parsed = Preconditions.parse(if_modified_since="yesterday", if_unmodified_since=f"{IMF}, {IMF}")
    assert parsed == Preconditions()
    assert not parsed.is_conditional


def test_parse_passes_allow_bare_to_both_tag_fields() -> None:
    """allow_bare lets a bare token through in If-Match and If-None-Match alike."""
    parsed = Preconditions.parse(if_match="abc", if_none_match="def", allow_bare=True)
    assert parsed.if_match == (EntityTag("abc"),)
    assert parsed.if_none_match == (EntityTag("def"),)
    assert isinstance(Preconditions.parse(if_match="abc").if_match, Malformed)


def test_from_headers_reads_lower_case_keys() -> None:
    """from_headers takes the lower-case names ASGI and httpx give."""
    headers = {
        "if-match": '"a"',
        "if-none-match": 'W/"b"',
        "if-modified-since": IMF,
        "if-unmodified-since": RFC850,
        "content-type": "application/json",
    }
    assert Preconditions.from_headers(headers) == Preconditions(
        if_match=(A,),
        if_none_match=(EntityTag("b", weak=True),),
        if_modified_since=EXAMPLE,
        if_unmodified_since=EXAMPLE,
    )
    assert Preconditions.from_headers({"if-match": "abc"}, allow_bare=True).if_match == (
        EntityTag("abc"),
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, False),
        ({"if_match": '"a"'}, True),
        ({"if_match": "nope"}, True),
        ({"if_none_match": "*"}, True),
        ({"if_none_match": "nope"}, True),
        ({"if_modified_since": IMF}, True),
        ({"if_unmodified_since": IMF}, True),
        ({"if_unmodified_since": "nope"}, False),
    ],
    ids=[
        "nothing",
        "if-match",
        "malformed-if-match",
        "if-none-match",
        "malformed-if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "invalid-date-ignored",
    ],
)
def test_is_conditional(fields: Fields, expected: bool) -> None:
    """A request is conditional when a field was sent, malformed tags included."""
    assert Preconditions.parse(**fields).is_conditional is expected


header_text = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(exclude_categories=())),
    st.sampled_from(["*", '"a"', 'W/"a", "b"', IMF, RFC850, ASCTIME, "", ","]),
)


@given(header_text, header_text, header_text, header_text, st.booleans())
def test_parse_never_raises(
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    allow_bare: bool,
) -> None:
    """Whatever the four fields hold, Preconditions.parse returns a value."""
    parsed = Preconditions.parse(
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
        allow_bare=allow_bare,
    )
    assert (parsed.if_match is None) == (if_match is None)
    assert (parsed.if_none_match is None) == (if_none_match is None)


# --- Evaluation, RFC 9110 §13.2.2 in order ---------------------------------------------


def stored(etag: EntityTag | None = A, last_modified: datetime | None = T0) -> ResourceState:
    """A state of an existing resource."""
    return ResourceState(exists=True, etag=etag, last_modified=last_modified)


MISSING = ResourceState.missing()


def decide(
    method: str, state: ResourceState, comparison: Comparison = STRONG, **fields: Unpack[Fields]
) -> Outcome:
    """Parse raw field values and evaluate them, as an integration does."""
    return evaluate(Preconditions.parse(**fields), method, state, comparison=comparison)


def test_no_preconditions_proceed() -> None:
    """Step 5: without preconditions every method proceeds."""
    for method in ("GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"):
        assert decide(method, stored()) is PROCEED
        assert decide(method, MISSING) is PROCEED


IF_MATCH_TABLE = [
    ("PUT", stored(A), STRONG, '"a"', PROCEED),
    ("PUT", stored(A), STRONG, '"b"', FAILED),
    ("PUT", stored(A), STRONG, '"b", "a"', PROCEED),
    ("PUT", stored(A), STRONG, '"b", , "c"', FAILED),
    ("PUT", stored(A), STRONG, "*", PROCEED),
    ("PUT", MISSING, STRONG, "*", FAILED),
    ("PUT", MISSING, STRONG, '"a"', FAILED),
    ("PUT", stored(None), STRONG, '"a"', FAILED),
    ("PUT", stored(None), STRONG, "*", PROCEED),
    ("PUT", stored(A), STRONG, "a", FAILED),
    ("PUT", stored(A), STRONG, '"a" "b"', FAILED),
    ("PUT", stored(A), STRONG, "", FAILED),
    ("PUT", stored(A), STRONG, 'W/"a"', FAILED),
    ("PUT", stored(WA), STRONG, '"a"', FAILED),
    ("PUT", stored(WA), STRONG, 'W/"a"', FAILED),
    ("PUT", stored(A), WEAK, 'W/"a"', PROCEED),
    ("PUT", stored(WA), WEAK, 'W/"a"', PROCEED),
    ("PUT", stored(WA), WEAK, '"a"', PROCEED),
    ("PUT", stored(WA), WEAK, 'W/"b"', FAILED),
    ("DELETE", stored(A), STRONG, '"b"', FAILED),
    ("PATCH", stored(A), STRONG, '"a"', PROCEED),
    ("POST", stored(A), STRONG, '"b"', FAILED),
    ("GET", stored(A), STRONG, '"b"', FAILED),
    ("HEAD", stored(A), STRONG, "nope", FAILED),
    ("GET", stored(A), STRONG, '"a"', PROCEED),
]


@pytest.mark.parametrize(
    ("method", "state", "comparison", "if_match", "outcome"),
    IF_MATCH_TABLE,
    ids=[
        "match",
        "no-match",
        "match-in-list",
        "no-match-in-list-with-empty-element",
        "wildcard-exists",
        "wildcard-missing",
        "list-missing",
        "list-no-stored-tag",
        "wildcard-no-stored-tag",
        "malformed-bare",
        "malformed-missing-comma",
        "empty-list-matches-nothing",
        "strong-weak-sent",
        "strong-weak-stored",
        "strong-both-weak",
        "weak-mode-weak-sent",
        "weak-mode-both-weak",
        "weak-mode-weak-stored",
        "weak-mode-different",
        "delete-no-match",
        "patch-match",
        "post-no-match",
        "get-no-match-is-412-not-304",
        "head-malformed",
        "get-match",
    ],
)
def test_step_1_if_match(
    method: str, state: ResourceState, comparison: Comparison, if_match: str, outcome: Outcome
) -> None:
    """Step 1: If-Match false (no match, missing, malformed) → 412, whatever the method."""
    assert decide(method, state, comparison, if_match=if_match) is outcome


IF_UNMODIFIED_SINCE_TABLE = [
    ({"if_unmodified_since": http_date(T0)}, stored(A, T0), PROCEED),
    ({"if_unmodified_since": http_date(T0)}, stored(A, T0 - SECOND), PROCEED),
    ({"if_unmodified_since": http_date(T0)}, stored(A, T0 + SECOND), FAILED),
    ({"if_unmodified_since": http_date(T0)}, stored(A, T0 + SECOND / 2), PROCEED),
    ({"if_unmodified_since": http_date(T0)}, stored(A, None), PROCEED),
    ({"if_unmodified_since": http_date(T0)}, MISSING, PROCEED),
    ({"if_unmodified_since": "not a date"}, stored(A, T0 + SECOND), PROCEED),
    ({"if_unmodified_since": http_date(T0), "if_match": '"a"'}, stored(A, T0 + SECOND), PROCEED),
    ({"if_unmodified_since": http_date(T0), "if_match": "*"}, stored(A, T0 + SECOND), PROCEED),
    ({"if_unmodified_since": http_date(T0), "if_match": '"b"'}, stored(A, T0 - SECOND), FAILED),
    ({"if_unmodified_since": http_date(T0), "if_match": "nope"}, stored(A, T0 - SECOND), FAILED),
    ({"if_unmodified_since": "Tuesday, 15-Jan-25 10:30:00 GMT"}, stored(A, T0 + SECOND), FAILED),
    ({"if_unmodified_since": "Wed Jan 15 10:30:00 2025"}, stored(A, T0), PROCEED),
]


@pytest.mark.parametrize(
    ("fields", "state", "outcome"),
    IF_UNMODIFIED_SINCE_TABLE,
    ids=[
        "same-second",
        "earlier",
        "later",
        "fraction-within-the-second",
        "no-modification-date",
        "missing-resource",
        "invalid-date-ignored",
        "ignored-when-if-match-passes",
        "ignored-when-if-match-wildcard-passes",
        "if-match-fails-first",
        "malformed-if-match-fails-first",
        "rfc850-date-later",
        "asctime-date-same-second",
    ],
)
def test_step_2_if_unmodified_since(fields: Fields, state: ResourceState, outcome: Outcome) -> None:
    """Step 2: If-Unmodified-Since only without If-Match; modified after it → 412."""
    assert decide("PUT", state, **fields) is outcome


IF_NONE_MATCH_TABLE = [
    ("GET", stored(A), "*", NOT_MODIFIED),
    ("HEAD", stored(A), "*", NOT_MODIFIED),
    ("PUT", stored(A), "*", FAILED),
    ("POST", stored(A), "*", FAILED),
    ("PUT", MISSING, "*", PROCEED),
    ("GET", MISSING, "*", PROCEED),
    ("GET", stored(A), '"a"', NOT_MODIFIED),
    ("HEAD", stored(A), '"b", "a"', NOT_MODIFIED),
    ("PUT", stored(A), '"a"', FAILED),
    ("DELETE", stored(A), '"a"', FAILED),
    ("PATCH", stored(A), '"b", "a"', FAILED),
    ("GET", stored(A), '"b"', PROCEED),
    ("PUT", stored(A), '"b"', PROCEED),
    ("GET", stored(A), 'W/"a"', NOT_MODIFIED),
    ("GET", stored(WA), '"a"', NOT_MODIFIED),
    ("GET", stored(WA), 'W/"a"', NOT_MODIFIED),
    ("PUT", stored(WA), '"a"', FAILED),
    ("GET", MISSING, '"a"', PROCEED),
    ("GET", stored(None), '"a"', PROCEED),
    ("GET", stored(A), "nope", PROCEED),
    ("PUT", stored(A), '"a" "a"', PROCEED),
    ("DELETE", stored(A), "", PROCEED),
    ("get", stored(A), '"a"', NOT_MODIFIED),
]


@pytest.mark.parametrize(
    ("method", "state", "if_none_match", "outcome"),
    IF_NONE_MATCH_TABLE,
    ids=[
        "wildcard-get",
        "wildcard-head",
        "wildcard-put",
        "wildcard-post",
        "wildcard-put-create",
        "wildcard-get-missing",
        "match-get",
        "match-in-list-head",
        "match-put",
        "match-delete",
        "match-in-list-patch",
        "no-match-get",
        "no-match-put",
        "weak-sent-strong-stored",
        "strong-sent-weak-stored",
        "both-weak",
        "weak-comparison-put",
        "list-missing-resource",
        "list-no-stored-tag",
        "malformed-get",
        "malformed-put",
        "empty-list-delete",
        "lower-case-method",
    ],
)
def test_step_3_if_none_match(
    method: str, state: ResourceState, if_none_match: str, outcome: Outcome
) -> None:
    """Step 3: If-None-Match false → 304 for GET/HEAD, 412 otherwise; weak comparison."""
    assert decide(method, state, if_none_match=if_none_match) is outcome


ORDER_TABLE = [
    ("GET", {"if_match": '"a"', "if_none_match": '"a"'}, NOT_MODIFIED),
    ("PUT", {"if_match": '"a"', "if_none_match": '"a"'}, FAILED),
    ("GET", {"if_match": '"b"', "if_none_match": '"a"'}, FAILED),
    ("GET", {"if_unmodified_since": http_date(T0 - SECOND), "if_none_match": '"a"'}, FAILED),
    ("GET", {"if_unmodified_since": http_date(T0), "if_none_match": '"a"'}, NOT_MODIFIED),
    ("PUT", {"if_match": '"a"', "if_none_match": '"b"'}, PROCEED),
    ("PUT", {"if_match": "*", "if_none_match": "*"}, FAILED),
    ("GET", {"if_match": "nope", "if_none_match": "nope"}, FAILED),
]


@pytest.mark.parametrize(
    ("method", "fields", "outcome"),
    ORDER_TABLE,
    ids=[
        "if-match-passes-then-if-none-match-304",
        "if-match-passes-then-if-none-match-412",
        "if-match-412-before-if-none-match-304",
        "if-unmodified-since-412-before-if-none-match-304",
        "if-unmodified-since-passes-then-if-none-match-304",
        "both-pass",
        "exists-and-absent",
        "malformed-if-match-before-malformed-if-none-match",
    ],
)
def test_steps_run_in_order(method: str, fields: Fields, outcome: Outcome) -> None:
    """Steps 1 to 3 are evaluated in the RFC's order and the first false one decides."""
    assert decide(method, stored(A, T0), **fields) is outcome


IF_MODIFIED_SINCE_TABLE = [
    ("GET", {"if_modified_since": http_date(T0)}, stored(A, T0), NOT_MODIFIED),
    ("HEAD", {"if_modified_since": http_date(T0)}, stored(A, T0), NOT_MODIFIED),
    ("GET", {"if_modified_since": http_date(T0)}, stored(A, T0 - SECOND), NOT_MODIFIED),
    ("GET", {"if_modified_since": http_date(T0)}, stored(A, T0 + SECOND / 2), NOT_MODIFIED),
    ("GET", {"if_modified_since": http_date(T0)}, stored(A, T0 + SECOND), PROCEED),
    ("GET", {"if_modified_since": RFC850}, stored(A, EXAMPLE), NOT_MODIFIED),
    ("GET", {"if_modified_since": ASCTIME}, stored(A, EXAMPLE), NOT_MODIFIED),
    ("PUT", {"if_modified_since": http_date(T0)}, stored(A, T0), PROCEED),
    ("DELETE", {"if_modified_since": http_date(T0)}, stored(A, T0), PROCEED),
    ("POST", {"if_modified_since": http_date(T0)}, stored(A, T0), PROCEED),
    ("GET", {"if_modified_since": http_date(T0), "if_none_match": '"b"'}, stored(A, T0), PROCEED),
    ("GET", {"if_modified_since": http_date(T0), "if_none_match": "nope"}, stored(A, T0), PROCEED),
    ("GET", {"if_modified_since": "not a date"}, stored(A, T0), PROCEED),
    ("GET", {"if_modified_since": f"{IMF}, {IMF}"}, stored(A, EXAMPLE), PROCEED),
    ("GET", {"if_modified_since": http_date(T0)}, MISSING, PROCEED),
    ("GET", {"if_modified_since": http_date(T0)}, stored(A, None), PROCEED),
    (
        "GET",
        {"if_modified_since": http_date(T0), "if_unmodified_since": http_date(T0)},
        stored(A, T0),
        NOT_MODIFIED,
    ),
    ("GET", {"if_modified_since": http_date(T0), "if_match": '"b"'}, stored(A, T0), FAILED),
]


@pytest.mark.parametrize(
    ("method", "fields", "state", "outcome"),
    IF_MODIFIED_SINCE_TABLE,
    ids=[
        "get-same-second",
        "head-same-second",
        "get-earlier",
        "get-fraction-within-the-second",
        "get-later",
        "rfc850-date",
        "asctime-date",
        "ignored-for-put",
        "ignored-for-delete",
        "ignored-for-post",
        "ignored-with-if-none-match",
        "ignored-with-malformed-if-none-match",
        "invalid-date-ignored",
        "list-of-dates-ignored",
        "missing-resource",
        "no-modification-date",
        "after-if-unmodified-since-passes",
        "if-match-412-first",
    ],
)
def test_step_4_if_modified_since(
    method: str, fields: Fields, state: ResourceState, outcome: Outcome
) -> None:
    """Step 4: GET/HEAD without If-None-Match; not modified since the date → 304."""
    assert decide(method, state, **fields) is outcome


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "options"])
def test_methods_that_select_no_representation_ignore_preconditions(method: str) -> None:
    """§13.2.1: a server MUST ignore the fields for CONNECT, OPTIONS and TRACE."""
    fields: Fields = {"if_match": '"b"', "if_none_match": "*", "if_modified_since": http_date(T0)}
    assert decide(method, stored(A, T0), **fields) is PROCEED


def test_comparison_applies_to_if_match_only() -> None:
    """Weak If-Match comparison leaves If-None-Match weak and strong mode leaves it weak too."""
    for comparison in Comparison:
        assert decide("GET", stored(WA), comparison, if_none_match='"a"') is NOT_MODIFIED


def test_evaluate_accepts_naive_datetimes() -> None:
    """Naive times, in the state or in directly built preconditions, are read as UTC."""
    naive = T0.replace(tzinfo=None)
    preconditions = Preconditions(if_modified_since=naive, if_unmodified_since=naive)
    assert evaluate(preconditions, "GET", stored(A, naive)) is NOT_MODIFIED
    assert evaluate(preconditions, "PUT", stored(A, naive + SECOND)) is FAILED


def test_evaluate_compares_across_zones() -> None:
    """Times in other zones are compared as the instants they are."""
    east = timezone(timedelta(hours=9))
    preconditions = Preconditions(if_modified_since=T0.astimezone(east))
    assert evaluate(preconditions, "GET", stored(A, T0)) is NOT_MODIFIED
    assert evaluate(preconditions, "GET", stored(A, T0 + SECOND)) is PROCEED


# --- The write condition ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "comparison", "condition"),
    [
        ({}, STRONG, c.ALWAYS),
        ({"if_match": '"a", W/"b"'}, STRONG, c.TagIn((A, EntityTag("b", weak=True)), STRONG)),
        ({"if_match": '"a"'}, WEAK, c.TagIn((A,), WEAK)),
        ({"if_match": "*"}, STRONG, c.EXISTS),
        ({"if_match": "nope"}, STRONG, c.NEVER),
        ({"if_unmodified_since": IMF}, STRONG, c.UnmodifiedSince(EXAMPLE)),
        ({"if_unmodified_since": IMF, "if_match": '"a"'}, STRONG, c.TagIn((A,))),
        ({"if_unmodified_since": "nope"}, STRONG, c.ALWAYS),
        ({"if_none_match": "*"}, STRONG, c.ABSENT),
        ({"if_none_match": '"a"'}, STRONG, c.Not(c.TagIn((A,), WEAK))),
        ({"if_none_match": "nope"}, STRONG, c.ALWAYS),
        ({"if_match": '"a"', "if_none_match": "*"}, STRONG, c.AllOf((c.TagIn((A,)), c.ABSENT))),
        ({"if_match": "nope", "if_none_match": "*"}, STRONG, c.NEVER),
        ({"if_modified_since": IMF}, STRONG, c.ALWAYS),
    ],
    ids=[
        "unconditional",
        "if-match-list",
        "if-match-weak-mode",
        "if-match-wildcard",
        "if-match-malformed",
        "if-unmodified-since",
        "if-unmodified-since-ignored-with-if-match",
        "if-unmodified-since-invalid",
        "if-none-match-wildcard",
        "if-none-match-list",
        "if-none-match-malformed",
        "if-match-and-if-none-match",
        "malformed-if-match-wins",
        "if-modified-since-not-for-writes",
    ],
)
def test_write_condition(fields: Fields, comparison: Comparison, condition: c.Condition) -> None:
    """Each field becomes the condition a store compiles into its write."""
    assert Preconditions.parse(**fields).write_condition(comparison) == condition


def test_write_condition_rounds_the_date_to_the_second() -> None:
    """A directly built If-Unmodified-Since with a fraction is compared at its second."""
    preconditions = Preconditions(if_unmodified_since=T0 + SECOND / 2)
    assert preconditions.write_condition() == c.UnmodifiedSince(T0)


POOL = ("a", "b")
pool_tags = st.builds(EntityTag, st.sampled_from(POOL), st.booleans())
moments = st.sampled_from([T0 - SECOND, T0, T0 + SECOND]).flatmap(
    lambda base: st.integers(0, 999_999).map(lambda us: base + timedelta(microseconds=us))
)
tag_fields = st.one_of(
    st.none(),
    st.just("*"),
    st.lists(pool_tags, min_size=1, max_size=3).map(format_list),
    st.sampled_from(["", ",", "a", '"a" "b"', "*, *", 'W/"a', "\x00"]),
    st.text(max_size=8),
)
date_fields = st.one_of(
    st.none(),
    moments.map(http_date),
    st.sampled_from(["", "yesterday", f"{IMF}, {IMF}", RFC850, ASCTIME]),
)
parsed_preconditions = st.builds(
    Preconditions.parse,
    if_match=tag_fields,
    if_none_match=tag_fields,
    if_modified_since=date_fields,
    if_unmodified_since=date_fields,
    allow_bare=st.booleans(),
)
built_preconditions = st.builds(
    Preconditions,
    if_match=st.none() | st.just(ANY) | st.lists(pool_tags, min_size=1, max_size=3).map(tuple),
    if_none_match=st.none()
    | st.just(ANY)
    | st.just(Malformed("x", "y"))
    | st.lists(pool_tags, min_size=1, max_size=3).map(tuple),
    if_modified_since=st.none() | moments,
    if_unmodified_since=st.none() | moments,
)


def mostly(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """Values of ``strategy``, or None one time in four."""
    return st.tuples(st.integers(0, 3), strategy).map(lambda pair: pair[1] if pair[0] else None)


states = st.tuples(st.integers(0, 4), mostly(pool_tags), mostly(moments)).map(
    lambda drawn: stored(drawn[1], drawn[2]) if drawn[0] else MISSING
)
EXCLUDED = {"GET", "HEAD", "CONNECT", "OPTIONS", "TRACE"}
unsafe_methods = st.one_of(
    st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "put", "Delete"]),
    st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True).filter(lambda m: m.upper() not in EXCLUDED),
)


@settings(max_examples=1000)
@given(
    st.one_of(parsed_preconditions, built_preconditions),
    unsafe_methods,
    states,
    st.sampled_from(Comparison),
)
def test_write_condition_holds_exactly_when_evaluate_proceeds(
    preconditions: Preconditions, method: str, state: ResourceState, comparison: Comparison
) -> None:
    """For every writing method, field combination and state, the two evaluations agree."""
    outcome = evaluate(preconditions, method, state, comparison=comparison)
    assert outcome is not NOT_MODIFIED
    assert preconditions.write_condition(comparison).holds(state) == (outcome is PROCEED)


@given(
    st.one_of(parsed_preconditions, built_preconditions),
    st.sampled_from(["GET", "HEAD", "PUT", "DELETE"]),
    st.builds(stored, st.none() | pool_tags, moments),
    st.sampled_from(Comparison),
)
def test_one_second_resolution(
    preconditions: Preconditions, method: str, state: ResourceState, comparison: Comparison
) -> None:
    """The fraction of a second of the stored modification time never changes the outcome."""
    assert state.last_modified is not None
    floored = ResourceState(
        exists=True, etag=state.etag, last_modified=state.last_modified.replace(microsecond=0)
    )
    assert evaluate(preconditions, method, state, comparison=comparison) is evaluate(
        preconditions, method, floored, comparison=comparison
    )


# --- The ends of the range ----------------------------------------------------------

FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
# HTTP dates are GMT (RFC 9110 §5.6.7); the ends of the range drawn often.
utc_moments = st.one_of(
    st.sampled_from([FIRST, LAST_SECOND, datetime.max.replace(tzinfo=UTC)]),
    st.datetimes(timezones=st.just(UTC)),
)
# A directly built precondition or a stored time may be in any zone, even one that puts
# it past an end of the range in UTC.
zoned_moments = utc_moments | st.builds(
    lambda naive, minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.sampled_from([datetime.min, datetime.max, LAST_SECOND.replace(tzinfo=None)]),
    st.integers(-1439, 1439),
)
edge_preconditions = st.one_of(
    st.builds(
        Preconditions.parse,
        if_match=st.none() | st.just("*") | st.just('"a"'),
        if_none_match=st.none() | st.just('"b"'),
        if_modified_since=st.none() | utc_moments.map(http_date),
        if_unmodified_since=st.none() | utc_moments.map(http_date),
    ),
    st.builds(
        Preconditions,
        if_modified_since=st.none() | zoned_moments,
        if_unmodified_since=st.none() | zoned_moments,
    ),
)


@given(edge_preconditions, unsafe_methods, st.builds(stored, st.just(A), zoned_moments))
def test_write_condition_agrees_with_evaluate_at_the_ends_of_time(
    preconditions: Preconditions, method: str, state: ResourceState
) -> None:
    """Dates of year 1 and 9999 are decided, never an error, and both evaluations agree."""
    outcome = evaluate(preconditions, method, state)
    assert preconditions.write_condition().holds(state) == (outcome is PROCEED)


@given(utc_moments, zoned_moments)
def test_if_modified_since_at_the_ends_of_time(since: datetime, modified: datetime) -> None:
    """A GET's If-Modified-Since at either end of the range: 304 iff not modified after it."""
    outcome = decide("GET", stored(A, modified), if_modified_since=http_date(since))
    unchanged = modified.replace(microsecond=0) <= since.replace(microsecond=0)
    assert outcome is (NOT_MODIFIED if unchanged else PROCEED)

"""Differential tests: optimist's entity tags against werkzeug and the ``etag`` package.

Where a library follows RFC 9110 it must agree with optimist. Where it deviates, the
deviation is written down here, never hidden: each deviating input is a strict xfail
(so that a fix upstream fails the suite until the listing is updated), and the
Hypothesis properties name the inputs they exclude. docs/etag-differential.md
tabulates the same deviations and says which side follows the RFC and why.

A *reading* is what a parser makes of an If-Match / If-None-Match field value: the
wildcard, the tags it holds, or "invalid". werkzeug never rejects a value; it returns
the tags it could salvage, so its reading of a malformed value is a (possibly empty)
set, which its own conditional-request code treats as a field that was not sent.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import etag as etag_pkg
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags, unquote_etag
from werkzeug.sansio.http import is_resource_modified

from optimist.errors import InvalidEntityTag
from optimist.etag import ANY, EntityTag, format_list, parse, parse_list
from optimist.preconditions import Outcome, Preconditions, ResourceState, evaluate

Tags: TypeAlias = tuple[tuple[str, bool], ...]
Reading: TypeAlias = Literal["*", "invalid"] | Tags
SetReading: TypeAlias = Literal["*", "invalid"] | frozenset[tuple[str, bool]]


def optimist_reading(value: str) -> Reading:
    """What optimist's parse_list makes of a field value."""
    try:
        match = parse_list(value)
    except InvalidEntityTag:
        return "invalid"
    if match is ANY:
        return "*"
    return tuple((tag.opaque, tag.weak) for tag in match)


def etag_reading(value: str) -> Reading:
    """What the etag package makes of a field value (is_wildcard, then parse)."""
    if etag_pkg.is_wildcard(value):
        return "*"
    try:
        return tuple((tag.value, tag.weak) for tag in etag_pkg.parse(value))
    except ValueError:
        return "invalid"


def werkzeug_reading(value: str) -> SetReading:
    """What werkzeug's parse_etags makes of a field value: a set, never "invalid"."""
    etags = parse_etags(value)
    if etags.star_tag:
        return "*"
    strong = {(tag, False) for tag in etags.as_set()}
    weak = {(tag, True) for tag in etags.as_set(include_weak=True) if etags.is_weak(tag)}
    return frozenset(strong | weak)


def as_set(reading: Reading) -> SetReading:
    """A reading without order or duplicates, as werkzeug keeps tags."""
    return reading if isinstance(reading, str) else frozenset(reading)


# --- Why a library's reading differs (the rows of docs/etag-differential.md) -----------

WZ_EMPTY_OPAQUE = 'werkzeug: the empty opaque-tag "" becomes the tag None'
WZ_WILDCARD_OWS = "werkzeug: * is the wildcard only without surrounding OWS"
WZ_STAR_TAG = "werkzeug: a * next to list commas becomes a strong tag named *"
WZ_BARE = "werkzeug: accepts an unquoted token as a tag"
WZ_LOWER_W = "werkzeug: accepts a lower-case w/ weak prefix"
WZ_ETAGC = "werkzeug: accepts characters outside etagc inside the quotes"
WZ_SKIPS = "werkzeug: drops a malformed member and keeps the others"
WZ_MALFORMED = "werkzeug: reads a malformed value as no tags (the field as if not sent)"
ETAG_EMPTY_LIST = "etag: parse() refuses the empty list that #entity-tag allows"
ETAG_WILDCARD_LIST = "etag: reads * with empty list elements around it as the wildcard"

# id, value, werkzeug deviation, etag deviation
CORPUS: list[tuple[str, str, str | None, str | None]] = [
    ("strong", '"a"', None, None),
    ("weak", 'W/"a"', None, None),
    ("list", '"a", W/"b"', None, None),
    ("empty-elements-and-ows", ' , "a" ,\t, W/"b" ,', None, None),
    ("comma-in-opaque", '"a,b"', None, None),
    ("obs-text", '"\x80\xff"', None, None),
    ("quoted-star-is-a-tag", '"*"', None, None),
    ("wildcard", "*", None, None),
    ("empty-list", "", None, ETAG_EMPTY_LIST),
    ("empty-list-commas", " , ,", None, ETAG_EMPTY_LIST),
    ("empty-opaque", '""', WZ_EMPTY_OPAQUE, None),
    ("weak-empty-opaque", 'W/""', WZ_EMPTY_OPAQUE, None),
    ("wildcard-ows", " * ", WZ_WILDCARD_OWS, None),
    ("wildcard-then-comma", "*,", WZ_STAR_TAG, ETAG_WILDCARD_LIST),
    ("comma-then-wildcard", ", *", WZ_STAR_TAG, ETAG_WILDCARD_LIST),
    ("wildcard-with-tag", '*, "a"', WZ_STAR_TAG, None),
    ("bare-token", "a", WZ_BARE, None),
    ("bare-list", "a, b", WZ_BARE, None),
    ("quoted-then-bare", '"a", b', WZ_BARE, None),
    ("weak-bare-token", "W/a", WZ_BARE, None),
    ("lower-case-weak-prefix", 'w/"a"', WZ_LOWER_W, None),
    ("space-in-opaque", '"a b"', WZ_ETAGC, None),
    ("tab-in-opaque", '"a\tb"', WZ_ETAGC, None),
    ("del-in-opaque", '"a\x7f"', WZ_ETAGC, None),
    ("above-latin-1", '"\u0100"', WZ_ETAGC, None),
    ("malformed-member-among-good", '"a", "b" x, "c"', WZ_SKIPS, None),
    ("missing-comma", '"a" "b"', WZ_MALFORMED, None),
    ("unterminated", '"a', WZ_MALFORMED, None),
    ("text-after-tag", '"a"x', WZ_MALFORMED, None),
    ("space-after-weak-prefix", 'W/ "a"', WZ_MALFORMED, None),
    ("nul-after-tag", '"a"\x00', WZ_MALFORMED, None),
]


def _cases(library: Literal["werkzeug", "etag"]) -> list[object]:
    """The corpus as parameters, a strict xfail wherever ``library`` deviates."""
    cases: list[object] = []
    for case_id, value, werkzeug_deviation, etag_deviation in CORPUS:
        deviation = werkzeug_deviation if library == "werkzeug" else etag_deviation
        marks = (
            [pytest.mark.xfail(strict=True, raises=AssertionError, reason=deviation)]
            if deviation
            else []
        )
        cases.append(pytest.param(value, id=case_id, marks=marks))
    return cases


@pytest.mark.parametrize("value", _cases("werkzeug"))
def test_werkzeug_reads_like_optimist(value: str) -> None:
    """werkzeug.http.parse_etags reads the value as optimist does (as a set)."""
    assert werkzeug_reading(value) == as_set(optimist_reading(value))


@pytest.mark.parametrize("value", _cases("etag"))
def test_etag_package_reads_like_optimist(value: str) -> None:
    """etag.parse / etag.is_wildcard read the value as optimist does, order included."""
    assert etag_reading(value) == optimist_reading(value)


def test_corpus_optimist_readings() -> None:
    """optimist's own readings of the corpus, so the table above cannot drift unseen."""
    invalid = {case_id for case_id, value, _, _ in CORPUS if optimist_reading(value) == "invalid"}
    assert invalid == {
        "wildcard-then-comma",
        "comma-then-wildcard",
        "wildcard-with-tag",
        "bare-token",
        "bare-list",
        "quoted-then-bare",
        "weak-bare-token",
        "lower-case-weak-prefix",
        "space-in-opaque",
        "tab-in-opaque",
        "del-in-opaque",
        "above-latin-1",
        "malformed-member-among-good",
        "missing-comma",
        "unterminated",
        "text-after-tag",
        "space-after-weak-prefix",
        "nul-after-tag",
    }


# --- Laws over generated input ------------------------------------------------------------

ETAGC = [chr(0x21), *map(chr, range(0x23, 0x7F)), *map(chr, range(0x80, 0x100))]
opaques = st.text(alphabet=st.sampled_from(ETAGC), max_size=12)
entity_tags = st.builds(EntityTag, opaques, st.booleans())
ows = st.text(alphabet=" \t", max_size=2)


@st.composite
def valid_lists(draw: st.DrawFn) -> tuple[str, tuple[EntityTag, ...]]:
    """A field value the grammar produces, with OWS and empty elements, and its tags."""
    elements = draw(st.lists(st.one_of(entity_tags, st.none()), max_size=6))
    value = ",".join(
        draw(ows) + ("" if element is None else str(element)) + draw(ows) for element in elements
    )
    return value, tuple(element for element in elements if element is not None)


@given(valid_lists())
def test_valid_lists_etag_package_agrees(case: tuple[str, tuple[EntityTag, ...]]) -> None:
    """On every non-empty list the grammar produces, the etag package reads the same tags.

    Excluded, as listed: the empty list (etag's parse refuses it).
    """
    value, tags = case
    assume(tags)
    assert etag_reading(value) == optimist_reading(value) == tuple((t.opaque, t.weak) for t in tags)


@given(valid_lists())
def test_valid_lists_werkzeug_agrees(case: tuple[str, tuple[EntityTag, ...]]) -> None:
    """On every list the grammar produces, werkzeug reads the same set of tags.

    Excluded, as listed: lists holding the empty opaque-tag "" (werkzeug reads None).
    """
    value, tags = case
    assume(all(tag.opaque for tag in tags))
    assert werkzeug_reading(value) == as_set(optimist_reading(value))


PIECES = ['"', "W/", "w/", "*", ",", " ", "\t", "a", '"a"', 'W/"b"', '""', "\x00", "\x7f", "\x80"]
noise = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)


def _wildcard_among_empty_elements(value: str) -> bool:
    """The etag package's reading of ``*`` beside empty list elements (ETAG_WILDCARD_LIST)."""
    return etag_pkg.is_wildcard(value) and value.strip(" \t") != "*"


def _empty_list(value: str) -> bool:
    """A list with no member at all (ETAG_EMPTY_LIST)."""
    return value.strip(" \t,") == ""


@settings(max_examples=500)
@given(st.one_of(noise, st.text()))
def test_etag_package_agrees_on_arbitrary_text(value: str) -> None:
    """On any text, the etag package and optimist accept, reject and read alike.

    Excluded, as listed: the empty list, and * beside empty list elements.
    """
    assume(not _empty_list(value) and not _wildcard_among_empty_elements(value))
    assert etag_reading(value) == optimist_reading(value)


WZ_MALFORMED_IF_MATCH = (
    "werkzeug: is_resource_modified skips an If-Match it salvaged no tag from, "
    "so a malformed If-Match passes like a matching one"
)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            value,
            id=case_id,
            marks=pytest.mark.xfail(
                strict=True, raises=AssertionError, reason=WZ_MALFORMED_IF_MATCH
            ),
        )
        for case_id, value, werkzeug_deviation, _ in CORPUS
        if werkzeug_deviation == WZ_MALFORMED
    ],
)
def test_werkzeug_malformed_if_match_is_false(value: str) -> None:
    """RFC 9110 §13.1.1: a malformed If-Match is false, as optimist evaluates it (412)."""
    state = ResourceState(exists=True, etag=EntityTag("a"))
    assert (
        evaluate(Preconditions.parse(if_match=value), "PUT", state) is Outcome.PRECONDITION_FAILED
    )
    # werkzeug's is_resource_modified answers False when If-Match does not hold.
    assert is_resource_modified(http_if_match='"b"', etag='"a"') is False
    assert is_resource_modified(http_if_match=value, etag='"a"') is False


# --- Comparison (RFC 9110 §8.8.3.2) ---------------------------------------------------------

# ETag 1, ETag 2, strong comparison, weak comparison: the RFC's table.
TABLE = [
    ('W/"1"', 'W/"1"', False, True),
    ('W/"1"', 'W/"2"', False, False),
    ('W/"1"', '"1"', False, True),
    ('"1"', '"1"', True, True),
]
TABLE_IDS = ['W/"1"~W/"1"', 'W/"1"~W/"2"', 'W/"1"~"1"', '"1"~"1"']


@pytest.mark.parametrize(("one", "two", "strong", "weak"), TABLE, ids=TABLE_IDS)
def test_etag_package_comparison_table(one: str, two: str, strong: bool, weak: bool) -> None:
    """etag.strong_compare / weak_compare follow the table, both ways round, as optimist."""
    for left, right in ((one, two), (two, one)):
        assert (
            etag_pkg.strong_compare(left, right) is strong is parse(left).strong_match(parse(right))
        )
        assert etag_pkg.weak_compare(left, right) is weak is parse(left).weak_match(parse(right))


WZ_STRONG_IGNORES_CURRENT_WEAKNESS = (
    "werkzeug: ETags.contains takes the current tag's opaque value only (unquote_etag drops W/), "
    "so a weak current tag can match strongly"
)

# (listed tag in the header, current tag), strong, weak, werkzeug strong deviation
WERKZEUG_TABLE = [
    ('W/"1"', 'W/"1"', False, True, None),
    ('W/"1"', 'W/"2"', False, False, None),
    ('W/"1"', '"1"', False, True, None),
    ('"1"', 'W/"1"', False, True, WZ_STRONG_IGNORES_CURRENT_WEAKNESS),
    ('"1"', '"1"', True, True, None),
    ('W/"2"', 'W/"1"', False, False, None),
]


@pytest.mark.parametrize(
    ("listed", "current", "strong", "weak"),
    [
        pytest.param(
            listed,
            current,
            strong,
            weak,
            id=f"{listed}~{current}",
            marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=deviation)]
            if deviation
            else [],
        )
        for listed, current, strong, weak, deviation in WERKZEUG_TABLE
    ],
)
def test_werkzeug_comparison_table(listed: str, current: str, strong: bool, weak: bool) -> None:
    """ETags.contains (strong) and contains_weak (weak) follow the table, as werkzeug uses them."""
    etags = parse_etags(listed)
    opaque, _ = unquote_etag(current)
    assert opaque is not None
    assert etags.contains_weak(opaque) is weak is parse(listed).weak_match(parse(current))
    assert etags.contains(opaque) is strong is parse(listed).strong_match(parse(current))


@given(st.lists(entity_tags, max_size=4), entity_tags)
def test_etag_package_matches_agree(listed: list[EntityTag], current: EntityTag) -> None:
    """etag.matches agrees with optimist's comparisons over any list, both modes."""
    header = format_list(listed)
    for weak in (True, False):
        expected = any(
            tag.weak_match(current) if weak else tag.strong_match(current) for tag in listed
        )
        assert etag_pkg.matches(header, str(current), weak=weak) is expected


@given(st.lists(entity_tags.filter(lambda t: t.opaque != ""), max_size=4), entity_tags)
def test_werkzeug_contains_agrees(listed: list[EntityTag], current: EntityTag) -> None:
    """ETags.contains_weak is weak comparison; contains is strong for a strong current tag.

    Excluded, as listed: a weak current tag under contains (werkzeug ignores its weakness),
    and the empty opaque-tag.
    """
    etags = ETags(
        [tag.opaque for tag in listed if not tag.weak], [tag.opaque for tag in listed if tag.weak]
    )
    assert etags.contains_weak(current.opaque) is any(t.weak_match(current) for t in listed)
    if not current.weak:
        assert etags.contains(current.opaque) is any(t.strong_match(current) for t in listed)


# --- One entity-tag: werkzeug.http.unquote_etag ---------------------------------------------


@given(entity_tags)
def test_unquote_etag_agrees_on_valid_tags(tag: EntityTag) -> None:
    """unquote_etag reads every valid entity-tag as optimist's parse does."""
    assert unquote_etag(str(tag)) == (tag.opaque, tag.weak)


def optimist_single(value: str) -> tuple[str, bool] | Literal["invalid"]:
    """What optimist's parse makes of an ETag field value."""
    try:
        tag = parse(value)
    except InvalidEntityTag:
        return "invalid"
    return tag.opaque, tag.weak


WZ_UNQUOTE_LENIENT = "werkzeug: unquote_etag returns the text of an unquoted or broken tag"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            value,
            id=case_id,
            marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason),
        )
        for case_id, value, reason in [
            ("bare", "a", WZ_UNQUOTE_LENIENT),
            ("lower-case-weak-prefix", 'w/"a"', WZ_LOWER_W),
            ("list", '"a", "b"', "werkzeug: a list reads as one tag with quotes inside"),
            ("lone-quote", '"', 'werkzeug: a lone " reads as the empty tag'),
            ("unterminated-weak", 'W/"a', WZ_UNQUOTE_LENIENT),
            ("weak-prefix-alone", "W/", WZ_UNQUOTE_LENIENT),
            ("leading-ows", ' "a"', "werkzeug: OWS stays in the value, quotes included"),
        ]
    ],
)
def test_unquote_etag_reads_like_optimist(value: str) -> None:
    """werkzeug.http.unquote_etag reads one ETag value as optimist's parse does."""
    assert unquote_etag(value) == optimist_single(value)


# --- Precondition outcomes: etag.evaluate_preconditions --------------------------------------

_STATUS = {Outcome.PROCEED: None, Outcome.NOT_MODIFIED: 304, Outcome.PRECONDITION_FAILED: 412}
fields = st.one_of(st.none(), noise, st.lists(entity_tags, max_size=3).map(format_list))


@settings(max_examples=500)
@given(
    st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST", "OPTIONS"]),
    fields,
    fields,
    st.one_of(st.none(), entity_tags),
    st.booleans(),
)
def test_evaluate_agrees_with_etag_package(
    method: str,
    if_match: str | None,
    if_none_match: str | None,
    current: EntityTag | None,
    exists: bool,
) -> None:
    """optimist's §13.2.2 outcome for the entity-tag fields equals etag.evaluate_preconditions.

    Excluded, as listed: * beside empty list elements.
    """
    for value in (if_match, if_none_match):
        assume(value is None or not _wildcard_among_empty_elements(value))
    exists = exists or current is not None
    state = ResourceState(exists=exists, etag=current)
    outcome = evaluate(
        Preconditions.parse(if_match=if_match, if_none_match=if_none_match), method, state
    )
    theirs = etag_pkg.evaluate_preconditions(
        method,
        None if current is None else str(current),
        if_match=if_match,
        if_none_match=if_none_match,
        exists=exists,
    )
    assert _STATUS[outcome] == theirs

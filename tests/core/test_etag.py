"""Entity tags: the RFC 9110 §8.8.3 grammar, formatting, and the two comparison functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimist import etag as etag_module
from optimist.errors import InvalidEntityTag
from optimist.etag import (
    ANY,
    Comparison,
    EntityTag,
    TagMatch,
    Wildcard,
    format_list,
    matches_any,
    parse,
    parse_list,
)

# RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text (%x80-FF).
ETAGC = [chr(0x21), *map(chr, range(0x23, 0x7F)), *map(chr, range(0x80, 0x100))]
opaques = st.text(alphabet=st.sampled_from(ETAGC), max_size=24)
entity_tags = st.builds(EntityTag, opaques, st.booleans())
ows = st.text(alphabet=" \t", max_size=3)


def strong(opaque: str) -> EntityTag:
    """A strong tag, for brevity in tables."""
    return EntityTag(opaque)


def weak(opaque: str) -> EntityTag:
    """A weak tag, for brevity in tables."""
    return EntityTag(opaque, weak=True)


VALID_LISTS: list[tuple[str, TagMatch]] = [
    ('"a"', (strong("a"),)),
    ('W/"a"', (weak("a"),)),
    ('""', (strong(""),)),
    ('W/""', (weak(""),)),
    ('"a", W/"b"', (strong("a"), weak("b"))),
    ('"a",W/"b"', (strong("a"), weak("b"))),
    (' \t"a"\t ', (strong("a"),)),
    ('"a" \t, \t"b"', (strong("a"), strong("b"))),
    (', "a"', (strong("a"),)),
    ('"a" ,', (strong("a"),)),
    ('"a", , ,"b"', (strong("a"), strong("b"))),
    (',,"a",,', (strong("a"),)),
    ('"a", "a"', (strong("a"), strong("a"))),
    ('"a,b"', (strong("a,b"),)),
    ('"W/"', (strong("W/"),)),
    ('W/"W/"', (weak("W/"),)),
    ('"*"', (strong("*"),)),
    ('"!#~"', (strong("!#~"),)),
    ('"\x80\xff"', (strong("\x80\xff"),)),
    ("*", ANY),
    (" * ", ANY),
    ("\t*", ANY),
    ("", ()),
    (" ", ()),
    (",", ()),
    (" , ,\t", ()),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    VALID_LISTS,
    ids=[
        "strong",
        "weak",
        "empty-opaque",
        "weak-empty-opaque",
        "list",
        "list-no-space",
        "ows-around",
        "ows-around-comma",
        "leading-empty-element",
        "trailing-empty-element",
        "empty-elements-between",
        "only-empty-elements-around",
        "duplicates-kept",
        "comma-inside-opaque",
        "W/-inside-opaque",
        "weak-W/-inside-opaque",
        "quoted-star-is-a-tag",
        "etagc-edges",
        "obs-text",
        "wildcard",
        "wildcard-ows",
        "wildcard-tab",
        "empty-list",
        "empty-list-ows",
        "empty-list-comma",
        "empty-list-only-empty-elements",
    ],
)
def test_parse_list_accepts_the_grammar(value: str, expected: TagMatch) -> None:
    """Every production of If-Match / If-None-Match parses to the expected value."""
    assert parse_list(value) == expected


INVALID_LISTS = [
    ("a", 0),
    ('w/"a"', 0),
    ('W/ "a"', 2),
    ("W/a", 2),
    ("W/", 2),
    ('"a', 0),
    ('"a", "b', 5),
    ('"a" "b"', 4),
    ('"a"x', 3),
    ('"a""b"', 3),
    ('"a b"', 2),
    ('"a\tb"', 2),
    ('"\x00"', 1),
    ('"a\x7f"', 2),
    ('"\u0100"', 1),
    ('"\u20ac"', 1),
    ("*,", 1),
    (", *", 2),
    ('*, "a"', 1),
    ('"a", *', 5),
    ("**", 1),
    ('"a";', 3),
]


@pytest.mark.parametrize(
    ("value", "position"),
    INVALID_LISTS,
    ids=[
        "bare-token",
        "lower-case-weak-prefix",
        "space-after-weak-prefix",
        "weak-bare-token",
        "weak-prefix-alone",
        "unterminated",
        "second-unterminated",
        "missing-comma",
        "text-after-tag",
        "adjacent-quotes",
        "space-in-opaque",
        "tab-in-opaque",
        "nul-in-opaque",
        "del-in-opaque",
        "above-latin-1",
        "euro-sign",
        "wildcard-then-comma",
        "comma-then-wildcard",
        "wildcard-with-tag",
        "tag-with-wildcard",
        "double-wildcard",
        "semicolon-after-tag",
    ],
)
def test_parse_list_rejects_what_the_grammar_does_not_produce(value: str, position: int) -> None:
    """A value outside the grammar raises InvalidEntityTag pointing where it broke."""
    with pytest.raises(InvalidEntityTag) as caught:
        parse_list(value)
    assert caught.value.position == position
    assert caught.value.value == value
    assert caught.value.status == 400


def test_parse_list_names_the_field_in_its_error() -> None:
    """The error carries the field name given, so a 400 can say which header was wrong."""
    with pytest.raises(InvalidEntityTag) as caught:
        parse_list("nope", field="If-None-Match")
    assert caught.value.field == "If-None-Match"
    assert "If-None-Match" in caught.value.detail


@pytest.mark.parametrize(
    ("char", "allowed"),
    [
        ("\x00", False),
        ("\t", False),
        (" ", False),
        ("\x21", True),
        ('"', False),
        ("\x23", True),
        ("\x7e", True),
        ("\x7f", False),
        ("\x80", True),
        ("\xff", True),
        ("\u0100", False),
        ("\U0001f600", False),
    ],
    ids=[
        "nul",
        "htab",
        "space",
        "x21",
        "dquote",
        "x23",
        "x7e",
        "del",
        "x80",
        "xff",
        "u0100",
        "emoji",
    ],
)
def test_entity_tag_accepts_exactly_etagc(char: str, allowed: bool) -> None:
    """EntityTag's opaque value admits %x21 / %x23-7E / %x80-FF and nothing else."""
    if allowed:
        assert EntityTag(f"a{char}").opaque == f"a{char}"
    else:
        with pytest.raises(InvalidEntityTag) as caught:
            EntityTag(f"a{char}")
        assert caught.value.position == 1
        assert caught.value.field == "ETag"


@pytest.mark.parametrize(
    ("tag", "text"),
    [(strong("a"), '"a"'), (weak("a"), 'W/"a"'), (strong(""), '""'), (weak("x\xff"), 'W/"x\xff"')],
    ids=["strong", "weak", "empty", "obs-text"],
)
def test_str_is_the_field_form(tag: EntityTag, text: str) -> None:
    """str() gives the entity-tag as it appears in an ETag header."""
    assert str(tag) == text


@pytest.mark.parametrize(
    ("match", "text"),
    [
        (ANY, "*"),
        ((strong("a"),), '"a"'),
        ((strong("a"), weak("b")), '"a", W/"b"'),
        ([weak("x"), strong("y")], 'W/"x", "y"'),
    ],
    ids=["wildcard", "one", "two", "any-iterable"],
)
def test_format_list(match: TagMatch | list[EntityTag], text: str) -> None:
    """format_list writes ANY as * and tags comma-separated in order."""
    assert format_list(match) == text


def test_wildcard_is_a_single_value_that_prints_as_star() -> None:
    """ANY is the one Wildcard member and prints as the header's *."""
    assert ANY is Wildcard.ANY
    assert str(ANY) == "*"
    assert list(Wildcard) == [ANY]


# RFC 9110 §8.8.3.2, the example table: ETag 1, ETag 2, strong comparison, weak comparison.
COMPARISON_TABLE = [
    (weak("1"), weak("1"), False, True),
    (weak("1"), weak("2"), False, False),
    (weak("1"), strong("1"), False, True),
    (strong("1"), strong("1"), True, True),
]
COMPARISON_IDS = ['W/"1"~W/"1"', 'W/"1"~W/"2"', 'W/"1"~"1"', '"1"~"1"']


@pytest.mark.parametrize(
    ("one", "two", "strong_result", "weak_result"), COMPARISON_TABLE, ids=COMPARISON_IDS
)
def test_comparison_table(
    one: EntityTag, two: EntityTag, strong_result: bool, weak_result: bool
) -> None:
    """The §8.8.3.2 table holds in both argument orders, directly and via matches()."""
    for left, right in ((one, two), (two, one)):
        assert left.strong_match(right) is strong_result
        assert left.weak_match(right) is weak_result
        assert left.matches(right, Comparison.STRONG) is strong_result
        assert left.matches(right, Comparison.WEAK) is weak_result


def test_strong_tags_with_different_opaques_do_not_match() -> None:
    """Two strong tags match only when their opaque values are equal."""
    assert not strong("1").strong_match(strong("2"))
    assert not strong("1").weak_match(strong("2"))


def test_as_weak() -> None:
    """as_weak keeps the opaque value and returns a weak tag unchanged."""
    tag = weak("a")
    assert strong("a").as_weak() == tag
    assert tag.as_weak() is tag


def test_entity_tags_are_frozen_values() -> None:
    """Equal tags are equal and hash alike; they cannot be mutated."""
    assert strong("a") == EntityTag("a", weak=False)
    assert strong("a") != weak("a")
    assert len({strong("a"), EntityTag("a"), weak("a")}) == 2
    with pytest.raises(AttributeError):
        strong("a").opaque = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", (strong("abc"),)),
        ("a1b2c3d4e5f6a7b8", (strong("a1b2c3d4e5f6a7b8"),)),
        ('abc, "def"', (strong("abc"), strong("def"))),
        ('"def",abc', (strong("def"), strong("abc"))),
        ("abc , def", (strong("abc"), strong("def"))),
        ('W/"w", abc', (weak("w"), strong("abc"))),
        ("*", ANY),
    ],
    ids=[
        "bare",
        "bare-hex",
        "bare-then-quoted",
        "quoted-then-bare",
        "two-bare",
        "weak-then-bare",
        "wildcard",
    ],
)
def test_allow_bare_reads_a_bare_token_as_a_strong_tag(value: str, expected: TagMatch) -> None:
    """With allow_bare=True an unquoted token is the strong tag with that opaque value."""
    assert parse_list(value, allow_bare=True) == expected


@pytest.mark.parametrize(
    ("value", "position"),
    [("W/abc", 2), ('abc"def"', 3), ("abc def", 4), ("a\x00", 1), ("\x00", 0), ("abc\x7f", 3)],
    ids=[
        "weak-bare",
        "quote-after-bare",
        "space-inside-bare",
        "control-after-bare",
        "control-only",
        "semicolon",
    ],
)
def test_allow_bare_still_rejects_what_is_not_a_token(value: str, position: int) -> None:
    """Bare tokens are etagc runs; a weak bare token or stray characters stay invalid."""
    with pytest.raises(InvalidEntityTag) as caught:
        parse_list(value, allow_bare=True)
    assert caught.value.position == position


def test_bare_tokens_are_rejected_by_default() -> None:
    """Without allow_bare the same token is malformed, as RFC 9110 requires."""
    with pytest.raises(InvalidEntityTag):
        parse_list("abc")
    with pytest.raises(InvalidEntityTag):
        parse("abc")


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"a"', strong("a")), ('W/"a"', weak("a")), (' "a"\t', strong("a")), ('"*"', strong("*"))],
    ids=["strong", "weak", "ows", "quoted-star"],
)
def test_parse_reads_one_entity_tag(value: str, expected: EntityTag) -> None:
    """parse reads one ETag field value."""
    assert parse(value) == expected


@pytest.mark.parametrize(
    ("value", "position"),
    [("", 0), ("*", 0), ('"a", "b"', 3), ('"a" x', 4), ('"a', 0), ("W/", 2)],
    ids=["empty", "wildcard", "list", "trailing-text", "unterminated", "weak-prefix-alone"],
)
def test_parse_rejects_anything_but_one_entity_tag(value: str, position: int) -> None:
    """An ETag field value holds exactly one entity-tag: no list, no wildcard."""
    with pytest.raises(InvalidEntityTag) as caught:
        parse(value)
    assert caught.value.position == position
    assert caught.value.field == "ETag"


def test_parse_with_allow_bare() -> None:
    """parse accepts a bare token only when asked to."""
    assert parse("a1b2", allow_bare=True) == strong("a1b2")


@given(st.lists(entity_tags, max_size=6))
def test_format_then_parse_round_trips(tags: list[EntityTag]) -> None:
    """format_list followed by parse_list gives back the same tags, in order, even none."""
    assert parse_list(format_list(tags)) == tuple(tags)


@given(entity_tags)
def test_str_then_parse_round_trips(tag: EntityTag) -> None:
    """str() followed by parse() gives back the same tag."""
    assert parse(str(tag)) == tag


@given(
    st.lists(st.one_of(entity_tags, st.none()), min_size=1, max_size=6),
    st.data(),
)
def test_empty_elements_and_ows_do_not_change_the_tags(
    elements: list[EntityTag | None], data: st.DataObject
) -> None:
    """Empty list elements and OWS around commas are accepted and ignored (§5.6.1.2)."""
    parts = [
        data.draw(ows) + ("" if element is None else str(element)) + data.draw(ows)
        for element in elements
    ]
    value = ",".join(parts)
    assert parse_list(value) == tuple(e for e in elements if e is not None)


def _parse_list_or_error(value: str, allow_bare: bool) -> TagMatch | InvalidEntityTag:
    """What parse_list returns, or the InvalidEntityTag it raises; anything else escapes."""
    try:
        return parse_list(value, allow_bare=allow_bare)
    except InvalidEntityTag as error:
        return error


def _parse_or_error(value: str, allow_bare: bool) -> EntityTag | InvalidEntityTag:
    """What parse returns, or the InvalidEntityTag it raises; anything else escapes."""
    try:
        return parse(value, allow_bare=allow_bare)
    except InvalidEntityTag as error:
        return error


@given(st.text(), st.booleans())
def test_parse_list_raises_only_invalid_entity_tag(value: str, allow_bare: bool) -> None:
    """On arbitrary text parse_list returns a TagMatch or raises InvalidEntityTag."""
    result = _parse_list_or_error(value, allow_bare)
    if isinstance(result, InvalidEntityTag):
        assert 0 <= result.position <= len(value)
    else:
        assert result is ANY or isinstance(result, tuple)


@given(st.text(alphabet=st.characters(exclude_categories=())), st.booleans())
def test_parse_raises_only_invalid_entity_tag(value: str, allow_bare: bool) -> None:
    """On arbitrary text, control characters and surrogates included, parse never crashes."""
    result = _parse_or_error(value, allow_bare)
    if isinstance(result, InvalidEntityTag):
        assert 0 <= result.position <= len(value)
    else:
        assert parse(str(result)) == result


@given(st.text(alphabet='W/"*, \ta\x00\x7f\x80\u0100', max_size=16))
def test_parse_list_on_grammar_shaped_noise(value: str) -> None:
    """Text made of the grammar's own characters parses or raises InvalidEntityTag."""
    result = _parse_list_or_error(value, allow_bare=False)
    if not isinstance(result, InvalidEntityTag):
        assert parse_list(format_list(result)) == result


def _scanned_or_error(value: str, allow_bare: bool) -> TagMatch | InvalidEntityTag:
    """What the reference scanner alone returns, or the InvalidEntityTag it raises."""
    try:
        return etag_module._scan_list(value, "If-Match", allow_bare)
    except InvalidEntityTag as error:
        return error


def _same(one: TagMatch | InvalidEntityTag, two: TagMatch | InvalidEntityTag) -> bool:
    """Equal results, or errors at the same position for the same reason."""
    if isinstance(one, InvalidEntityTag) and isinstance(two, InvalidEntityTag):
        return (one.position, one.reason) == (two.position, two.reason)
    return one == two


# Pieces of the grammar, right and wrong, so that joined at random they often almost parse.
PIECES = [
    '"',
    "W/",
    "w/",
    "*",
    ",",
    " ",
    "\t",
    "a",
    "b",
    '"a"',
    'W/"b"',
    '""',
    "\x00",
    "\x7f",
    "\x80",
]
grammar_noise = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)


@settings(max_examples=1000)
@given(st.one_of(grammar_noise, st.text(), st.lists(entity_tags).map(format_list)), st.booleans())
def test_fast_path_agrees_with_the_scanner(value: str, allow_bare: bool) -> None:
    """parse_list's regular-expression fast path decides exactly as the scanner does."""
    assert _same(_parse_list_or_error(value, allow_bare), _scanned_or_error(value, allow_bare))


@pytest.mark.parametrize(
    "value",
    ["*abc", '*, "a"', "*,", '"a", *', "a, *", "**", "a*", "*", " * ", ", *"],
    ids=[
        "star-led-token",
        "star-then-tag",
        "star-then-comma",
        "tag-then-star",
        "bare-then-star",
        "double-star",
        "star-inside-token",
        "wildcard",
        "wildcard-ows",
        "comma-then-star",
    ],
)
def test_bare_star_is_never_a_tag(value: str) -> None:
    """With allow_bare, "*" is the wildcard alone and never starts a bare tag."""
    result = _parse_list_or_error(value, allow_bare=True)
    assert _same(result, _scanned_or_error(value, allow_bare=True))
    if value.strip() == "*":
        assert result is ANY
    elif value == "a*":
        assert result == (strong("a*"),)
    else:
        assert isinstance(result, InvalidEntityTag)


@pytest.mark.parametrize("allow_bare", [False, True], ids=["quoted", "bare-allowed"])
def test_list_longer_than_max_tags_is_invalid(allow_bare: bool) -> None:
    """A list of more than MAX_TAGS tags is refused; MAX_TAGS tags are fine."""
    at_bound = ", ".join(f'"{n}"' for n in range(etag_module.MAX_TAGS))
    parsed = etag_module.parse_list(at_bound, allow_bare=allow_bare)
    assert isinstance(parsed, tuple)
    assert len(parsed) == etag_module.MAX_TAGS
    with pytest.raises(InvalidEntityTag, match="more than"):
        etag_module.parse_list(f'{at_bound}, "x"', allow_bare=allow_bare)


@pytest.mark.parametrize(
    ("tags", "current", "comparison", "expected"),
    [
        ((EntityTag("a"), EntityTag("b")), EntityTag("b"), Comparison.STRONG, True),
        ((EntityTag("a", weak=True),), EntityTag("a"), Comparison.STRONG, False),
        ((EntityTag("a"),), EntityTag("a", weak=True), Comparison.STRONG, False),
        ((EntityTag("a", weak=True),), EntityTag("a"), Comparison.WEAK, True),
        ((EntityTag("a"),), EntityTag("b"), Comparison.WEAK, False),
        ((), EntityTag("a"), Comparison.WEAK, False),
    ],
    ids=["strong-second", "weak-sent", "weak-current", "weak-compare", "other", "empty"],
)
def test_matches_any_table(
    tags: tuple[EntityTag, ...], current: EntityTag, comparison: Comparison, expected: bool
) -> None:
    """RFC 9110 §8.8.3.2 over a list: true when some member matches."""
    assert matches_any(tags, current, comparison) is expected


@given(st.lists(entity_tags, max_size=5).map(tuple), entity_tags, st.sampled_from(Comparison))
def test_matches_any_is_any_member_matching(
    tags: tuple[EntityTag, ...], current: EntityTag, comparison: Comparison
) -> None:
    """matches_any agrees with comparing each member on its own."""
    expected = any(tag.matches(current, comparison) for tag in tags)
    assert matches_any(tags, current, comparison) is expected

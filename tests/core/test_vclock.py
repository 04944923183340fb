"""Vector clocks: the value type, its causal order, its encodings, and hostile input."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.errors import InvalidVectorClock
from optimist.etag import EntityTag, parse
from optimist.vclock import MAX_COUNTER, MAX_NODES, MAX_TEXT_LENGTH, Ordering, VectorClock

MIRROR = {
    Ordering.BEFORE: Ordering.AFTER,
    Ordering.AFTER: Ordering.BEFORE,
    Ordering.EQUAL: Ordering.EQUAL,
    Ordering.CONCURRENT: Ordering.CONCURRENT,
}

# Few nodes and small counters make equal and ordered pairs common; a few large
# counters keep the bounds in play.
counters = st.one_of(st.integers(0, 3), st.integers(0, MAX_COUNTER))
clocks = st.dictionaries(st.sampled_from(["a", "b", "c", "node-1", "n.2~_"]), counters).map(
    VectorClock
)
node_names = st.from_regex(r"[A-Za-z0-9._~-]{1,64}", fullmatch=True)
any_clocks = st.dictionaries(node_names, st.integers(0, MAX_COUNTER), max_size=MAX_NODES).map(
    VectorClock
)


def many_nodes(count: int) -> dict[str, int]:
    return {f"n{i:03}": 1 for i in range(count)}


# -- the value type -------------------------------------------------------------------


def test_missing_node_counts_zero() -> None:
    """A node the clock never saw is absent, and reads as 0 through get."""
    clock = VectorClock({"a": 2})
    assert "b" not in clock
    assert clock.get("b", 0) == 0
    assert clock["a"] == 2


def test_missing_node_is_a_key_error_like_any_mapping() -> None:
    """Indexing follows the Mapping contract: a missing key raises KeyError."""
    with pytest.raises(KeyError):
        VectorClock({"a": 1})["b"]


def test_zero_counters_are_dropped() -> None:
    """A zero counter is the same as a missing node, so it is not stored."""
    clock = VectorClock({"a": 0, "b": 1})
    assert clock == VectorClock({"b": 1})
    assert list(clock) == ["b"]
    assert len(clock) == 1


def test_iterates_in_node_order() -> None:
    """Nodes come out sorted whatever order they went in."""
    assert list(VectorClock({"c": 1, "a": 2, "b": 3}).items()) == [("a", 2), ("b", 3), ("c", 1)]


def test_equal_clocks_hash_alike() -> None:
    """Clocks built differently but equal are one dictionary key."""
    first = VectorClock({"a": 1, "b": 2, "z": 0})
    second = VectorClock({"b": 2, "a": 1})
    assert first == second
    assert {first: "x"}[second] == "x"


def test_not_equal_to_a_plain_dict() -> None:
    """Equality holds between clocks only."""
    assert VectorClock({"a": 1}) != {"a": 1}
    assert VectorClock() != {}


def test_is_immutable() -> None:
    """Neither attributes nor items can be changed or removed."""
    clock = VectorClock({"a": 1})
    with pytest.raises(AttributeError):
        clock._counters = {}
    with pytest.raises(AttributeError):
        del clock._counters
    with pytest.raises(TypeError):
        clock["a"] = 2  # type: ignore[index]
    assert clock == VectorClock({"a": 1})


def test_survives_pickling() -> None:
    """A clock pickles to an equal clock (e.g. to cross a process boundary)."""
    clock = VectorClock({"a": 1, "b": 2})
    assert pickle.loads(pickle.dumps(clock)) == clock


def test_repr_shows_the_counters() -> None:
    """The repr is the constructor call that rebuilds the clock."""
    assert repr(VectorClock({"b": 2, "a": 1})) == "VectorClock({'a': 1, 'b': 2})"


def test_accepts_the_bounds() -> None:
    """The longest node name, the largest counter and the most nodes are all accepted."""
    assert VectorClock({"x" * 64: MAX_COUNTER})["x" * 64] == MAX_COUNTER
    assert len(VectorClock(many_nodes(MAX_NODES))) == MAX_NODES


@pytest.mark.parametrize(
    ("counters", "reason"),
    [
        ({"a": True}, "must be an integer"),
        ({"a": 1.0}, "must be an integer"),
        ({"a": "1"}, "must be an integer"),
        ({"a": -1}, "must be 0 to"),
        ({"a": MAX_COUNTER + 1}, "must be 0 to"),
        ({"": 1}, "node name"),
        ({"x" * 65: 1}, "node name"),
        ({"a b": 1}, "node name"),
        ({'a"': 1}, "node name"),
        ({"a;b": 1}, "node name"),
        ({"é": 1}, "node name"),
        ({1: 1}, "node name int"),
        (many_nodes(MAX_NODES + 1), "more than 64 nodes"),
    ],
    ids=[
        "bool",
        "float",
        "string-counter",
        "negative",
        "too-large",
        "empty-name",
        "long-name",
        "space",
        "quote",
        "separator",
        "non-ascii",
        "non-string-name",
        "too-many-nodes",
    ],
)
def test_constructor_rejects(counters: dict[Any, Any], reason: str) -> None:
    """Building a clock from Python values applies the same rules as parsing one."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock(counters)
    assert reason in caught.value.reason
    assert caught.value.field == "vector_clock"


# -- increment, merge, compare --------------------------------------------------------


def test_increment_adds_one_to_the_node() -> None:
    """Incrementing counts one more write on that node, starting from 0."""
    clock = VectorClock({"a": 1})
    assert clock.increment("a") == VectorClock({"a": 2})
    assert clock.increment("b") == VectorClock({"a": 1, "b": 1})
    assert clock == VectorClock({"a": 1})


def test_increment_rejects_a_bad_node_name() -> None:
    """A node name that could not be encoded is refused at increment."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock().increment("bad node")
    assert caught.value.field == "node"


def test_increment_stops_at_the_largest_counter() -> None:
    """A counter never grows past what JSON numbers hold exactly."""
    with pytest.raises(InvalidVectorClock, match="exceed"):
        VectorClock({"a": MAX_COUNTER}).increment("a")


def test_increment_stops_at_the_most_nodes() -> None:
    """A full clock accepts writes on its nodes but not a new node."""
    full = VectorClock(many_nodes(MAX_NODES))
    assert full.increment("n000")["n000"] == 2
    with pytest.raises(InvalidVectorClock, match="at most 64 nodes"):
        full.increment("new")


def test_merge_takes_the_pointwise_maximum() -> None:
    """Merging keeps, for every node, the larger counter."""
    merged = VectorClock({"a": 3, "b": 1}).merge(VectorClock({"b": 2, "c": 5}))
    assert merged == VectorClock({"a": 3, "b": 2, "c": 5})


def test_merge_refuses_to_exceed_the_most_nodes() -> None:
    """Two clocks whose nodes together exceed the bound cannot be merged."""
    left = VectorClock({f"l{i}": 1 for i in range(40)})
    right = VectorClock({f"r{i}": 1 for i in range(40)})
    with pytest.raises(InvalidVectorClock, match="more than 64 nodes"):
        left.merge(right)


@pytest.mark.parametrize(
    ("mine", "theirs", "ordering"),
    [
        ({}, {}, Ordering.EQUAL),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, Ordering.EQUAL),
        ({"a": 1}, {"a": 2}, Ordering.BEFORE),
        ({}, {"a": 1}, Ordering.BEFORE),
        ({"a": 1}, {"a": 1, "b": 1}, Ordering.BEFORE),
        ({"a": 2}, {"a": 1}, Ordering.AFTER),
        ({"a": 1, "b": 1}, {"a": 1}, Ordering.AFTER),
        ({"a": 2, "b": 1}, {"a": 1, "b": 2}, Ordering.CONCURRENT),
        ({"a": 1}, {"b": 1}, Ordering.CONCURRENT),
    ],
    ids=[
        "both-empty",
        "same-counters",
        "behind-on-a-node",
        "empty-before-any",
        "missing-node-is-behind",
        "ahead-on-a-node",
        "extra-node-is-ahead",
        "each-ahead-somewhere",
        "disjoint-nodes",
    ],
)
def test_compare(mine: dict[str, int], theirs: dict[str, int], ordering: Ordering) -> None:
    """compare places self relative to other in happened-before order."""
    assert VectorClock(mine).compare(VectorClock(theirs)) is ordering


@given(clocks, clocks)
def test_merge_is_commutative(a: VectorClock, b: VectorClock) -> None:
    """a ⊔ b = b ⊔ a."""
    assert a.merge(b) == b.merge(a)


@given(clocks, clocks, clocks)
def test_merge_is_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    """(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)."""
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_is_idempotent(a: VectorClock) -> None:
    """a ⊔ a = a."""
    assert a.merge(a) == a


@given(clocks, clocks)
def test_merge_is_an_upper_bound(a: VectorClock, b: VectorClock) -> None:
    """Both inputs happened before (or equal) their merge."""
    merged = a.merge(b)
    assert a.compare(merged) in {Ordering.BEFORE, Ordering.EQUAL}
    assert b.compare(merged) in {Ordering.BEFORE, Ordering.EQUAL}


@given(clocks, clocks)
def test_merge_of_ordered_clocks_is_the_later(a: VectorClock, b: VectorClock) -> None:
    """When a happened before b, merging adds nothing to b."""
    if a.compare(b) in {Ordering.BEFORE, Ordering.EQUAL}:
        assert a.merge(b) == b
    else:
        assert a.merge(b) != b


@given(clocks, clocks)
def test_compare_is_antisymmetric(a: VectorClock, b: VectorClock) -> None:
    """b seen from a is the mirror of a seen from b."""
    assert b.compare(a) is MIRROR[a.compare(b)]


@given(clocks, clocks)
def test_compare_equal_means_equal(a: VectorClock, b: VectorClock) -> None:
    """EQUAL is exactly value equality."""
    assert (a.compare(b) is Ordering.EQUAL) == (a == b)


@given(clocks, st.sampled_from(["a", "b", "new-node"]))
def test_increment_happens_after(a: VectorClock, node: str) -> None:
    """After a write the clock is strictly later than before it."""
    if a.get(node, 0) < MAX_COUNTER:
        later = a.increment(node)
        assert later.compare(a) is Ordering.AFTER
        assert later[node] == a.get(node, 0) + 1


# -- JSON -----------------------------------------------------------------------------


def test_to_json_is_canonical() -> None:
    """Sorted members, no whitespace, no zero counters."""
    assert VectorClock({"b": 2, "a": 1, "c": 0}).to_json() == '{"a":1,"b":2}'
    assert VectorClock().to_json() == "{}"


@pytest.mark.parametrize(
    "text",
    ['{"b": 2, "a": 1}', ' {\n  "a" : 1 ,"b":2 }\t', b'{"a":1,"b":2}', '{"a":1,"b":2,"z":0}'],
    ids=["any-order", "whitespace", "bytes", "zero-member"],
)
def test_from_json_accepts_any_spelling(text: str | bytes) -> None:
    """Any valid JSON spelling of the clock reads as the same clock."""
    assert VectorClock.from_json(text) == VectorClock({"a": 1, "b": 2})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ('{"a":1}x', "not JSON"),
        ("[]", "expected a JSON object"),
        ('"a"', "expected a JSON object"),
        ("null", "expected a JSON object"),
        ("1", "expected a JSON object"),
        ('{"a":{"b":1}}', "must be an integer"),
        ('{"a":[1]}', "must be an integer"),
        ('{"a":"1"}', "must be an integer"),
        ('{"a":true}', "must be an integer"),
        ('{"a":1.0}', "must be an integer"),
        ('{"a":1e3}', "must be an integer"),
        ('{"a":NaN}', "NaN is not a JSON number"),
        ('{"a":-Infinity}', "-Infinity is not a JSON number"),
        ('{"a":-1}', "must be 0 to"),
        ('{"a":9007199254740992}', "must be 0 to"),
        ('{"a":' + "9" * 4500 + "}", "not JSON"),
        ('{"a":1,"a":2}', "appears twice"),
        ('{"a b":1}', "node name"),
        ('{"":1}', "node name"),
        ('{"\\u00e9":1}', "node name"),
        ("[" * 5000, "nested too deeply"),
        (" " * (MAX_TEXT_LENGTH + 1) + "{}", "longer than"),
        ("{" + ",".join(f'"n{i}":1' for i in range(MAX_NODES + 1)) + "}", "more than 64 nodes"),
    ],
    ids=[
        "empty",
        "unterminated",
        "trailing-text",
        "array",
        "string",
        "null",
        "number",
        "object-counter",
        "array-counter",
        "string-counter",
        "bool-counter",
        "float-counter",
        "exponent-counter",
        "nan",
        "infinity",
        "negative",
        "too-large",
        "integer-too-long-to-convert",
        "duplicate-member",
        "space-in-name",
        "empty-name",
        "non-ascii-name",
        "deep-nesting",
        "too-long",
        "too-many-nodes",
    ],
)
def test_from_json_rejects(text: str, reason: str) -> None:
    """Every kind of bad JSON clock raises InvalidVectorClock with the reason."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock.from_json(text)
    assert reason in caught.value.reason
    assert caught.value.field == "vector_clock"
    assert caught.value.value == text


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b'{"\xff":1}', "not UTF-8"), (b" " * (MAX_TEXT_LENGTH + 1), "longer than")],
    ids=["not-utf8", "too-long"],
)
def test_from_json_rejects_bytes(data: bytes, reason: str) -> None:
    """Bytes are bounded and must be UTF-8."""
    with pytest.raises(InvalidVectorClock, match=reason):
        VectorClock.from_json(data)


def test_from_json_rejects_what_is_not_text() -> None:
    """A caller passing a non-text value gets InvalidVectorClock, not TypeError."""
    with pytest.raises(InvalidVectorClock, match="expected JSON text"):
        VectorClock.from_json(None)  # type: ignore[arg-type]


def test_from_json_names_the_field() -> None:
    """The field given is the one the error names."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock.from_json("[]", field="vector_clock_body")
    assert caught.value.field == "vector_clock_body"


@given(any_clocks)
def test_json_round_trip(clock: VectorClock) -> None:
    """A clock survives its JSON text."""
    assert VectorClock.from_json(clock.to_json()) == clock


# -- entity tags ----------------------------------------------------------------------


def test_to_etag_is_the_readable_strong_tag() -> None:
    """Sorted node=counter pairs joined by ';' in a strong tag."""
    tag = VectorClock({"node-b": 5, "node-a": 3}).to_etag()
    assert tag == EntityTag("node-a=3;node-b=5")
    assert str(tag) == '"node-a=3;node-b=5"'


def test_empty_clock_is_the_empty_tag() -> None:
    """The empty clock is the empty opaque-tag, and back."""
    assert str(VectorClock().to_etag()) == '""'
    assert VectorClock.from_etag(EntityTag("")) == VectorClock()


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        (EntityTag("a=1", weak=True), "weak"),
        (EntityTag("b=1;a=1"), "ascending order"),
        (EntityTag("a=1;a=2"), "ascending order"),
        (EntityTag("a=0"), "positive decimal"),
        (EntityTag("a=01"), "positive decimal"),
        (EntityTag("a=-1"), "positive decimal"),
        (EntityTag("a=+1"), "positive decimal"),
        (EntityTag("a=1.0"), "positive decimal"),
        (EntityTag("a=\u00b2"), "positive decimal"),
        (EntityTag("a"), "positive decimal"),
        (EntityTag("a="), "positive decimal"),
        (EntityTag("=1"), "node name"),
        (EntityTag("a=1;"), "node name"),
        (EntityTag(";a=1"), "node name"),
        (EntityTag("a!=1"), "node name"),
        (EntityTag("a=9007199254740992"), "exceeds"),
        (EntityTag("a=12345678901234567"), "positive decimal"),
        (EntityTag(";".join(f"n{i:03}=1" for i in range(MAX_NODES + 1))), "more than 64"),
        (EntityTag("a=1" * (MAX_TEXT_LENGTH // 3 + 1)), "longer than"),
    ],
    ids=[
        "weak",
        "unsorted",
        "duplicate",
        "zero",
        "leading-zero",
        "negative",
        "plus-sign",
        "decimal-point",
        "superscript-digit",
        "no-equals",
        "no-counter",
        "no-name",
        "trailing-separator",
        "leading-separator",
        "bad-name",
        "too-large",
        "too-many-digits",
        "too-many-nodes",
        "too-long",
    ],
)
def test_from_etag_rejects(tag: EntityTag, reason: str) -> None:
    """Only the canonical strong tag of a clock reads as a clock."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock.from_etag(tag)
    assert reason in caught.value.reason
    assert caught.value.field == "ETag"


@given(any_clocks)
def test_etag_round_trip(clock: VectorClock) -> None:
    """A clock survives its tag, and the tag survives the RFC 9110 parser."""
    tag = clock.to_etag()
    assert parse(str(tag)) == tag
    assert VectorClock.from_etag(tag) == clock


@given(any_clocks, any_clocks)
def test_etag_is_one_to_one(a: VectorClock, b: VectorClock) -> None:
    """Two clocks share a tag exactly when they are equal."""
    assert (a.to_etag() == b.to_etag()) == (a == b)


# -- If-Match -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ['"a=1;b=2"', ' "a=1;b=2"\t', '{"a":1,"b":2}', ' {"b": 2, "a": 1} '],
    ids=["tag", "tag-with-ows", "json", "json-with-ows"],
)
def test_from_header_reads_tag_or_json(value: str) -> None:
    """If-Match may carry the quoted tag or, as seed 000's clients send, the JSON."""
    assert VectorClock.from_header(value) == VectorClock({"a": 1, "b": 2})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("*", "opaque-tag"),
        ('"a=1", "b=1"', "unexpected text"),
        ('W/"a=1"', "weak"),
        ("a=1", "opaque-tag"),
        ("", "opaque-tag"),
        ('"a=1', "unterminated"),
        ('"b=1;a=1"', "ascending order"),
        ('{"a":-1}', "must be 0 to"),
        ('{"a":1', "not JSON"),
        ('"' + "a" * MAX_TEXT_LENGTH + '"', "longer than"),
    ],
    ids=[
        "wildcard",
        "list",
        "weak",
        "bare",
        "empty",
        "unterminated",
        "non-canonical",
        "bad-json-clock",
        "bad-json",
        "too-long",
    ],
)
def test_from_header_rejects(value: str, reason: str) -> None:
    """An If-Match that is no clock raises InvalidVectorClock naming If-Match and the value."""
    with pytest.raises(InvalidVectorClock) as caught:
        VectorClock.from_header(value)
    assert reason in caught.value.reason
    assert caught.value.field == "If-Match"
    assert caught.value.value == value


def test_from_header_rejects_what_is_not_text() -> None:
    """A non-string header value raises InvalidVectorClock, not TypeError."""
    with pytest.raises(InvalidVectorClock, match="expected a header value"):
        VectorClock.from_header(b'"a=1"')  # type: ignore[arg-type]


@given(any_clocks)
def test_header_round_trip(clock: VectorClock) -> None:
    """The ETag header and the JSON body member both come back as the clock."""
    assert VectorClock.from_header(str(clock.to_etag())) == clock
    assert VectorClock.from_header(clock.to_json()) == clock


# -- hostile input --------------------------------------------------------------------

json_ish = st.text(alphabet='{}[]":,0123456789-+eE.abtrunlsfNIy \\', max_size=60)
tag_ish = st.text(alphabet='ab=;0123456789-._~!#W/" ,{}:é', max_size=40)
etagc = "".join(chr(c) for c in [0x21, *range(0x23, 0x7F), *range(0x80, 0x100)])


@given(st.one_of(st.text(), json_ish))
def test_from_json_raises_only_invalid_vector_clock(text: str) -> None:
    """Arbitrary text parses to a clock or raises InvalidVectorClock, nothing else."""
    try:
        clock = VectorClock.from_json(text)
    except InvalidVectorClock:
        return
    assert VectorClock.from_header(str(clock.to_etag())) == clock


@given(st.binary())
def test_from_json_bytes_raises_only_invalid_vector_clock(data: bytes) -> None:
    """Arbitrary bytes parse to a clock or raise InvalidVectorClock, nothing else."""
    try:
        clock = VectorClock.from_json(data)
    except InvalidVectorClock:
        return
    assert VectorClock.from_header(str(clock.to_etag())) == clock


@given(st.one_of(st.text(), json_ish, tag_ish))
def test_from_header_raises_only_invalid_vector_clock(text: str) -> None:
    """Arbitrary header values parse to a clock or raise InvalidVectorClock, nothing else."""
    try:
        clock = VectorClock.from_header(text)
    except InvalidVectorClock:
        return
    assert VectorClock.from_header(str(clock.to_etag())) == clock


@given(st.one_of(st.text(alphabet=etagc), st.text(alphabet="ab=;0123456789")), st.booleans())
def test_from_etag_raises_only_invalid_vector_clock(opaque: str, weak: bool) -> None:
    """Arbitrary entity tags read as a clock or raise InvalidVectorClock, nothing else."""
    try:
        clock = VectorClock.from_etag(EntityTag(opaque, weak=weak))
    except InvalidVectorClock:
        return
    assert clock.to_etag() == EntityTag(opaque, weak=weak)

"""Idempotency keys: the field's grammar, fingerprints, stored responses, what is stored,
expiry, the decision for a key's record, and the problems its errors become."""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist import idempotency
from optimist.errors import (
    CorruptRecord,
    IdempotencyError,
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidInput,
    OptimistError,
)
from optimist.idempotency import (
    DEFAULT_TTL,
    MAX_KEY_LENGTH,
    Completed,
    Conflict,
    Fingerprint,
    IdempotencyKey,
    InFlight,
    Mismatch,
    Proceed,
    Record,
    Replay,
    StoredResponse,
    decide,
    expired,
    parse,
    storable,
)
from optimist.problem import from_error

PRINTABLE = [chr(code) for code in range(0x20, 0x7F)]
keys = st.text(alphabet=st.sampled_from(PRINTABLE), min_size=1, max_size=MAX_KEY_LENGTH)
UUID = "8e03978e-40d5-43e8-bc93-6894a57f9324"
LONGEST = "k" * MAX_KEY_LENGTH

# --- Parsing the field ---------------------------------------------------------------

VALID: list[tuple[str | list[str] | None, str | None]] = [
    (f'"{UUID}"', UUID),
    ('"a b"', "a b"),
    ('"a\\"b"', 'a"b'),
    ('"a\\\\b"', "a\\b"),
    ('  "a"', "a"),
    ('"a" \t', "a"),
    (f'"{LONGEST}"', LONGEST),
    ('"a";v=1', "a"),
    ('"a"; v=1;w', "a"),
    ('"a";i=-12;d=1.5;s="x\\"";t=tok/x:y;*b=:YWJj:;c=:YWI:;f=?0;g=@1659578233', "a"),
    ('"a";u=%"f%c3%bc"', "a"),
    ('"a";i=123456789012345;d=-123456789012.123', "a"),
    ('"a", "a"', "a"),
    ('"a"\t,\t"a";v=1', "a"),
    (['"a"', '"a"'], "a"),
    (['"a";v=1', '"a";v=2'], "a"),
    ([], None),
    (None, None),
]


@pytest.mark.parametrize(
    ("field", "expected"),
    VALID,
    ids=[
        "uuid",
        "space-inside",
        "escaped-quote",
        "escaped-backslash",
        "leading-sp",
        "trailing-ows",
        "longest",
        "parameter",
        "parameters-sp-and-boolean",
        "parameter-every-bare-type",
        "parameter-display-string",
        "parameter-longest-numbers",
        "joined-same-key",
        "joined-ows-and-parameters",
        "repeated-same-key",
        "repeated-other-parameters",
        "no-lines",
        "absent",
    ],
)
def test_parse_valid(field: str | list[str] | None, expected: str | None) -> None:
    """A String Item (parameters ignored), repeated only as itself, is the key."""
    key = parse(field)
    assert key == (None if expected is None else IdempotencyKey(expected))


INVALID: list[tuple[str | list[str], str, int]] = [
    ("", "the field is empty", 0),
    ("   ", "the field is empty", 0),
    ('""', "the key is empty", 0),
    (f'"{LONGEST}k"', f"longer than {MAX_KEY_LENGTH} characters", 0),
    ("abc", "expected '\"' to open the Idempotency-Key", 0),
    (UUID, "expected '\"' to open the Idempotency-Key", 0),
    ('("a")', "expected '\"' to open the Idempotency-Key", 0),
    ('\t"a"', "expected '\"' to open the Idempotency-Key", 0),
    ('"abc', "the sf-string is not closed", 4),
    ('"a\\nb"', "may be escaped", 3),
    ('"a\\', "may be escaped", 3),
    ('"a\tb"', "'\\t' is not printable ASCII", 2),
    ('"é"', "'é' is not printable ASCII", 1),
    ('"a" "b"', "unexpected '\"' after", 4),
    ('"a",', "a ',' must be followed by another member", 4),
    ('"a", "b"', "a second, different key", 5),
    (['"a"', '"b"'], "a second, different key", 0),
    ('"a";A=1', "a parameter name starts with", 4),
    ('"a";=1', "a parameter name starts with", 4),
    ('"a";k=', "expected a parameter value", 6),
    ('"a";k=-', "expected a digit", 7),
    ('"a";k=1.2345', "one to three fractional digits", 11),
    ('"a";k=1.', "one to three fractional digits", 8),
    ('"a";k=1234567890123456', "the number is too long", 21),
    ('"a";k=1234567890123.5', "at most 12 integer digits", 19),
    ('"a";k=?2', "a Boolean is ?0 or ?1", 7),
    ('"a";k=:YWJj', "the Byte Sequence is not closed", 6),
    ('"a";k=:YW!j:', "'!' is not base64", 9),
    ('"a";k=:Y=Wj:', "'=' can only pad the end", 6),
    ('"a";k=:YWJjZ:', "the Byte Sequence is not base64", 6),
    ('"a";k=@1.5', "a Date is an Integer", 10),
    ('"a";k=%x', "expected '\"' after '%'", 7),
    ('"a";k=%"x', "the Display String is not closed", 9),
    ('"a";k=%"%C3"', "two lowercase hex digits", 8),
    ('"a";k=%"%c3"', "the Display String is not UTF-8", 12),
    ('"a";k="b', "the sf-string is not closed", 8),
]


@pytest.mark.parametrize(
    ("field", "reason", "position"),
    INVALID,
    ids=[
        "empty",
        "only-sp",
        "empty-key",
        "too-long",
        "token",
        "bare-uuid",
        "inner-list",
        "leading-tab",
        "unclosed",
        "bad-escape",
        "escape-at-end",
        "tab-inside",
        "non-ascii",
        "two-items",
        "trailing-comma",
        "joined-different-keys",
        "repeated-different-keys",
        "parameter-upper-case",
        "parameter-no-name",
        "parameter-no-value",
        "parameter-bare-minus",
        "parameter-decimal-fraction",
        "parameter-decimal-dot",
        "parameter-integer-long",
        "parameter-decimal-long",
        "parameter-boolean",
        "parameter-bytes-unclosed",
        "parameter-bytes-alphabet",
        "parameter-bytes-padding",
        "parameter-bytes-length",
        "parameter-date-decimal",
        "parameter-display-no-quote",
        "parameter-display-unclosed",
        "parameter-display-upper-hex",
        "parameter-display-not-utf8",
        "parameter-string-unclosed",
    ],
)
def test_parse_invalid(field: str | list[str], reason: str, position: int) -> None:
    """Anything else is a 400 that says what broke, and where in the line."""
    with pytest.raises(InvalidIdempotencyKey) as caught:
        parse(field)
    error = caught.value
    assert reason in error.reason
    assert error.position == position
    assert error.reason.endswith(f"at position {position}")
    assert (error.field, error.status) == ("Idempotency-Key", 400)
    assert isinstance(error, InvalidInput)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("", "the key is empty"), ("k" * 256, "longer than 255"), ("a\nb", "'\\n' is not printable")],
    ids=["empty", "too-long", "control"],
)
def test_key_refuses_what_no_field_can_carry(value: str, reason: str) -> None:
    """An IdempotencyKey holds only what a valid field can carry."""
    with pytest.raises(InvalidIdempotencyKey, match=re.escape(reason)):
        IdempotencyKey(value)


def test_serialize_escapes_quote_and_backslash() -> None:
    """serialize() gives the sf-string a client sends, escaping only '"' and '\\'."""
    assert IdempotencyKey('a"b\\c d').serialize() == '"a\\"b\\\\c d"'


@given(keys)
def test_serialize_then_parse_is_the_key(value: str) -> None:
    """Every valid key survives serialize() and parse()."""
    key = IdempotencyKey(value)
    assert parse(key.serialize()) == key


@given(keys, st.lists(st.sampled_from([";a", ";b=1", "; c=?1", ';d="x"', ";e=:YQ==:"])))
def test_parameters_never_change_the_key(value: str, parameters: list[str]) -> None:
    """Parameters on the Item are parsed and ignored."""
    key = IdempotencyKey(value)
    assert parse(key.serialize() + "".join(parameters)) == key


@given(st.one_of(st.text(), st.lists(st.text(), max_size=3)))
def test_parse_raises_only_its_own_error(field: str | list[str]) -> None:
    """Arbitrary text gives a key, None, or InvalidIdempotencyKey: never anything else."""
    with contextlib.suppress(InvalidIdempotencyKey):
        parse(field)


# --- Fingerprints --------------------------------------------------------------------

IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
RFC850 = "Sunday, 06-Nov-94 08:49:37 GMT"


def fingerprint(**fields: object) -> Fingerprint:
    """A PATCH to /notes/1 with If-Match "a", with ``fields`` changed."""
    arguments: dict[str, object] = {"method": "PATCH", "target": "/notes/1", "if_match": '"a"'}
    arguments.update(fields)
    return Fingerprint.of(**arguments)  # type: ignore[arg-type]


SAME: list[tuple[dict[str, object], dict[str, object]]] = [
    ({"if_match": ['"a"', '"b"']}, {"if_match": '"a", "b"'}),
    ({"if_match": '"a",W/"b"'}, {"if_match": ' "a" ,\t, W/"b" '}),
    ({"if_none_match": " * "}, {"if_none_match": ["*"]}),
    ({"if_match": ","}, {"if_match": ""}),
    ({"media_type": "Application/JSON"}, {"media_type": "application/json"}),
    ({"media_type": "text/plain;charset=UTF-8"}, {"media_type": 'text/plain; Charset="utf-8"'}),
    ({"media_type": 'a/b; q="x"'}, {"media_type": "a/b;q=x"}),
    ({"media_type": 'a/b; q="x\\"y"'}, {"media_type": 'a/b; q="x\\"y"'}),
    ({"media_type": "a/b;;q=x"}, {"media_type": "a/b; q=x"}),
    ({"if_modified_since": IMF}, {"if_modified_since": [IMF]}),
    ({"body": b"{}"}, {"body": b"{}"}),
]


@pytest.mark.parametrize(
    ("first", "second"),
    SAME,
    ids=[
        "if-match-lines-joined",
        "if-match-ows-and-empty-members",
        "wildcard-ows",
        "empty-lists",
        "media-type-case",
        "charset-case-and-quotes",
        "token-or-quoted-string",
        "escaped-quote-kept",
        "empty-parameter",
        "one-line-or-its-list",
        "same-body",
    ],
)
def test_same_meaning_same_fingerprint(first: dict[str, object], second: dict[str, object]) -> None:
    """Field values that certainly mean the same give equal fingerprints."""
    assert fingerprint(**first) == fingerprint(**second)


DIFFERENT: list[tuple[dict[str, object], dict[str, object], tuple[str, ...]]] = [
    ({"method": "patch"}, {}, ("method",)),
    ({"target": "/notes/1?a=1&b=2"}, {"target": "/notes/1?b=2&a=1"}, ("target",)),
    ({"if_match": 'W/"a"'}, {}, ("If-Match",)),
    ({"if_match": None}, {"if_match": ""}, ("If-Match",)),
    ({"if_match": "a"}, {}, ("If-Match",)),
    ({"if_match": '"a" "b"'}, {"if_match": '"a", "b"'}, ("If-Match",)),
    ({"if_match": None, "if_none_match": '"a"'}, {}, ("If-Match", "If-None-Match")),
    ({"if_modified_since": IMF}, {"if_modified_since": RFC850}, ("If-Modified-Since",)),
    ({"if_unmodified_since": [IMF, IMF]}, {"if_unmodified_since": IMF}, ("If-Unmodified-Since",)),
    ({"media_type": "a/b; q=X"}, {"media_type": "a/b; q=x"}, ("Content-Type",)),
    ({"media_type": "a/b; q=1; r=2"}, {"media_type": "a/b; r=2; q=1"}, ("Content-Type",)),
    ({"media_type": "not a type"}, {"media_type": "Not a type"}, ("Content-Type",)),
    ({"media_type": None}, {"media_type": "application/json"}, ("Content-Type",)),
    ({"body": b"{}"}, {"body": b"{ }"}, ("body",)),
]


@pytest.mark.parametrize(
    ("first", "second", "differences"),
    DIFFERENT,
    ids=[
        "method-case",
        "query-order",
        "weak-or-strong",
        "absent-or-empty-list",
        "bare-tag-kept-as-sent",
        "malformed-kept-as-sent",
        "if-match-or-if-none-match",
        "date-formats",
        "date-lines",
        "parameter-value-case",
        "parameter-order",
        "unparsed-media-type-kept-as-sent",
        "media-type-absent",
        "body",
    ],
)
def test_other_meaning_other_fingerprint(
    first: dict[str, object], second: dict[str, object], differences: tuple[str, ...]
) -> None:
    """Values not certainly alike differ, and differences() names the parts a client knows."""
    one, other = fingerprint(**first), fingerprint(**second)
    assert one != other
    assert one.differences(other) == differences


def test_fingerprint_hashes_the_body() -> None:
    """The body enters as its SHA-256; no body is the hash of the empty string."""
    assert fingerprint(body=b"x").body_sha256 == hashlib.sha256(b"x").hexdigest()
    assert fingerprint().body_sha256 == hashlib.sha256(b"").hexdigest()


def test_fingerprint_text_is_stable() -> None:
    """The text form for storage is fixed: one ASCII JSON object, keys in order."""
    text = fingerprint(if_modified_since=IMF, media_type="text/plain; charset=UTF-8").to_text()
    assert text == (
        '{"v":1,"method":"PATCH","target":"/notes/1","if_match":"\\"a\\"","if_none_match":null,'
        '"if_modified_since":["Sun, 06 Nov 1994 08:49:37 GMT"],"if_unmodified_since":null,'
        '"media_type":"text/plain; charset=utf-8","body_sha256":"'
        + hashlib.sha256(b"").hexdigest()
        + '"}'
    )


lines = st.lists(st.text(max_size=8), max_size=2)
fields = st.one_of(st.none(), st.text(max_size=12), lines)


@given(
    st.builds(
        Fingerprint.of,
        st.text(max_size=8),
        st.text(max_size=20),
        body=st.binary(max_size=16),
        media_type=st.one_of(st.none(), st.text(max_size=20), st.just("A/B; C=D")),
        if_match=fields,
        if_none_match=fields,
        if_modified_since=fields,
        if_unmodified_since=fields,
    )
)
def test_fingerprint_text_round_trip(value: Fingerprint) -> None:
    """from_text(to_text()) gives the fingerprint back, whatever it holds."""
    assert Fingerprint.from_text(value.to_text()) == value


raw = st.tuples(
    st.sampled_from(["POST", "PATCH", "post"]),
    st.sampled_from(["/a", "/a?x=1", "/b"]),
    st.binary(max_size=2),
    st.one_of(st.none(), st.lists(st.sampled_from([IMF, RFC850, ""]), max_size=2)),
)


@given(raw, raw)
def test_fingerprints_equal_iff_raw_parts_equal(
    first: tuple[str, str, bytes, list[str] | None],
    second: tuple[str, str, bytes, list[str] | None],
) -> None:
    """Method, target, body and dates, compared as sent: equal exactly when they are."""

    def of(parts: tuple[str, str, bytes, list[str] | None]) -> Fingerprint:
        method, target, body, since = parts
        return Fingerprint.of(method, target, body=body, if_unmodified_since=since)

    assert (of(first) == of(second)) == (first == second)


CORRUPT_TEXT = [
    "not json",
    "[]",
    '{"method":"PATCH"}',
    fingerprint().to_text().replace('"v":1', '"v":2'),
    fingerprint().to_text().replace('"PATCH"', "7"),
    fingerprint().to_text().replace('"if_match":"\\"a\\""', '"if_match":1'),
    fingerprint().to_text().replace('"if_modified_since":null', '"if_modified_since":"x"'),
    fingerprint().to_text().replace('"if_modified_since":null', '"if_modified_since":[1]'),
    fingerprint().to_text().replace(hashlib.sha256(b"").hexdigest(), "00"),
    fingerprint().to_text().replace('"target"', '"path"'),
]


@pytest.mark.parametrize(
    "text",
    CORRUPT_TEXT,
    ids=[
        "not-json",
        "not-an-object",
        "members-missing",
        "other-version",
        "method-not-text",
        "if-match-not-text",
        "dates-not-a-list",
        "date-line-not-text",
        "body-not-a-sha256",
        "unknown-member",
    ],
)
def test_corrupt_fingerprint_text(text: str) -> None:
    """Text that to_text() did not write is a CorruptRecord (500), not a crash."""
    with pytest.raises(CorruptRecord) as caught:
        Fingerprint.from_text(text)
    assert (caught.value.record, caught.value.status) == ("fingerprint", 500)


# --- Stored responses ----------------------------------------------------------------


def test_capture_keeps_the_replayed_fields() -> None:
    """capture() keeps the replayed fields, lower-cased, in order, repeats included."""
    stored = StoredResponse.capture(
        201,
        [
            ("ETag", '"b"'),
            ("Date", IMF),
            ("Location", "/notes/2"),
            ("Content-Type", "application/json"),
            ("Set-Cookie", "s=1"),
            ("Content-Length", "2"),
            ("Link", "</a>"),
            ("Link", "</b>"),
        ],
        bytearray(b"{}"),
    )
    assert stored == StoredResponse(
        201,
        (("etag", '"b"'), ("location", "/notes/2"), ("content-type", "application/json")),
        b"{}",
    )


def test_capture_with_other_fields() -> None:
    """An application may replay other fields than the default ones."""
    stored = StoredResponse.capture(
        200, [("Link", "</a>"), ("ETag", '"b"')], b"", replayed=["LINK"]
    )
    assert stored.headers == (("link", "</a>"),)


@pytest.mark.parametrize("status", [99, 600], ids=["below", "above"])
def test_stored_response_needs_an_http_status(status: int) -> None:
    """A status outside 100-599 is a programming error."""
    with pytest.raises(ValueError, match="not an HTTP status"):
        StoredResponse(status)


def test_stored_response_bytes_are_stable() -> None:
    """The storage form is fixed: a JSON line, then the body byte for byte."""
    stored = StoredResponse(201, (("etag", '"b"'), ("location", "/é")), b"{}\n\x00")
    assert stored.to_bytes() == (
        b'{"v":1,"status":201,"headers":[["etag","\\"b\\""],["location","/\\u00e9"]]}\n{}\n\x00'
    )


@given(
    st.builds(
        StoredResponse,
        st.integers(100, 599),
        st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=4).map(tuple),
        st.binary(max_size=64),
    )
)
def test_stored_response_round_trip(stored: StoredResponse) -> None:
    """from_bytes(to_bytes()) gives the response back, whatever its body holds."""
    assert StoredResponse.from_bytes(stored.to_bytes()) == stored


CORRUPT_BYTES = [
    b"",
    b'{"v":1,"status":200,"headers":[]}',
    b"not json\n",
    b"[]\n",
    b'{"v":2,"status":200,"headers":[]}\n',
    b'{"v":1,"headers":[]}\n',
    b'{"v":1,"status":true,"headers":[]}\n',
    b'{"v":1,"status":"200","headers":[]}\n',
    b'{"v":1,"status":200,"headers":{"ab":"c"}}\n',
    b'{"v":1,"status":200,"headers":[["a"]]}\n',
    b'{"v":1,"status":200,"headers":[["a",1]]}\n',
    b'{"v":1,"status":700,"headers":[]}\n',
]


@pytest.mark.parametrize(
    "data",
    CORRUPT_BYTES,
    ids=[
        "empty",
        "no-newline",
        "not-json",
        "not-an-object",
        "other-version",
        "no-status",
        "boolean-status",
        "text-status",
        "fields-not-a-list",
        "field-not-a-pair",
        "field-value-not-text",
        "status-out-of-range",
    ],
)
def test_corrupt_stored_response(data: bytes) -> None:
    """Bytes that to_bytes() did not write are a CorruptRecord (500), not a crash."""
    with pytest.raises(CorruptRecord) as caught:
        StoredResponse.from_bytes(data)
    assert caught.value.record == "response"


# --- What is stored, and for how long ------------------------------------------------

STORABLE = [
    (200, True),
    (201, True),
    (204, True),
    (299, True),
    (404, True),
    (409, True),
    (410, True),
    (412, True),
    (100, False),
    (303, False),
    (304, False),
    (400, False),
    (401, False),
    (403, False),
    (413, False),
    (415, False),
    (422, False),
    (428, False),
    (429, False),
    (500, False),
    (503, False),
]


@pytest.mark.parametrize(
    ("status", "stored"), STORABLE, ids=[str(status) for status, _ in STORABLE]
)
def test_storable(status: int, stored: bool) -> None:
    """2xx and the state the endpoint met are stored; 5xx and input errors are not."""
    assert storable(status) is stored


T0 = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)

EXPIRY = [
    (T0, T0 + DEFAULT_TTL - timedelta(microseconds=1), DEFAULT_TTL, False),
    (T0, T0 + DEFAULT_TTL, DEFAULT_TTL, True),
    (T0, T0 + timedelta(days=2), DEFAULT_TTL, True),
    (T0, T0 - timedelta(minutes=1), DEFAULT_TTL, False),
    (T0.replace(tzinfo=None), T0 + timedelta(hours=1), timedelta(hours=1), True),
    (T0, (T0 + timedelta(minutes=59)).replace(tzinfo=None), timedelta(hours=1), False),
    (T0, T0.astimezone(timezone(timedelta(hours=2))) + DEFAULT_TTL, DEFAULT_TTL, True),
]


@pytest.mark.parametrize(
    ("created_at", "now", "ttl", "gone"),
    EXPIRY,
    ids=[
        "just-before",
        "exactly-at-ttl",
        "long-after",
        "created-in-the-future",
        "naive-created-is-utc",
        "naive-now-is-utc",
        "other-zone",
    ],
)
def test_expired(created_at: datetime, now: datetime, ttl: timedelta, gone: bool) -> None:
    """A record answers for ttl from its creation, and not a moment longer."""
    assert expired(created_at, now, ttl) is gone


def test_published_defaults() -> None:
    """24 hours, keys of 255 characters, Stripe's replay marker."""
    assert DEFAULT_TTL.total_seconds() == 24 * 60 * 60
    assert expired(T0, T0 + timedelta(hours=24))
    assert MAX_KEY_LENGTH == 255
    assert (idempotency.REPLAYED_HEADER, idempotency.REPLAYED_VALUE) == (
        "Idempotent-Replayed",
        "true",
    )
    assert idempotency.HEADER == "Idempotency-Key"


# --- The decision --------------------------------------------------------------------

SENT = fingerprint(body=b'{"n": 1}')
OTHER = fingerprint(body=b'{"n": 2}')
DONE = StoredResponse(200, (("etag", '"b"'),), b'{"n": 1}')
FAILED = StoredResponse(412, (), b"{}")

DECISIONS: list[tuple[Record | None, Fingerprint, object]] = [
    (None, SENT, Proceed()),
    (InFlight(SENT), SENT, Conflict()),
    (InFlight(SENT), OTHER, Mismatch(SENT, OTHER)),
    (Completed(SENT, DONE), SENT, Replay(DONE)),
    (Completed(SENT, FAILED), SENT, Replay(FAILED)),
    (Completed(SENT, DONE), OTHER, Mismatch(SENT, OTHER)),
]


@pytest.mark.parametrize(
    ("record", "incoming", "decision"),
    DECISIONS,
    ids=[
        "new-key",
        "in-flight-same",
        "in-flight-other",
        "completed-same",
        "completed-with-412",
        "completed-other",
    ],
)
def test_decide(record: Record | None, incoming: Fingerprint, decision: object) -> None:
    """The draft's table: proceed, replay, 409 while in flight, 422 for another request."""
    assert decide(record, incoming) == decision


def test_resend_with_a_stale_if_match_replays() -> None:
    """The same attempt resent after its write landed gets the 2xx, not 412."""
    first = fingerprint(if_match='"v1"', body=b"+1")
    assert decide(Completed(first, DONE), fingerprint(if_match='"v1"', body=b"+1")) == Replay(DONE)


def test_new_attempt_with_the_same_key_is_a_mismatch() -> None:
    """A new attempt after a merge carries a new If-Match: under the old key, 422."""
    first = fingerprint(if_match='"v1"', body=b"+1")
    decision = decide(Completed(first, DONE), fingerprint(if_match='"v2"', body=b"+1"))
    assert decision == Mismatch(first, fingerprint(if_match='"v2"', body=b"+1"))


def test_conflict_error() -> None:
    """Conflict gives the 409 that carries the key."""
    error = Conflict().error(IdempotencyKey("k1"))
    assert isinstance(error, IdempotencyKeyInFlight)
    assert (error.status, error.key, error.documentation) == (409, "k1", None)


def test_mismatch_error() -> None:
    """Mismatch gives the 422 that names what differs."""
    error = Mismatch(SENT, OTHER).error(IdempotencyKey("k1"), "https://example.com/idempotency")
    assert isinstance(error, IdempotencyKeyReused)
    assert (error.status, error.key, error.differences) == (422, "k1", ("body",))
    assert error.documentation == "https://example.com/idempotency"
    assert "it differs in body" in error.detail


# --- The errors as problems ----------------------------------------------------------

PROBLEMS: list[tuple[OptimistError, dict[str, object]]] = [
    (
        IdempotencyKeyRequired("POST", "/projects"),
        {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "POST /projects requires an Idempotency-Key header: send a new random "
            "key (a UUID) with each new request, and the same key when resending it",
            "invalid_params": [{"name": "Idempotency-Key", "reason": "required"}],
        },
    ),
    (
        IdempotencyKeyRequired("POST", "/projects", "https://example.com/idempotency"),
        {
            "type": "https://example.com/idempotency",
            "title": "Idempotency-Key is missing",
            "status": 400,
            "detail": "POST /projects requires an Idempotency-Key header: send a new random "
            "key (a UUID) with each new request, and the same key when resending it",
            "invalid_params": [{"name": "Idempotency-Key", "reason": "required"}],
        },
    ),
    (
        IdempotencyKeyInFlight("k" * 100, "https://example.com/idempotency"),
        {
            "type": "https://example.com/idempotency",
            "title": "A request is outstanding for this Idempotency-Key",
            "status": 409,
            "detail": "a request with this Idempotency-Key is still being processed: resend it "
            "unchanged once that one has been answered",
            "idempotency_key": "k" * 80 + "…",
        },
    ),
    (
        IdempotencyKeyReused("k1", ["If-Match", "body"]),
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "this Idempotency-Key was used for another request (it differs in "
            "If-Match, body): use a new key for a new request",
            "idempotency_key": "k1",
            "differences": ["If-Match", "body"],
        },
    ),
    (
        IdempotencyKeyReused("k1", [], "https://example.com/idempotency"),
        {
            "type": "https://example.com/idempotency",
            "title": "Idempotency-Key is already used",
            "status": 422,
            "detail": "this Idempotency-Key was used for another request (it differs in the "
            "request): use a new key for a new request",
            "idempotency_key": "k1",
            "differences": [],
        },
    ),
    (
        IdempotencyError("some other misuse"),
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "some other misuse",
        },
    ),
    (
        CorruptRecord("response", "Expecting value: line 1 column 1 (char 0)"),
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "A stored record could not be read.",
        },
    ),
]


@pytest.mark.parametrize(
    ("error", "body"),
    PROBLEMS,
    ids=[
        "required",
        "required-documented",
        "in-flight-documented",
        "reused",
        "reused-documented",
        "base-class",
        "corrupt-record",
    ],
)
def test_problem(error: OptimistError, body: dict[str, object]) -> None:
    """Each error is a problem; with documentation, its type and the draft's title."""
    assert from_error(error).to_dict() == body


def test_corrupt_record_keeps_its_reason() -> None:
    """The reason stays on the error for the log, out of the response."""
    error = CorruptRecord("fingerprint", "bad")
    assert (error.record, error.reason) == ("fingerprint", "bad")
    assert error.detail == "the stored fingerprint cannot be read: bad"

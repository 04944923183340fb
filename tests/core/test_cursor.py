"""Pagination cursors: round trips, binding to a query, snapshot expiry, hostile input."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.cursor import Cursor, CursorCodec, Key
from optimist.errors import (
    ExpiredToken,
    ForeignToken,
    InvalidToken,
    MalformedToken,
    TamperedToken,
)
from optimist.tokens import JSONInput, TokenSigner

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
QUERY = "GET /v1/tests/sessions?status=scheduled"
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(clock: Clock) -> CursorCodec:
    return CursorCodec(TokenSigner(["k2", "k1"], clock=clock))


def typed(position: tuple[Key, ...]) -> list[tuple[type, Key]]:
    """A position with each value's type, since 1 == 1.0 == True in Python."""
    return [(type(value), value) for value in position]


def sample_cursor() -> Cursor:
    """A cursor as the sessions listing makes one: (created_at, id) after the first page."""
    return Cursor(
        position=("2024-05-01T11:59:58.123456+00:00", "3f0e0b32-9a6d-4c7e-8a43-1c7a7e2f9b11"),
        watermark=48_213,
        snapshot_at=START,
    )


# -- round trips ----------------------------------------------------------------------


def test_round_trip(codec: CursorCodec) -> None:
    """decode gives back the position, watermark and snapshot time that were encoded."""
    cursor = sample_cursor()
    decoded = codec.decode(codec.encode(cursor, query=QUERY), query=QUERY)
    assert decoded.position == cursor.position
    assert decoded.watermark == cursor.watermark
    assert decoded.snapshot_at == cursor.snapshot_at


def test_decode_fills_in_the_issue_time(codec: CursorCodec, clock: Clock) -> None:
    """The decoded cursor says when its token was made; encode ignores issued_at."""
    clock.advance(timedelta(minutes=5))
    cursor = Cursor(("a",), 1, START, issued_at=START - timedelta(days=3))
    decoded = codec.decode(codec.encode(cursor, query=QUERY), query=QUERY)
    assert decoded.issued_at == START + timedelta(minutes=5)


def test_snapshot_time_keeps_microseconds_and_becomes_utc(codec: CursorCodec) -> None:
    """The snapshot instant survives exactly, returned in UTC."""
    moment = datetime(2024, 5, 1, 7, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-4)))
    token = codec.encode(Cursor((), 0, moment), query=QUERY)
    snapshot_at = codec.decode(token, query=QUERY).snapshot_at
    assert snapshot_at == moment
    assert snapshot_at.utcoffset() == timedelta(0)


def test_token_is_url_safe_and_short(codec: CursorCodec) -> None:
    """A cursor needs no escaping in a query string and stays well under URL limits."""
    token = codec.encode(sample_cursor(), query=QUERY)
    assert URL_SAFE.fullmatch(token)
    assert len(token) <= 320


def test_token_is_url_safe_whatever_the_position(codec: CursorCodec) -> None:
    """Spaces, slashes, ampersands and non-ASCII in the position do not leak into the token."""
    cursor = Cursor(("a b/c?d=e&f", "\u00e9\u2603", -1.5, None, True), 3, START)
    assert URL_SAFE.fullmatch(codec.encode(cursor, query=QUERY))


keys = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


@given(
    st.lists(keys, max_size=4).map(tuple),
    st.integers(0, 2**63),
    st.datetimes(
        min_value=datetime(2024, 4, 30, 12),
        max_value=datetime(2024, 5, 1, 12),
        timezones=st.just(UTC),
    ),
)
def test_round_trip_of_any_cursor(
    position: tuple[Key, ...], watermark: int, snapshot_at: datetime
) -> None:
    """Any position, watermark and recent snapshot come back with the same types and values."""
    codec = CursorCodec(TokenSigner(["k"], clock=Clock()), max_age=timedelta(days=1))
    decoded = codec.decode(
        codec.encode(Cursor(position, watermark, snapshot_at), query="q"), query="q"
    )
    assert typed(decoded.position) == typed(position)
    assert decoded.watermark == watermark
    assert decoded.snapshot_at == snapshot_at


# -- each refusal ---------------------------------------------------------------------


def test_malformed(codec: CursorCodec) -> None:
    """A cursor that is not a token is malformed, named "cursor", 400."""
    with pytest.raises(MalformedToken) as caught:
        codec.decode("page-2", query=QUERY)
    assert caught.value.field == "cursor"
    assert caught.value.status == 400


def test_tampered(codec: CursorCodec, clock: Clock) -> None:
    """A cursor signed with a key this deployment does not hold is tampered."""
    forger = CursorCodec(TokenSigner(["guessed"], clock=clock))
    token = forger.encode(sample_cursor(), query=QUERY)
    with pytest.raises(TamperedToken) as caught:
        codec.decode(token, query=QUERY)
    assert caught.value.field == "cursor"


def test_foreign_when_issued_for_another_query(codec: CursorCodec) -> None:
    """A cursor from one listing, or with other filters, is foreign on another."""
    token = codec.encode(sample_cursor(), query=QUERY)
    with pytest.raises(ForeignToken) as caught:
        codec.decode(token, query="GET /v1/tests/sessions?status=completed")
    assert caught.value.field == "cursor"


def test_foreign_when_the_token_is_no_cursor(clock: Clock) -> None:
    """A token the same keys signed for another purpose never passes for a cursor."""
    signer = TokenSigner(["k"], clock=clock)
    token = signer.dumps({"p": [], "w": 0, "s": 0}, audience=QUERY)
    with pytest.raises(ForeignToken):
        CursorCodec(signer).decode(token, query=QUERY)


# A cursor's audience is "cursor:" + the query; only the codec's own keys could sign
# these, so they stand for a codec of another version sharing the keys.
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"p": [], "w": 0}, "not a cursor"),
        ({"p": [], "w": 0, "s": 0, "x": 1}, "not a cursor"),
        ({"p": "a", "w": 0, "s": 0}, "position"),
        ({"p": [[1]], "w": 0, "s": 0}, "position"),
        ({"p": [{"a": 1}], "w": 0, "s": 0}, "position"),
        ({"p": [], "w": -1, "s": 0}, "watermark"),
        ({"p": [], "w": True, "s": 0}, "watermark"),
        ({"p": [], "w": 1.0, "s": 0}, "watermark"),
        ({"p": [], "w": 0, "s": "2024-05-01"}, "snapshot time"),
        ({"p": [], "w": 0, "s": False}, "snapshot time"),
        ({"p": [], "w": 0, "s": 10**20}, "snapshot time"),
        ({"p": [], "w": 0, "s": -(10**20)}, "snapshot time"),
    ],
    ids=[
        "missing-member",
        "extra-member",
        "position-not-list",
        "position-nested-list",
        "position-object",
        "watermark-negative",
        "watermark-bool",
        "watermark-float",
        "snapshot-string",
        "snapshot-bool",
        "snapshot-after-year-9999",
        "snapshot-before-year-1",
    ],
)
def test_malformed_when_genuine_but_no_cursor(
    clock: Clock, payload: dict[str, JSONInput], reason: str
) -> None:
    """A genuinely signed cursor token whose content is not a cursor is malformed."""
    signer = TokenSigner(["k"], clock=clock)
    token = signer.dumps(payload, audience=f"cursor:{QUERY}")
    with pytest.raises(MalformedToken) as caught:
        CursorCodec(signer, max_age=None).decode(token, query=QUERY)
    assert reason in caught.value.reason
    assert caught.value.field == "cursor"


def test_expired_when_the_snapshot_is_too_old(codec: CursorCodec, clock: Clock) -> None:
    """A fresh token for a snapshot older than max_age is expired: 410, dated by the snapshot."""
    cursor = Cursor(("a",), 7, snapshot_at=START - timedelta(minutes=59))
    token = codec.encode(cursor, query=QUERY)
    clock.advance(timedelta(minutes=2))
    with pytest.raises(ExpiredToken) as caught:
        codec.decode(token, query=QUERY)
    assert caught.value.status == 410
    assert caught.value.field == "cursor"
    assert caught.value.issued_at == cursor.snapshot_at
    assert caught.value.max_age == timedelta(hours=1)


def test_not_expired_at_exactly_max_age(codec: CursorCodec, clock: Clock) -> None:
    """A snapshot exactly max_age old can still be read."""
    token = codec.encode(Cursor((), 1, START), query=QUERY)
    clock.advance(timedelta(hours=1))
    assert codec.decode(token, query=QUERY).snapshot_at == START


def test_no_max_age_never_expires(clock: Clock) -> None:
    """A codec without max_age accepts any old snapshot."""
    codec = CursorCodec(TokenSigner(["k"], clock=clock), max_age=None)
    token = codec.encode(Cursor((), 1, START - timedelta(days=365)), query=QUERY)
    assert codec.decode(token, query=QUERY).watermark == 1


def test_foreign_is_decided_before_expired(codec: CursorCodec, clock: Clock) -> None:
    """An old cursor offered on another listing is reported as foreign."""
    token = codec.encode(Cursor((), 1, START), query=QUERY)
    clock.advance(timedelta(days=1))
    with pytest.raises(ForeignToken):
        codec.decode(token, query="GET /admin/users")


def test_cursor_of_a_rotated_key_still_decodes(clock: Clock) -> None:
    """A traversal survives a key rotation while the old key is still listed."""
    token = CursorCodec(TokenSigner(["k1"], clock=clock)).encode(sample_cursor(), query=QUERY)
    decoded = CursorCodec(TokenSigner(["k2", "k1"], clock=clock)).decode(token, query=QUERY)
    assert decoded.position == sample_cursor().position


@given(st.one_of(st.text(max_size=300), st.text(alphabet="AZaz09_-.", max_size=300)))
def test_decode_raises_only_invalid_token(text: str) -> None:
    """Arbitrary text is refused with an InvalidToken subclass, never anything else."""
    codec = CursorCodec(TokenSigner(["k"], clock=Clock()))
    with pytest.raises(InvalidToken):
        codec.decode(text, query=QUERY)


# -- the value type -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"position": (math.nan,)}, ValueError),
        ({"position": (math.inf,)}, ValueError),
        ({"position": ([1],)}, ValueError),
        ({"position": (b"x",)}, ValueError),
        ({"watermark": -1}, ValueError),
        ({"watermark": True}, TypeError),
        ({"watermark": 1.0}, TypeError),
        ({"snapshot_at": datetime(2024, 5, 1)}, ValueError),
    ],
    ids=[
        "nan",
        "infinity",
        "list-in-position",
        "bytes-in-position",
        "negative-watermark",
        "bool-watermark",
        "float-watermark",
        "naive-snapshot",
    ],
)
def test_cursor_refuses_what_cannot_be_encoded(
    fields: dict[str, Any], error: type[Exception]
) -> None:
    """A Cursor is only built from values its token can carry exactly."""
    values: dict[str, Any] = {"position": (), "watermark": 0, "snapshot_at": START, **fields}
    with pytest.raises(error):
        Cursor(**values)


def test_cursor_is_frozen() -> None:
    """A cursor is a value: its fields cannot be reassigned."""
    cursor = sample_cursor()
    with pytest.raises(AttributeError):
        cursor.watermark = 0  # type: ignore[misc]


def test_codec_repr_shows_max_age() -> None:
    """The repr shows the expiry policy, never the keys."""
    assert repr(CursorCodec(TokenSigner(["secret"]))) == "<CursorCodec max_age=1:00:00>"

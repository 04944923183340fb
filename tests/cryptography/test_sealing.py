"""Sealed tokens: round trips, nothing readable, each refusal told apart, key rotation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.cryptography import TokenSealer
from optimist.cursor import Cursor, CursorCodec
from optimist.errors import ExpiredToken, ForeignToken, MalformedToken, TamperedToken
from optimist.tokens import JSON, MAX_TOKEN_LENGTH, TokenSigner

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
QUERY = "/admin/users?tenant=1"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sealer(clock: Clock) -> TokenSealer:
    return TokenSealer(["current-key", "previous-key"], clock=clock)


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def flipped(token: str, at: int) -> str:
    """``token`` with one bit of its decoded bytes changed, re-encoded canonically."""
    data = bytearray(raw(token))
    data[at] ^= 0x01
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()


# -- round trips ----------------------------------------------------------------------


def test_round_trip(sealer: TokenSealer) -> None:
    """loads gives back the payload and the issue time of a token from dumps."""
    token = sealer.dumps({"p": [41], "w": 9_876}, audience="listing")
    loaded = sealer.loads(token, audience="listing")
    assert loaded.payload == {"p": [41], "w": 9_876}
    assert loaded.issued_at == START


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=5), st.text())
def test_any_payload_round_trips(payload: dict[str, JSON], audience: str) -> None:
    """Every JSON object sealed for an audience opens to itself for that audience."""
    sealer = TokenSealer(["k"])
    assert sealer.loads(sealer.dumps(payload, audience=audience), audience=audience).payload == (
        payload
    )


def test_token_is_one_url_safe_segment(sealer: TokenSealer) -> None:
    """A sealed token is unpadded base64url, with no separator to escape."""
    token = sealer.dumps({"q": "a b/c?d=é"}, audience="x y")
    assert token.replace("-", "").replace("_", "").isalnum()


def test_nothing_of_the_payload_or_audience_can_be_read(sealer: TokenSealer) -> None:
    """The decoded token holds neither the payload's values nor the audience."""
    token = sealer.dumps({"position": 123456, "watermark": 987654}, audience=QUERY)
    data = raw(token)
    for secret in (b"123456", b"987654", b"position", b"watermark", b"tenant", b'"p"'):
        assert secret not in data


def test_two_tokens_of_one_payload_differ(sealer: TokenSealer) -> None:
    """A fresh nonce per token: equal cursors do not show as equal tokens."""
    assert sealer.dumps({"w": 1}, audience="a") != sealer.dumps({"w": 1}, audience="a")


# -- each refusal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "abc", "not base64!", "A" * 20, "a.b", "x" * (MAX_TOKEN_LENGTH + 1)],
    ids=["empty", "too-short", "not-base64url", "shorter-than-nonce-and-tag", "dot", "too-long"],
)
def test_malformed(sealer: TokenSealer, token: str) -> None:
    """What cannot be a sealed token at all is malformed (400), before any key is tried."""
    with pytest.raises(MalformedToken) as caught:
        sealer.loads(token, audience="a", field="cursor")
    assert caught.value.status == 400
    assert caught.value.field == "cursor"


@pytest.mark.parametrize("at", [0, 11, 12, -1], ids=["nonce", "nonce-end", "sealed", "tag"])
def test_one_changed_bit_is_tampering(sealer: TokenSealer, at: int) -> None:
    """A change anywhere, nonce, ciphertext or tag, is refused as tampered (400)."""
    token = sealer.dumps({"w": 5}, audience="a")
    with pytest.raises(TamperedToken):
        sealer.loads(flipped(token, at), audience="a")


def test_token_of_another_key_is_tampered(clock: Clock) -> None:
    """A token no configured key sealed is tampered, not foreign."""
    token = TokenSealer(["guessed"], clock=clock).dumps({}, audience="a")
    with pytest.raises(TamperedToken):
        TokenSealer(["k"], clock=clock).loads(token, audience="a")


def test_signed_token_is_not_a_sealed_one(clock: Clock) -> None:
    """A signed token of the same secret is refused by the sealer (400)."""
    token = TokenSigner(["k"], clock=clock).dumps({}, audience="a")
    with pytest.raises(MalformedToken):
        TokenSealer(["k"], clock=clock).loads(token, audience="a")


def test_foreign_audience(sealer: TokenSealer) -> None:
    """A genuine token offered for another audience is foreign, after it opened."""
    token = sealer.dumps({}, audience="/admin/users?tenant=1")
    with pytest.raises(ForeignToken):
        sealer.loads(token, audience="/admin/users?tenant=2")


def test_expired(sealer: TokenSealer, clock: Clock) -> None:
    """A token older than max_age is expired (410), and only then."""
    token = sealer.dumps({}, audience="a")
    clock.now = START + timedelta(minutes=10)
    assert sealer.loads(token, audience="a", max_age=timedelta(minutes=10))
    clock.now += timedelta(seconds=1)
    with pytest.raises(ExpiredToken) as caught:
        sealer.loads(token, audience="a", max_age=timedelta(minutes=10))
    assert caught.value.status == 410


def test_rotation(clock: Clock) -> None:
    """A token sealed with the previous key opens while that key is still listed."""
    token = TokenSealer(["old"], clock=clock).dumps({"w": 1}, audience="a")
    assert TokenSealer(["new", "old"], clock=clock).loads(token, audience="a").payload == {"w": 1}
    with pytest.raises(TamperedToken):
        TokenSealer(["new"], clock=clock).loads(token, audience="a")


def test_naive_clock_is_refused() -> None:
    """A clock without a zone cannot stamp tokens."""
    with pytest.raises(ValueError, match="aware"):
        TokenSealer(["k"], clock=lambda: datetime(2024, 1, 1)).dumps({}, audience="a")


@pytest.mark.parametrize("keys", [[], [""], "one-secret"], ids=["none", "empty", "a-string"])
def test_keys_are_checked(keys: list[str] | str) -> None:
    """No key, an empty key, or a lone string instead of a list is refused."""
    with pytest.raises((TypeError, ValueError)):
        TokenSealer(keys)


def test_repr_shows_no_key() -> None:
    """The repr counts the keys and shows none."""
    assert repr(TokenSealer(["secret-1", "secret-2"])) == "<TokenSealer keys=2>"


# -- cursors --------------------------------------------------------------------------


def test_sealed_cursor_round_trips_and_stays_bound_to_its_query(clock: Clock) -> None:
    """A CursorCodec over a sealer keeps the cursor and its binding to the listing."""
    codec = CursorCodec(TokenSealer(["k"], clock=clock), max_age=timedelta(hours=1))
    cursor = Cursor((41,), 9_876, START)
    token = codec.encode(cursor, query=QUERY)
    assert codec.decode(token, query=QUERY).position == (41,)
    assert b"9876" not in raw(token)
    with pytest.raises(ForeignToken):
        codec.decode(token, query="/admin/users?tenant=2")
    clock.now = START + timedelta(hours=1, seconds=1)
    with pytest.raises(ExpiredToken):
        codec.decode(token, query=QUERY)

"""Signed tokens: round trips, each refusal told apart, key rotation, hostile input."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.errors import (
    ExpiredToken,
    ForeignToken,
    InvalidToken,
    MalformedToken,
    TamperedToken,
)
from optimist.tokens import JSON, MAX_TOKEN_LENGTH, TokenSigner

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment_of(body: Any) -> str:
    return b64(json.dumps(body).encode())


# A well-formed signature that no key made.
BOGUS_SIGNATURE = b64(bytes(32))


def forged(raw: bytes) -> str:
    """A token of the right shape whose payload is ``raw`` and whose signature is bogus."""
    return f"{b64(raw)}.{BOGUS_SIGNATURE}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> TokenSigner:
    return TokenSigner(["current-key", "previous-key"], clock=clock)


# -- round trips ----------------------------------------------------------------------


def test_round_trip(signer: TokenSigner) -> None:
    """loads gives back the payload and the issue time of a token from dumps."""
    token = signer.dumps({"after": ["x", 3], "n": None}, audience="listing")
    loaded = signer.loads(token, audience="listing")
    assert loaded.payload == {"after": ["x", 3], "n": None}
    assert loaded.issued_at == START


def test_issue_time_is_kept_to_the_second(signer: TokenSigner, clock: Clock) -> None:
    """The issue time is stamped from the signer's clock, without the fraction."""
    clock.now = START + timedelta(seconds=7, microseconds=900_000)
    token = signer.dumps({}, audience="a")
    assert signer.loads(token, audience="a").issued_at == START + timedelta(seconds=7)


def test_clock_in_another_zone_is_read_as_the_same_instant(clock: Clock) -> None:
    """An aware clock outside UTC stamps the same instant, returned in UTC."""
    clock.now = START.astimezone(timezone(timedelta(hours=-5)))
    signer = TokenSigner(["k"], clock=clock)
    issued_at = signer.loads(signer.dumps({}, audience="a"), audience="a").issued_at
    assert issued_at == START
    assert issued_at.utcoffset() == timedelta(0)


def test_token_is_url_safe(signer: TokenSigner) -> None:
    """A token uses only base64url and one dot, so it needs no escaping anywhere."""
    token = signer.dumps({"q": "a b/c?d=é&\u2603", "n": [1.5, True]}, audience="x y")
    assert TOKEN.fullmatch(token)


def test_audience_is_not_disclosed(signer: TokenSigner) -> None:
    """Only a hash of the audience travels in the token."""
    token = signer.dumps({}, audience="csrf:tenant-7:admin")
    decoded = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"tenant-7" not in decoded
    assert b"csrf" not in decoded


def test_str_and_bytes_keys_are_the_same_key(clock: Clock) -> None:
    """A key given as text is its UTF-8 bytes."""
    token = TokenSigner(["s\u00e9cret"], clock=clock).dumps({}, audience="a")
    assert TokenSigner(["s\u00e9cret".encode()], clock=clock).loads(token, audience="a")


# -- each refusal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "<payload>.<signature>"),
        ("abc", "<payload>.<signature>"),
        (f"{segment_of({})}.{BOGUS_SIGNATURE}.x", "<payload>.<signature>"),
        (f"{segment_of({})}.{BOGUS_SIGNATURE[:-1]}", "<payload>.<signature>"),
        (f"{segment_of({})}.{BOGUS_SIGNATURE}=", "<payload>.<signature>"),
        (f"{segment_of({})}.{BOGUS_SIGNATURE[:-1]}B", "<payload>.<signature>"),
        (f"{segment_of({})}=.{BOGUS_SIGNATURE}", "not base64url"),
        (f"e30+.{BOGUS_SIGNATURE}", "not base64url"),
        (f"e31.{BOGUS_SIGNATURE}", "not base64url"),
        (f"A.{BOGUS_SIGNATURE}", "not base64url"),
        (f".{BOGUS_SIGNATURE}", "not base64url"),
        (forged(b"not json"), "not JSON"),
        (forged(bytes([0xFF, 0xFE])), "not JSON"),
        (forged(b"[" * 3000), "nested too deeply"),
        (f"{segment_of([1])}.{BOGUS_SIGNATURE}", "members a, t and p"),
        (f"{segment_of({'a': 'x', 't': 0})}.{BOGUS_SIGNATURE}", "members a, t and p"),
        (
            f"{segment_of({'a': 'x', 't': 0, 'p': {}, 'q': 1})}.{BOGUS_SIGNATURE}",
            "members a, t and p",
        ),
        (f"{segment_of({'a': 1, 't': 0, 'p': {}})}.{BOGUS_SIGNATURE}", "audience"),
        (f"{segment_of({'a': 'x', 't': True, 'p': {}})}.{BOGUS_SIGNATURE}", "issue time"),
        (f"{segment_of({'a': 'x', 't': 1.5, 'p': {}})}.{BOGUS_SIGNATURE}", "issue time"),
        (f"{segment_of({'a': 'x', 't': -1, 'p': {}})}.{BOGUS_SIGNATURE}", "issue time"),
        (f"{segment_of({'a': 'x', 't': 10**12, 'p': {}})}.{BOGUS_SIGNATURE}", "issue time"),
        (f"{segment_of({'a': 'x', 't': 0, 'p': []})}.{BOGUS_SIGNATURE}", "not a JSON object"),
        (forged(b'{"a":"x","t":0,"p":{"n":NaN}}'), "not JSON"),
        (
            f"{segment_of({'a': 'x', 't': 0, 'p': {'s': 'x' * 4000}})}.{BOGUS_SIGNATURE}",
            "longer than 4096",
        ),
    ],
    ids=[
        "empty",
        "no-dot",
        "two-dots",
        "short-signature",
        "padded-signature",
        "stray-bits-in-signature",
        "padded-payload",
        "not-base64url",
        "stray-bits-in-payload",
        "impossible-length",
        "empty-payload",
        "not-json",
        "not-utf8",
        "deep-nesting",
        "not-an-object",
        "missing-member",
        "extra-member",
        "audience-not-string",
        "time-is-bool",
        "time-is-float",
        "time-negative",
        "time-beyond-year-9999",
        "payload-not-object",
        "nan",
        "too-long",
    ],
)
def test_malformed(signer: TokenSigner, token: str, reason: str) -> None:
    """What optimist could not have issued is malformed, whatever its signature."""
    with pytest.raises(MalformedToken) as caught:
        signer.loads(token, audience="a")
    assert reason in caught.value.reason
    assert caught.value.status == 400
    assert caught.value.field == "token"


def test_malformed_when_not_a_string(signer: TokenSigner) -> None:
    """A non-string token is malformed, not a TypeError."""
    with pytest.raises(MalformedToken, match="expected a string"):
        signer.loads(None, audience="a")  # type: ignore[arg-type]


def test_tampered_when_signed_by_an_unknown_key(signer: TokenSigner, clock: Clock) -> None:
    """A well-formed token signed with a key not configured is tampered."""
    token = TokenSigner(["attacker-key"], clock=clock).dumps({"role": "admin"}, audience="a")
    with pytest.raises(TamperedToken) as caught:
        signer.loads(token, audience="a")
    assert caught.value.status == 400


def test_tampered_when_the_payload_is_swapped(signer: TokenSigner) -> None:
    """A genuine signature over another payload does not vouch for this one."""
    mine = signer.dumps({"user": 1}, audience="a")
    theirs = signer.dumps({"user": 2}, audience="a")
    spliced = theirs.split(".")[0] + "." + mine.split(".")[1]
    with pytest.raises(TamperedToken):
        signer.loads(spliced, audience="a")


def test_foreign_when_issued_for_another_audience(signer: TokenSigner) -> None:
    """A genuine token offered for another audience is foreign, not tampered."""
    token = signer.dumps({}, audience="csrf:1:viewer")
    with pytest.raises(ForeignToken) as caught:
        signer.loads(token, audience="csrf:1:admin")
    assert caught.value.status == 400


def test_expired_when_older_than_max_age(signer: TokenSigner, clock: Clock) -> None:
    """A token issued longer ago than max_age is expired: 410 with when and how long."""
    token = signer.dumps({}, audience="a")
    clock.advance(timedelta(hours=1, seconds=1))
    with pytest.raises(ExpiredToken) as caught:
        signer.loads(token, audience="a", max_age=timedelta(hours=1))
    assert caught.value.status == 410
    assert caught.value.issued_at == START
    assert caught.value.max_age == timedelta(hours=1)


def test_not_expired_at_exactly_max_age(signer: TokenSigner, clock: Clock) -> None:
    """A token exactly max_age old is still accepted."""
    token = signer.dumps({}, audience="a")
    clock.advance(timedelta(hours=1))
    assert signer.loads(token, audience="a", max_age=timedelta(hours=1)).issued_at == START


def test_no_max_age_never_expires(signer: TokenSigner, clock: Clock) -> None:
    """Without max_age the age of a token is not checked."""
    token = signer.dumps({}, audience="a")
    clock.advance(timedelta(days=10_000))
    assert signer.loads(token, audience="a").issued_at == START


def test_tampered_is_decided_before_foreign(signer: TokenSigner, clock: Clock) -> None:
    """A forged token for another audience is reported as tampered."""
    token = TokenSigner(["other"], clock=clock).dumps({}, audience="b")
    with pytest.raises(TamperedToken):
        signer.loads(token, audience="a")


def test_foreign_is_decided_before_expired(signer: TokenSigner, clock: Clock) -> None:
    """An old token for another audience is reported as foreign."""
    token = signer.dumps({}, audience="b")
    clock.advance(timedelta(days=1))
    with pytest.raises(ForeignToken):
        signer.loads(token, audience="a", max_age=timedelta(seconds=1))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: "garbage",
        lambda s: TokenSigner(["other"]).dumps({}, audience="a"),
        lambda s: s.dumps({}, audience="b"),
    ],
    ids=["malformed", "tampered", "foreign"],
)
def test_errors_name_the_field(signer: TokenSigner, make: Any) -> None:
    """Every refusal names the field the caller gave and carries the token."""
    token = make(signer)
    with pytest.raises(InvalidToken) as caught:
        signer.loads(token, audience="a", field="X-CSRF-Token")
    assert caught.value.field == "X-CSRF-Token"
    assert caught.value.value == token


# -- rotation -------------------------------------------------------------------------


def test_old_key_verifies_while_listed(clock: Clock) -> None:
    """After rotation, tokens signed with the previous key still verify."""
    old = TokenSigner(["k1"], clock=clock).dumps({"n": 1}, audience="a")
    rotated = TokenSigner(["k2", "k1"], clock=clock)
    assert rotated.loads(old, audience="a").payload == {"n": 1}


def test_new_tokens_use_the_first_key(clock: Clock) -> None:
    """The first key signs: a signer that knows only the old key refuses new tokens."""
    new = TokenSigner(["k2", "k1"], clock=clock).dumps({}, audience="a")
    assert TokenSigner(["k2"], clock=clock).loads(new, audience="a").payload == {}
    with pytest.raises(TamperedToken):
        TokenSigner(["k1"], clock=clock).loads(new, audience="a")


def test_old_key_fails_once_removed(clock: Clock) -> None:
    """Dropping a key from the list revokes every token it signed."""
    old = TokenSigner(["k1"], clock=clock).dumps({}, audience="a")
    with pytest.raises(TamperedToken):
        TokenSigner(["k2"], clock=clock).loads(old, audience="a")


# -- misuse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "error"),
    [("secret", TypeError), (b"secret", TypeError), ([], ValueError), (["k", ""], ValueError)],
    ids=["lone-str", "lone-bytes", "no-keys", "empty-key"],
)
def test_signer_refuses_bad_keys(keys: Any, error: type[Exception]) -> None:
    """A signer needs a sequence of non-empty keys."""
    with pytest.raises(error):
        TokenSigner(keys)


def test_naive_clock_is_refused() -> None:
    """A clock without a zone would stamp the wrong instant, so it is refused."""
    signer = TokenSigner(["k"], clock=lambda: datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        signer.dumps({}, audience="a")


@pytest.mark.parametrize(
    "payload",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {"x": "y" * MAX_TOKEN_LENGTH}],
    ids=["nan", "infinity", "not-json", "too-long"],
)
def test_dumps_refuses_what_loads_would(signer: TokenSigner, payload: dict[str, Any]) -> None:
    """dumps never makes a token that loads would call malformed."""
    with pytest.raises((TypeError, ValueError)):
        signer.dumps(payload, audience="a")


def test_default_clock_is_now() -> None:
    """Without an injected clock, tokens are stamped with the current UTC time."""
    signer = TokenSigner(["k"])
    before = datetime.now(UTC).replace(microsecond=0)
    issued_at = signer.loads(signer.dumps({}, audience="a"), audience="a").issued_at
    assert before <= issued_at <= datetime.now(UTC)


def test_repr_hides_the_keys() -> None:
    """The repr says how many keys there are, never what they are."""
    assert repr(TokenSigner(["hunter2", "k"])) == "<TokenSigner keys=2>"


# -- laws and hostile input -----------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@given(payloads, st.text(max_size=50))
def test_round_trip_of_any_json_payload(payload: dict[str, JSON], audience: str) -> None:
    """Any JSON object comes back equal, for any audience."""
    signer = TokenSigner(["k"], clock=Clock())
    token = signer.dumps(payload, audience=audience)
    assert TOKEN.fullmatch(token)
    assert signer.loads(token, audience=audience).payload == payload


token_ish = st.text(alphabet="AZaz09_-.=+/", max_size=120)


@given(st.one_of(st.text(max_size=200), token_ish))
def test_loads_raises_only_invalid_token(text: str) -> None:
    """Arbitrary text is refused with an InvalidToken subclass, never anything else."""
    signer = TokenSigner(["k"], clock=Clock())
    with pytest.raises(InvalidToken):
        signer.loads(text, audience="a")


@given(st.data())
def test_any_one_character_change_is_refused(data: st.DataObject) -> None:
    """Changing any one character of a genuine token makes it unusable."""
    signer = TokenSigner(["k"], clock=Clock())
    token = signer.dumps({"user": 1, "role": "viewer"}, audience="a")
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCabc019_-.=").filter(lambda c: c != token[index]))
    changed = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(InvalidToken):
        signer.loads(changed, audience="a")

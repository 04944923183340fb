"""Signed, URL-safe tokens bound to an audience, with key rotation.

A token carries a small JSON payload that the server hands out and later takes back (a
pagination cursor, a CSRF token) and must be able to trust. Its shape is::

    token   = payload "." signature              ; both base64url without padding
    payload = {"a": <audience hash>, "t": <issued at, Unix seconds>, "p": <the payload>}
    signature = HMAC-SHA256(key, payload as sent)

so it uses only ``A-Z a-z 0-9 - _ .`` and goes into a query string or a header as is.

* **Audience.** Each token is bound to an audience string chosen by the caller (a query
  description, ``"csrf:<tenant>:<role>"``). Only a hash of it is stored, so the token does
  not disclose it, and a genuine token offered for another audience is told apart from a
  forged one.
* **Rotation.** :class:`TokenSigner` takes a list of keys: the first signs, every one
  verifies. Put a new key first, keep the old one until the tokens it signed have expired,
  then drop it.
* **Checks, in order.** :meth:`TokenSigner.loads` raises
  :class:`~optimist.errors.MalformedToken` (not a token at all),
  :class:`~optimist.errors.TamperedToken` (no key made this signature),
  :class:`~optimist.errors.ForeignToken` (made for another audience), then
  :class:`~optimist.errors.ExpiredToken` (older than ``max_age``).

Payloads are signed, not encrypted: a client can read them. Where a client must learn
nothing from a token (a pagination cursor's position and watermark), seal it instead:
``optimist.cryptography.TokenSealer`` encrypts the same :class:`Claims` with AES-GCM and
keeps every check above. Both satisfy :class:`Tokens`, which is all
:class:`~optimist.cursor.CursorCodec` needs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NoReturn, Protocol, TypeAlias

from optimist.errors import ExpiredToken, ForeignToken, MalformedToken, TamperedToken

__all__ = [
    "JSON",
    "MAX_TOKEN_LENGTH",
    "Claims",
    "JSONInput",
    "SignedPayload",
    "TokenSigner",
    "Tokens",
    "b64decode",
    "b64encode",
    "derive_keys",
    "utc_now",
]

#: A JSON value as :func:`json.loads` returns it.
JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None
#: A JSON value as :func:`json.dumps` accepts it (any sequence is an array).
JSONInput: TypeAlias = (
    bool | int | float | str | Sequence["JSONInput"] | Mapping[str, "JSONInput"] | None
)

#: The longest token :meth:`TokenSigner.loads` reads (and :meth:`~TokenSigner.dumps` makes):
#: well inside what URLs and headers carry everywhere.
MAX_TOKEN_LENGTH: Final = 4096

# Derives the signing keys from the configured secrets, so a secret that serves
# elsewhere too is never used as an HMAC key for tokens directly.
_KEY_LABEL: Final = b"optimist.tokens.v1"
_AUDIENCE_HASH_BYTES: Final = 12
_SIGNATURE_CHARS: Final = 43  # 32 bytes of HMAC-SHA256 in unpadded base64url
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")
# datetime's range ends with year 9999; a larger time is not one we issued.
_MAX_ISSUED: Final = 253_402_300_799


def utc_now() -> datetime:
    """The current time, aware, in UTC: the default clock of a :class:`TokenSigner`."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """What a verified token carried: the ``payload`` and when it was issued (to the second)."""

    payload: dict[str, JSON]
    issued_at: datetime


def b64encode(data: bytes) -> str:
    """``data`` as unpadded base64url, the alphabet of every token."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(segment: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url segment, or None."""
    if _SEGMENT.fullmatch(segment) is None:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        return None
    # The decoder ignores stray low bits; one token must have one spelling.
    return data if b64encode(data) == segment else None


def _audience_hash(audience: str) -> str:
    digest = hashlib.sha256(audience.encode("utf-8", "surrogatepass")).digest()
    return b64encode(digest[:_AUDIENCE_HASH_BYTES])


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def derive_keys(keys: Sequence[bytes | str], label: bytes) -> tuple[bytes, ...]:
    """One 32-byte key per configured secret, derived for ``label`` (HMAC-SHA256).

    A deployment has one secret; each use of it (signing, sealing) gets a key of its own,
    so that no key serves two algorithms. Refuses a lone secret (it would be read as a
    sequence of one-character keys), an empty list and an empty secret.
    """
    if isinstance(keys, str | bytes):
        raise TypeError("keys must be a sequence of secrets, not one secret")
    if not keys:
        raise ValueError("at least one key is needed to make tokens")
    derived: list[bytes] = []
    for key in keys:
        secret = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if not secret:
            raise ValueError("a key must not be empty")
        derived.append(hmac.digest(secret, label, "sha256"))
    return tuple(derived)


@dataclass(frozen=True, slots=True)
class Claims:
    """What every token carries, signed or sealed: the hash of its audience, when it was
    issued (Unix seconds) and the payload. :meth:`issue` writes them as one canonical
    JSON text; :meth:`parse` reads that text back."""

    audience: str
    issued: int
    payload: dict[str, JSON]

    @staticmethod
    def issue(payload: Mapping[str, JSONInput], *, audience: str, now: datetime) -> bytes:
        """The canonical JSON text of the claims of a token for ``audience`` made at ``now``.

        Raises TypeError or ValueError for a payload that is not plain JSON (NaN and
        infinities included).
        """
        body = {"a": _audience_hash(audience), "t": math.floor(now.timestamp()), "p": payload}
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")

    @classmethod
    def parse(cls, data: bytes, *, field: str, token: str) -> Claims:
        """The claims in ``data``, or MalformedToken; nothing is trusted yet."""

        def malformed(reason: str) -> NoReturn:
            raise MalformedToken(field, token, reason) from None

        try:
            body = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except RecursionError:
            malformed("the payload is nested too deeply")
        except ValueError:  # not UTF-8, or not JSON
            malformed("the payload is not JSON")
        if not isinstance(body, dict) or body.keys() != {"a", "t", "p"}:
            malformed("the payload is not an object with members a, t and p")
        claimed, issued, payload = body["a"], body["t"], body["p"]
        if not isinstance(claimed, str):
            malformed("the audience is not a string")
        if (
            isinstance(issued, bool)
            or not isinstance(issued, int)
            or not 0 <= issued <= _MAX_ISSUED
        ):
            malformed("the issue time is not a time")
        if not isinstance(payload, dict):
            malformed("the payload is not a JSON object")
        return cls(claimed, issued, payload)

    def verify(
        self,
        token: str,
        *,
        audience: str,
        now: datetime,
        max_age: timedelta | None,
        field: str,
    ) -> SignedPayload:
        """The payload, once the token's authenticity is established: ForeignToken (made
        for another audience), then ExpiredToken (older than ``max_age``)."""
        # compare_digest takes str only when ASCII; the claim came from an authentic JSON text.
        if not hmac.compare_digest(
            self.audience.encode("utf-8", "surrogatepass"),
            _audience_hash(audience).encode("ascii"),
        ):
            raise ForeignToken(field, token, "the token was issued for another purpose")
        issued_at = datetime.fromtimestamp(self.issued, UTC)
        if max_age is not None and now - issued_at > max_age:
            raise ExpiredToken(field, token, issued_at, max_age)
        return SignedPayload(self.payload, issued_at)


class Tokens(Protocol):
    """What makes and takes back tokens: :class:`TokenSigner`, or a sealer that encrypts."""

    def now(self) -> datetime:
        """The clock that stamps and ages tokens, aware."""
        ...

    def dumps(self, payload: Mapping[str, JSONInput], *, audience: str) -> str:
        """A token carrying ``payload``, bound to ``audience``, stamped now."""
        ...

    def loads(
        self,
        token: str,
        *,
        audience: str,
        max_age: timedelta | None = None,
        field: str = "token",
    ) -> SignedPayload:
        """What ``token`` carries, once it is authentic, for ``audience`` and fresh."""
        ...


def checked_now(clock: Callable[[], datetime], owner: str) -> datetime:
    """``clock()``, refused unless aware."""
    moment = clock()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the clock of a {owner} must return an aware datetime")
    return moment


class TokenSigner:
    """Makes and verifies tokens with HMAC-SHA256; the first key signs, all keys verify.

    ``clock`` returns the current time as an aware datetime; tests inject their own.
    """

    __slots__ = ("_keys", "clock")

    def __init__(
        self,
        keys: Sequence[bytes | str],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._keys: tuple[bytes, ...] = derive_keys(keys, _KEY_LABEL)
        #: The clock that stamps and ages tokens (a callable returning an aware datetime).
        self.clock: Callable[[], datetime] = clock

    def __repr__(self) -> str:
        return f"<TokenSigner keys={len(self._keys)}>"

    def now(self) -> datetime:
        """The signer's clock, read once and checked to be aware."""
        return checked_now(self.clock, "TokenSigner")

    def dumps(self, payload: Mapping[str, JSONInput], *, audience: str) -> str:
        """A token carrying ``payload`` (a JSON object), bound to ``audience``, stamped now.

        Raises :class:`TypeError` or :class:`ValueError` if the payload is not plain JSON
        (NaN and infinities included) or the token would exceed :data:`MAX_TOKEN_LENGTH`.
        """
        segment = b64encode(Claims.issue(payload, audience=audience, now=self.now()))
        token = f"{segment}.{self._sign(self._keys[0], segment)}"
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"the token would be longer than {MAX_TOKEN_LENGTH} characters")
        return token

    def loads(
        self,
        token: str,
        *,
        audience: str,
        max_age: timedelta | None = None,
        field: str = "token",
    ) -> SignedPayload:
        """Verify ``token`` for ``audience`` and return what it carries.

        ``field`` names the input in errors (``"cursor"``, ``"X-CSRF-Token"``).
        """
        segment, signature, claims = self._parse(token, field)
        if not any(hmac.compare_digest(self._sign(key, segment), signature) for key in self._keys):
            raise TamperedToken(field, token, "the signature matches none of the keys")
        return claims.verify(token, audience=audience, now=self.now(), max_age=max_age, field=field)

    @staticmethod
    def _sign(key: bytes, segment: str) -> str:
        return b64encode(hmac.digest(key, segment.encode("ascii"), "sha256"))

    @staticmethod
    def _parse(token: str, field: str) -> tuple[str, str, Claims]:
        """The parts of a well-formed token, or MalformedToken; nothing is trusted yet."""
        shown = token if isinstance(token, str) else repr(token)
        if not isinstance(token, str):
            raise MalformedToken(field, shown, "expected a string")
        if len(token) > MAX_TOKEN_LENGTH:
            raise MalformedToken(field, shown, f"longer than {MAX_TOKEN_LENGTH} characters")
        segment, dot, signature = token.partition(".")
        if not dot or len(signature) != _SIGNATURE_CHARS or b64decode(signature) is None:
            raise MalformedToken(field, shown, "expected <payload>.<signature> in base64url")
        data = b64decode(segment)
        if data is None:
            raise MalformedToken(field, shown, "the payload is not base64url")
        return segment, signature, Claims.parse(data, field=field, token=shown)

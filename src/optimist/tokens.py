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

Payloads are signed, not encrypted: put nothing secret in them.
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
from typing import Final, NoReturn, TypeAlias

from optimist.errors import ExpiredToken, ForeignToken, MalformedToken, TamperedToken

__all__ = [
    "JSON",
    "MAX_TOKEN_LENGTH",
    "JSONInput",
    "SignedPayload",
    "TokenSigner",
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


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url segment, or None."""
    if _SEGMENT.fullmatch(segment) is None:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        return None
    # The decoder ignores stray low bits; one token must have one spelling.
    return data if _b64encode(data) == segment else None


def _audience_hash(audience: str) -> str:
    digest = hashlib.sha256(audience.encode("utf-8", "surrogatepass")).digest()
    return _b64encode(digest[:_AUDIENCE_HASH_BYTES])


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


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
        if isinstance(keys, str | bytes):
            # A lone secret would be read as a sequence of one-character keys.
            raise TypeError("keys must be a sequence of secrets, not one secret")
        if not keys:
            raise ValueError("at least one key is needed to sign tokens")
        derived: list[bytes] = []
        for key in keys:
            secret = key.encode("utf-8") if isinstance(key, str) else bytes(key)
            if not secret:
                raise ValueError("a signing key must not be empty")
            derived.append(hmac.digest(secret, _KEY_LABEL, "sha256"))
        self._keys: tuple[bytes, ...] = tuple(derived)
        #: The clock that stamps and ages tokens (a callable returning an aware datetime).
        self.clock: Callable[[], datetime] = clock

    def __repr__(self) -> str:
        return f"<TokenSigner keys={len(self._keys)}>"

    def now(self) -> datetime:
        """The signer's clock, read once and checked to be aware."""
        moment = self.clock()
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("the clock of a TokenSigner must return an aware datetime")
        return moment

    def dumps(self, payload: Mapping[str, JSONInput], *, audience: str) -> str:
        """A token carrying ``payload`` (a JSON object), bound to ``audience``, stamped now.

        Raises :class:`TypeError` or :class:`ValueError` if the payload is not plain JSON
        (NaN and infinities included) or the token would exceed :data:`MAX_TOKEN_LENGTH`.
        """
        issued = math.floor(self.now().timestamp())
        body = {"a": _audience_hash(audience), "t": issued, "p": dict(payload)}
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        segment = _b64encode(text.encode("ascii"))
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
        segment, signature, issued, claimed, payload = self._parse(token, field)
        if not any(hmac.compare_digest(self._sign(key, segment), signature) for key in self._keys):
            raise TamperedToken(field, token, "the signature matches none of the keys")
        # compare_digest takes str only when ASCII; the claim came from a signed JSON text.
        if not hmac.compare_digest(
            claimed.encode("utf-8", "surrogatepass"), _audience_hash(audience).encode("ascii")
        ):
            raise ForeignToken(field, token, "the token was issued for another purpose")
        issued_at = datetime.fromtimestamp(issued, UTC)
        if max_age is not None and self.now() - issued_at > max_age:
            raise ExpiredToken(field, token, issued_at, max_age)
        return SignedPayload(payload, issued_at)

    @staticmethod
    def _sign(key: bytes, segment: str) -> str:
        return _b64encode(hmac.digest(key, segment.encode("ascii"), "sha256"))

    @staticmethod
    def _parse(token: str, field: str) -> tuple[str, str, int, str, dict[str, JSON]]:
        """The parts of a well-formed token, or MalformedToken; nothing is trusted yet."""

        def malformed(reason: str) -> NoReturn:
            raise MalformedToken(field, shown, reason) from None

        shown = token if isinstance(token, str) else repr(token)
        if not isinstance(token, str):
            malformed("expected a string")
        if len(token) > MAX_TOKEN_LENGTH:
            malformed(f"longer than {MAX_TOKEN_LENGTH} characters")
        segment, dot, signature = token.partition(".")
        if not dot or len(signature) != _SIGNATURE_CHARS or _b64decode(signature) is None:
            malformed("expected <payload>.<signature> in base64url")
        data = _b64decode(segment)
        if data is None:
            malformed("the payload is not base64url")
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
        return segment, signature, issued, claimed, payload

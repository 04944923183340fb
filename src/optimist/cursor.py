"""Pagination cursors: where a traversal stands and which snapshot it reads, as a token.

A traversal is consistent when every page reads the same snapshot (SPEC §1). The first
page fixes that snapshot (the store's write ``watermark`` and the time ``snapshot_at``);
each next page continues after the keyset ``position`` of the last item served. A
:class:`Cursor` holds those three and :class:`CursorCodec` turns it into an opaque,
signed, URL-safe token and back, on top of :class:`~optimist.tokens.TokenSigner`.

A token is bound to the query it belongs to (the route and its filters, not the page
size), so a cursor from one listing is a :class:`~optimist.errors.ForeignToken` on
another. It expires when its *snapshot* is older than the codec's ``max_age``, however
recently the token itself was issued: a long traversal cannot read an old snapshot for
ever, and :class:`~optimist.errors.ExpiredToken` is answered with 410 Gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NoReturn, TypeAlias, TypeGuard

from optimist.errors import ExpiredToken, MalformedToken
from optimist.tokens import JSON, Tokens

__all__ = ["Cursor", "CursorCodec", "Key"]

#: One column of a keyset position.
Key: TypeAlias = str | int | float | bool | None

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# The range of datetime, in microseconds from the epoch.
_MIN_MICROS: Final = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_MAX_MICROS: Final = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_FIELD: Final = "cursor"


def _is_key(value: object) -> bool:
    if isinstance(value, float):
        # RFC 8259 §6: NaN and infinities are not JSON numbers.
        return math.isfinite(value)
    return value is None or isinstance(value, str | int)


def _is_position(value: JSON) -> TypeGuard[list[Key]]:
    return isinstance(value, list) and all(_is_key(item) for item in value)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a traversal stands: after ``position``, reading the snapshot ``watermark``.

    ``snapshot_at`` is when the first page was served (aware); ``issued_at`` is when the
    token was made, filled in by :meth:`CursorCodec.decode` and ignored by ``encode``.
    """

    position: tuple[Key, ...]
    watermark: int
    snapshot_at: datetime
    issued_at: datetime | None = None

    def __post_init__(self) -> None:
        if not all(_is_key(value) for value in self.position):
            raise ValueError("a position holds strings, integers, finite floats, bools, None")
        if isinstance(self.watermark, bool) or not isinstance(self.watermark, int):
            raise TypeError("the watermark is an integer")
        if self.watermark < 0:
            raise ValueError("the watermark is not negative")
        if self.snapshot_at.utcoffset() is None:
            raise ValueError("snapshot_at must be an aware datetime")


class CursorCodec:
    """Encodes cursors as tokens bound to a query, and decodes them with every check.

    ``signer`` makes the tokens: a :class:`~optimist.tokens.TokenSigner` (the client can
    read the position and watermark) or a sealer that encrypts them
    (``optimist.cryptography.TokenSealer``: the client reads nothing). ``max_age``
    bounds the age of a cursor's snapshot (``None``: never expires); the current time is
    the signer's clock.
    """

    __slots__ = ("max_age", "signer")

    def __init__(self, signer: Tokens, *, max_age: timedelta | None = timedelta(hours=1)) -> None:
        self.signer = signer
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"<CursorCodec max_age={self.max_age}>"

    @staticmethod
    def _audience(query: str) -> str:
        # A prefix of its own, so a cursor can never pass for another kind of token
        # made with the same keys (a CSRF token's audience starts with "csrf:").
        return f"cursor:{query}"

    def encode(self, cursor: Cursor, *, query: str) -> str:
        """The URL-safe token of ``cursor`` for the listing ``query`` describes."""
        position: list[JSON] = list(cursor.position)
        return self.signer.dumps(
            {
                "p": position,
                "w": cursor.watermark,
                "s": (cursor.snapshot_at - _EPOCH) // _MICROSECOND,
            },
            audience=self._audience(query),
        )

    def decode(self, token: str, *, query: str) -> Cursor:
        """The cursor in ``token``, if genuine, made for ``query`` and its snapshot fresh.

        Raises MalformedToken, TamperedToken, ForeignToken (another query) or
        ExpiredToken (the snapshot is older than ``max_age``), all with field "cursor".
        """
        signed = self.signer.loads(token, audience=self._audience(query), field=_FIELD)

        def malformed(reason: str) -> NoReturn:
            raise MalformedToken(_FIELD, token, reason)

        body = signed.payload
        position, watermark, micros = body.get("p"), body.get("w"), body.get("s")
        if body.keys() != {"p", "w", "s"}:
            malformed("not a cursor")
        if not _is_position(position):
            malformed("the position is not a list of keys")
        if isinstance(watermark, bool) or not isinstance(watermark, int) or watermark < 0:
            malformed("the watermark is not a non-negative integer")
        if (
            isinstance(micros, bool)
            or not isinstance(micros, int)
            or not _MIN_MICROS <= micros <= _MAX_MICROS
        ):
            malformed("the snapshot time is not a time")
        snapshot_at = _EPOCH + micros * _MICROSECOND
        if self.max_age is not None and self.signer.now() - snapshot_at > self.max_age:
            raise ExpiredToken(_FIELD, token, snapshot_at, self.max_age)
        return Cursor(tuple(position), watermark, snapshot_at, signed.issued_at)

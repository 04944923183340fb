"""Sealed tokens: the claims of a signed token, encrypted with AES-GCM.

A :class:`~optimist.tokens.TokenSigner` token can be read by anyone who holds it; its
signature only stops changes. A pagination cursor carries a keyset position and the
snapshot's watermark, a counter of the table's creates, shared by every tenant: read,
it tells a client how many users, roles or flags all tenants have made. A sealed token
tells nothing::

    token = base64url(nonce ‖ AES-256-GCM(key, nonce, claims))    ; unpadded

``claims`` are :class:`optimist.tokens.Claims`, as a signed token carries them: the hash
of the audience (the listing, with its tenant and filters), the issue time and the
payload. AES-GCM authenticates as it encrypts, so a changed token is refused
(:class:`~optimist.errors.TamperedToken`) before anything in it is read; then, as for a
signed token, :class:`~optimist.errors.ForeignToken` (made for another audience) and
:class:`~optimist.errors.ExpiredToken`. The nonce is 96 random bits per token: the
chance that two tokens of one key share one is negligible below 2³² tokens.

Keys rotate as a signer's do: the first key seals, every key opens. Each is derived
from the configured secret for this use alone, so one deployment secret can sign CSRF
tokens and seal cursors without a key serving two algorithms.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from optimist.errors import MalformedToken, TamperedToken
from optimist.tokens import (
    MAX_TOKEN_LENGTH,
    Claims,
    JSONInput,
    SignedPayload,
    b64decode,
    b64encode,
    checked_now,
    derive_keys,
    utc_now,
)

__all__ = ["TokenSealer"]

_KEY_LABEL: Final = b"optimist.tokens.sealed.v1"
_NONCE_BYTES: Final = 12  # NIST SP 800-38D §8.2.2: 96-bit random nonces
_TAG_BYTES: Final = 16


class TokenSealer:
    """Makes and opens AES-GCM tokens; the first key seals, every key opens.

    A drop-in for :class:`~optimist.tokens.TokenSigner` (:class:`~optimist.tokens.Tokens`):
    the same ``keys`` (secrets of any length), ``clock``, errors and their order.
    """

    __slots__ = ("_ciphers", "clock")

    def __init__(
        self,
        keys: Sequence[bytes | str],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ciphers = tuple(AESGCM(key) for key in derive_keys(keys, _KEY_LABEL))
        #: The clock that stamps and ages tokens (a callable returning an aware datetime).
        self.clock: Callable[[], datetime] = clock

    def __repr__(self) -> str:
        return f"<TokenSealer keys={len(self._ciphers)}>"

    def now(self) -> datetime:
        """The sealer's clock, read once and checked to be aware."""
        return checked_now(self.clock, "TokenSealer")

    def dumps(self, payload: Mapping[str, JSONInput], *, audience: str) -> str:
        """A sealed token carrying ``payload`` (a JSON object), bound to ``audience``.

        Raises :class:`TypeError` or :class:`ValueError` if the payload is not plain JSON
        or the token would exceed :data:`~optimist.tokens.MAX_TOKEN_LENGTH`.
        """
        claims = Claims.issue(payload, audience=audience, now=self.now())
        nonce = os.urandom(_NONCE_BYTES)
        token = b64encode(nonce + self._ciphers[0].encrypt(nonce, claims, None))
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
        """Open ``token`` for ``audience`` and return what it carries.

        Raises MalformedToken (not a sealed token), TamperedToken (no key opens it),
        ForeignToken and ExpiredToken, in that order, naming ``field``.
        """
        shown = token if isinstance(token, str) else repr(token)
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise MalformedToken(field, shown, "expected a string of base64url")
        data = b64decode(token)
        if data is None or len(data) < _NONCE_BYTES + _TAG_BYTES:
            raise MalformedToken(field, shown, "expected a sealed token in base64url")
        nonce, sealed = data[:_NONCE_BYTES], data[_NONCE_BYTES:]
        for cipher in self._ciphers:
            try:
                opened = cipher.decrypt(nonce, sealed, None)
            except InvalidTag:
                continue
            claims = Claims.parse(opened, field=field, token=shown)
            return claims.verify(
                token, audience=audience, now=self.now(), max_age=max_age, field=field
            )
        raise TamperedToken(field, shown, "no key opens the token")

"""Access tokens that are JSON Web Tokens, verified with PyJWT: :class:`JWTVerifier`.

A token is accepted when, in this order: its header names an allowed algorithm and a
key of the :class:`~optimist.jwt.keys.KeySet` that may verify it (RFC 8725 §3.1: the
algorithm comes from the allow-list and the key's type, never from the token alone);
its signature verifies; it has not expired (``exp``, required) and is valid already
(``nbf``, and ``iat`` not in the future), each within ``leeway`` for the clocks' skew;
it names the configured audience (``aud``, required: RFC 8725 §3.9) and, when one is
configured, the issuer (``iss``). Then :class:`~optimist.bearer.ClaimNames` reads its
subject, tenant and role into a :class:`~optimist.bearer.Principal`.

Any failure is :class:`~optimist.errors.InvalidCredentials` with ``invalid_token``,
whose description says which check failed and nothing of the token's content.
:class:`JWTVerifier` is a :class:`~optimist.bearer.TokenVerifier`, so
``optimist.starlette.authenticate`` takes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

import jwt

from optimist.bearer import INVALID_TOKEN, REALM, ClaimNames, Principal
from optimist.errors import InvalidCredentials
from optimist.jwt.keys import ASYMMETRIC, KeySet, read_keys

__all__ = ["JWTVerifier"]

#: PyJWT's refusals → what the description says, most specific first.
_REASONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is meant for another audience"),
    (jwt.InvalidIssuerError, "the token comes from another issuer"),
    (jwt.InvalidIssuedAtError, "the token's iat is not a time"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.DecodeError, "the token is not a well-formed JWT"),
)


@dataclass(frozen=True, slots=True)
class JWTVerifier:
    """Verifies JWTs signed with ``keys`` for ``audience`` (and ``issuer``, if given).

    ``algorithms`` narrows those the keys may verify (default: every asymmetric one);
    ``leeway`` is the clock skew allowed on ``exp``, ``nbf`` and ``iat``; ``claims``
    names the tenant and role claims; ``realm`` goes into the challenge of a refusal.
    ValueError at construction for an empty audience, a negative leeway, or an
    algorithm that is not asymmetric (``none``, ``HS256``...).
    """

    keys: KeySet
    audience: str
    issuer: str | None = None
    algorithms: frozenset[str] = ASYMMETRIC
    leeway: timedelta = timedelta(0)
    claims: ClaimNames = field(default_factory=ClaimNames)
    realm: str = REALM

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError("a verifier needs the audience its tokens are meant for")
        if self.leeway < timedelta(0):
            raise ValueError("the leeway cannot be negative")
        refused = sorted(set(self.algorithms) - ASYMMETRIC)
        if refused:
            raise ValueError(
                f"not an asymmetric algorithm: {', '.join(refused)} (allowed: "
                f"{', '.join(sorted(ASYMMETRIC))})"
            )
        object.__setattr__(self, "algorithms", frozenset(self.algorithms))

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        audience: str,
        issuer: str | None = None,
        algorithms: Iterable[str] = ASYMMETRIC,
        leeway: timedelta = timedelta(0),
        claims: ClaimNames | None = None,
        realm: str = REALM,
    ) -> JWTVerifier:
        """A verifier with the keys of the PEM or JWKS file at ``path``
        (:func:`~optimist.jwt.keys.read_keys`; ValueError if it holds none)."""
        return cls(
            read_keys(path),
            audience,
            issuer,
            frozenset(algorithms),
            leeway,
            claims or ClaimNames(),
            realm,
        )

    def _refuse(self, description: str) -> InvalidCredentials:
        return InvalidCredentials(description, INVALID_TOKEN, self.realm)

    def verify(self, token: str) -> Principal:
        """The principal of ``token``, or :class:`~optimist.errors.InvalidCredentials`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._refuse("the token is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise self._refuse("the token's algorithm is not allowed")
        key = self.keys.find(kid if isinstance(kid, str) else None, algorithm)
        if key is None:
            raise self._refuse("no key of this server verifies the token")
        required = ["exp", "aud"] + (["iss"] if self.issuer is not None else [])
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": required, "strict_aud": False},
            )
        except jwt.PyJWTError as error:
            reason = next(
                (text for kind, text in _REASONS if isinstance(error, kind)),
                "the token is not accepted",
            )
            raise self._refuse(reason) from None
        return self.claims.principal(claims, self.realm)

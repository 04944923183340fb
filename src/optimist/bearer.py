"""Bearer tokens (RFC 6750): the credentials of a request, who a verified token says is
asking, and the challenge of a refusal.

A client that holds an access token sends it as ``Authorization: Bearer <token>``
(RFC 6750 §2.1). The server verifies it, with whatever library checks its signature and
claims (``optimist.jwt`` for JSON Web Tokens), and learns who is asking: a
:class:`Principal`, a subject with the tenant and role the token's claims name
(:class:`ClaimNames` says which claims those are). This module is what every such
verifier shares, free of any framework or cryptography:

* :func:`credentials` reads the token out of the ``Authorization`` field values;
* :class:`TokenVerifier` is all a framework integration needs of a verifier
  (``optimist.starlette.authenticate`` takes one), so that the two stay independent;
* :func:`challenge` writes the ``WWW-Authenticate`` value of a refusal (RFC 6750 §3),
  and :class:`~optimist.errors.InvalidCredentials` carries it.

A bearer token is sent by the script that holds it, never added by the browser to a
request another site makes it send, as a cookie is: a request that needs one cannot be
forged cross-site, so it needs no CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

from optimist.errors import InvalidCredentials

__all__ = [
    "INSUFFICIENT_SCOPE",
    "INVALID_REQUEST",
    "INVALID_TOKEN",
    "REALM",
    "ClaimNames",
    "Principal",
    "TokenVerifier",
    "challenge",
    "credentials",
]

#: The realm of a challenge unless a server names its own (RFC 9110 §11.5).
REALM: Final = "optimist"
#: RFC 6750 §3.1's error codes.
INVALID_REQUEST: Final = "invalid_request"
INVALID_TOKEN: Final = "invalid_token"  # noqa: S105 - an error code, no secret
INSUFFICIENT_SCOPE: Final = "insufficient_scope"

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive
# (RFC 9110 §11.1).
_CREDENTIALS: Final = re.compile(r"(?P<scheme>[!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ ]+(?P<rest>.*))?")
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9._~+/-]+=*")
# RFC 6750 §3: error_description and scope allow %x20-21 / %x23-5B / %x5D-7E, so
# neither a quote nor a backslash, and nothing to escape in the quoted string.
_UNSAFE: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token says is asking: its subject, tenant and role (None where the
    token names none), and every claim it carries, read-only."""

    subject: str | None
    tenant: str | None = None
    role: str | None = None
    claims: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))


@dataclass(frozen=True, slots=True)
class ClaimNames:
    """The claims that name a principal's tenant and role; identity providers differ."""

    tenant: str = "tenant"
    role: str = "role"

    def principal(self, claims: Mapping[str, object], realm: str = REALM) -> Principal:
        """The principal of verified ``claims``.

        A claim that is present must be a string: a number or a list would be a guess
        at what the provider meant, so it is refused with ``invalid_token``.
        """
        values = {
            name: _text(claims, claim, realm)
            for name, claim in (("sub", "sub"), ("tenant", self.tenant), ("role", self.role))
        }
        return Principal(values["sub"], values["tenant"], values["role"], claims)


def _text(claims: Mapping[str, object], claim: str, realm: str) -> str | None:
    value = claims.get(claim)
    if value is None or isinstance(value, str):
        return value
    raise InvalidCredentials(
        f"the token's {_safe(claim)} claim is not a string", INVALID_TOKEN, realm
    )


class TokenVerifier(Protocol):
    """Verifies an access token and says who it names.

    ``verify`` returns the token's :class:`Principal`, or raises
    :class:`~optimist.errors.InvalidCredentials` with ``invalid_token`` saying why the
    token is not accepted (its signature, expiry, audience...).
    """

    def verify(self, token: str) -> Principal: ...


def credentials(values: Sequence[str], realm: str = REALM) -> str | None:
    """The bearer token of a request's ``Authorization`` field ``values``; None when it
    sent none, or credentials of another scheme (RFC 6750 §3.1: then it did not try
    this method, and its refusal names no error).

    Raises :class:`~optimist.errors.InvalidCredentials` with ``invalid_request`` (400)
    for the field sent more than once, and for Bearer credentials that are not one
    b64token (RFC 6750 §2.1).
    """
    if not values:
        return None
    if len(values) > 1:
        # Two credentials would let one pass a proxy that checks the other.
        raise InvalidCredentials("Authorization is sent more than once", INVALID_REQUEST, realm)
    match = _CREDENTIALS.fullmatch(values[0].strip())
    if match is None or match["scheme"].lower() != "bearer":
        return None
    token = (match["rest"] or "").strip()
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidCredentials("the Bearer credentials are not one token", INVALID_REQUEST, realm)
    return token


def challenge(
    realm: str = REALM,
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value of a refusal: ``Bearer realm="..."``, with the
    error code, its description and the scope needed when given (RFC 6750 §3).

    The description and scope are cut to the characters RFC 6750 §3 allows them.
    """
    parameters = [f'realm="{_safe(realm)}"']
    if error is not None:
        parameters.append(f'error="{_safe(error)}"')
    if error is not None and description:
        parameters.append(f'error_description="{_safe(description)}"')
    if scope:
        parameters.append(f'scope="{_safe(scope)}"')
    return "Bearer " + ", ".join(parameters)


def _safe(text: str) -> str:
    """``text`` without the characters a challenge's quoted parameter may not hold."""
    return _UNSAFE.sub("?", text)[:200]

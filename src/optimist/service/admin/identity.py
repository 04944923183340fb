"""Who is asking, and may they: the admin API's identity, roles and CSRF tokens.

Identity comes from one of two places, by ``settings.auth``:

* **gateway** (the default): a trusted gateway in front of the service sets
  ``X-Tenant-Id`` and ``X-User-Role`` (SPEC §4.1). They are believed only from the
  gateway, a peer of ``settings.trusted_peers`` (loopback by default): from any other
  peer every admin request is a 401 (:func:`~optimist.starlette.peers.check_peer`),
  with or without them. A field that is missing, sent twice or not one the gateway
  could have sent is a 401.
* **token**: the request carries ``Authorization: Bearer <JWT>``, verified with the
  keys of ``settings.jwt_keys`` for its audience and issuer
  (:class:`optimist.jwt.JWTVerifier`, built once per process by :func:`verifier_of`);
  the tenant and role are the claims ``settings.tenant_claim`` and
  ``settings.role_claim``. No token, or one not accepted, is a 401 with a ``Bearer``
  challenge (RFC 6750 §3); a token that names no tenant, or no role of this service, is
  a 403 ``insufficient_scope``. The gateway's fields are refused (400) from every peer:
  a request that sends them expects them to be believed, and here they are not.

Each request is parsed once into an :class:`Identity`. Reads are open to every role; a
write needs a role the resource allows (403) and, in gateway mode, a CSRF token (403).
With ``settings.require_identity`` the projects and sessions APIs need an identity too
(:func:`authenticated`: any tenant, any role; their resources are not a tenant's).

A CSRF token is a :class:`~optimist.tokens.TokenSigner` token with an empty payload,
bound to the audience ``csrf:<tenant>:<role>`` and expiring after
``settings.csrf_max_age``. The signer's key is the deployment's, so a token from one
worker verifies in every other; a token of another tenant or role is foreign.

CSRF tokens matter where the gateway authenticates the caller with a cookie, which a
browser adds to a request another site makes it send. A bearer token is added only by
the script that holds it: a request that needs one cannot be forged cross-site, so in
token mode writes need no CSRF token (one sent is ignored; ``GET /admin/csrf-token``
still answers, for clients written for either mode).

The checks run as FastAPI dependencies, which are solved before the endpoint reads the
body or the database: RFC 9110 §13.2.1 puts 401 and 403 before everything else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request

from optimist.bearer import INSUFFICIENT_SCOPE, ClaimNames, challenge
from optimist.errors import InvalidInput, InvalidToken
from optimist.fastapi import required_header
from optimist.jwt import JWTVerifier
from optimist.service.runtime import Runtime, RuntimeDep
from optimist.service.schema import USER_ROLES
from optimist.service.settings import Settings
from optimist.sqlalchemy import Scope
from optimist.starlette import GATEWAY_CHALLENGE, authenticate, check_peer, peer_guard

__all__ = [
    "CSRF_HEADER",
    "IDENTITY_HEADERS",
    "ROLE_HEADER",
    "TENANT_HEADER",
    "Identity",
    "IdentityDep",
    "authenticated",
    "identity_guard",
    "identity_of",
    "issue_csrf_token",
    "verifier_of",
    "verify_csrf_token",
    "writer",
]

TENANT_HEADER: Final = "X-Tenant-Id"
ROLE_HEADER: Final = "X-User-Role"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_PATH: Final = "/admin/csrf-token"
#: The fields only a trusted peer may send.
IDENTITY_HEADERS: Final = (TENANT_HEADER, ROLE_HEADER)

# A tenant id goes into SQL parameters and token audiences: printable, no separator.
_TENANT: Final = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def _refusal(status: int, field: str, value: str, reason: str, detail: str) -> InvalidInput:
    """An :class:`InvalidInput` answered with ``status``: a header that identifies badly.

    Its problem names the header in ``invalid_params``, as for any other bad input.
    """
    error = InvalidInput(field, value, reason)
    error.status = status
    error.detail = detail
    if status == 401:
        # The credentials are the gateway's, as for a peer that is not trusted.
        error.challenge = GATEWAY_CHALLENGE
    return error


@dataclass(frozen=True, slots=True)
class Identity:
    """The tenant and role a request acts as, as the gateway or the token asserted them."""

    tenant: str
    role: str

    @property
    def scope(self) -> Scope:
        """The filter that keeps every statement inside the tenant."""
        return {"tenant_id": self.tenant}

    @property
    def csrf_audience(self) -> str:
        """What a CSRF token of this identity is bound to (``:`` cannot occur in either)."""
        return f"csrf:{self.tenant}:{self.role}"


@functools.lru_cache(maxsize=8)
def verifier_of(settings: Settings) -> JWTVerifier:
    """The token verifier of ``settings`` (token mode), its keys read once per process;
    ValueError for a key file it cannot use."""
    if settings.jwt_keys is None or settings.jwt_audience is None:
        raise ValueError("token mode needs the keys file and the audience")
    return JWTVerifier.from_file(
        settings.jwt_keys,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway=settings.jwt_leeway,
        claims=ClaimNames(settings.tenant_claim, settings.role_claim),
    )


def _insufficient(detail: str) -> HTTPException:
    """403 for a genuine token that is not enough here (RFC 6750 §3.1 insufficient_scope)."""
    value = challenge(error=INSUFFICIENT_SCOPE, description=detail)
    return HTTPException(403, detail, headers={"WWW-Authenticate": value})


def _from_token(request: Request, settings: Settings) -> Identity:
    """The identity of the request's bearer token: 401 without a good one, 403 when it
    names no tenant or no role of this service."""
    principal = authenticate(request, verifier_of(settings))
    tenant, role = principal.tenant, principal.role
    if tenant is None or _TENANT.fullmatch(tenant) is None:
        raise _insufficient(
            f"The token's {settings.tenant_claim} claim names no tenant "
            "(1 to 64 of A-Z a-z 0-9 . _ ~ -)."
        )
    if role not in USER_ROLES:
        raise _insufficient(
            f"The token's {settings.role_claim} claim is not one of {', '.join(USER_ROLES)}."
        )
    return Identity(tenant, role)


def _one(request: Request, name: str) -> str:
    values = request.headers.getlist(name)
    if not values:
        raise _refusal(401, name, "", "required", f"{TENANT_HEADER} and {ROLE_HEADER} are required")
    if len(values) > 1:
        # Two values would let a client smuggle one past a gateway that checks the other.
        raise _refusal(401, name, ", ".join(values), "sent more than once", f"{name} is ambiguous")
    return values[0]


async def identify(
    request: Request,
    runtime: RuntimeDep,
    x_tenant_id: Annotated[
        str | None, required_header(TENANT_HEADER, description="The tenant, set by the gateway")
    ] = None,
    x_user_role: Annotated[
        str | None,
        required_header(ROLE_HEADER, description="admin, editor or viewer, set by the gateway"),
    ] = None,
) -> Identity:
    """The request's :class:`Identity`, or a 401 problem naming the header at fault.

    The parameters document the fields as required (:func:`~optimist.fastapi.required_header`)
    while FastAPI lets a missing one through, so that its absence is this 401 and not
    FastAPI's 422. They are read here from the raw headers (:func:`identity_of`).
    """
    return identity_of(request, runtime.settings)


def identity_of(request: Request, settings: Settings) -> Identity:
    """The request's :class:`Identity` in the mode of ``settings``.

    In gateway mode the fields are read from the raw headers, so that a repeated field
    is refused rather than silently picked. Before any of them, the peer: an untrusted
    one is refused whatever it sent, so that it learns nothing of what the fields take.
    """
    if settings.auth == "token":
        return _from_token(request, settings)
    check_peer(request, settings.trusted_peers, IDENTITY_HEADERS, needed=True)
    tenant, role = _one(request, TENANT_HEADER), _one(request, ROLE_HEADER)
    if _TENANT.fullmatch(tenant) is None:
        raise _refusal(
            401,
            TENANT_HEADER,
            tenant,
            "not a tenant id (1 to 64 of A-Z a-z 0-9 . _ ~ -)",
            f"{TENANT_HEADER} does not name a tenant",
        )
    if role not in USER_ROLES:
        raise _refusal(
            401,
            ROLE_HEADER,
            role,
            f"must be one of {', '.join(USER_ROLES)}",
            f"{ROLE_HEADER} does not name a known role",
        )
    return Identity(tenant, role)


IdentityDep = Annotated[Identity, Depends(identify)]


async def authenticated(request: Request, runtime: RuntimeDep) -> None:
    """With ``settings.require_identity``, refuse a request without an identity, as the
    admin API would (401, or 403 for a token naming no tenant or role); else nothing.

    A dependency of the projects and sessions APIs. It declares no parameter: what the
    document asks of their callers follows the settings (:mod:`optimist.service.security`).
    """
    if runtime.settings.require_identity:
        identity_of(request, runtime.settings)


def _refuse_identity_fields(request: Request) -> None:
    """In token mode, 400 for a request that sends the gateway's identity fields."""
    for name in IDENTITY_HEADERS:
        values = request.headers.getlist(name)
        if values:
            raise _refusal(
                400,
                name,
                ", ".join(values),
                "not read: identity comes from the bearer token",
                f"{name} is not believed here: send Authorization: Bearer <token> instead",
            )


def identity_guard(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """The application's guard on the gateway's identity fields, on every route.

    Gateway mode: refused from an untrusted peer (401), where they are read and where
    they are not, so that a forged identity is never passed over in silence. Token mode:
    refused from every peer (400).
    """
    if settings.auth == "gateway":
        return peer_guard(settings.trusted_peers, IDENTITY_HEADERS)
    # The keys are read as the application is built: a file gone since the command
    # checked it stops the worker's start, not its first request.
    verifier_of(settings)

    async def guard(request: Request) -> None:
        _refuse_identity_fields(request)

    return guard


def issue_csrf_token(runtime: Runtime, identity: Identity) -> str:
    """A fresh CSRF token for ``identity``, signed with the deployment's key."""
    return runtime.signer.dumps({}, audience=identity.csrf_audience)


def verify_csrf_token(runtime: Runtime, identity: Identity, token: str | None) -> None:
    """Accept a genuine, unexpired token of this tenant and role, or raise a 403.

    Missing, malformed, tampered, foreign (another tenant or role) and expired tokens
    are all refused with 403 (SPEC §4.1); the problem says which it was.
    """
    fetch = f"fetch one from GET {CSRF_PATH}"
    if token is None:
        raise _refusal(403, CSRF_HEADER, "", "required", f"{CSRF_HEADER} header required: {fetch}")
    try:
        runtime.signer.loads(
            token,
            audience=identity.csrf_audience,
            max_age=runtime.settings.csrf_max_age,
            field=CSRF_HEADER,
        )
    except InvalidToken as error:  # malformed, tampered, foreign or expired
        raise _refusal(403, CSRF_HEADER, token, error.reason, f"{error.detail}; {fetch}") from error


def writer(*roles: str) -> Callable[..., Awaitable[Identity]]:
    """A dependency for unsafe methods: the identity, if its role is one of ``roles``
    and the request carries its CSRF token (403 otherwise; the document lists the
    token's header as required, as it lists the identity's)."""
    allowed = ", ".join(roles)

    async def authorised(
        request: Request,
        identity: IdentityDep,
        runtime: RuntimeDep,
        x_csrf_token: Annotated[
            str | None, required_header(CSRF_HEADER, description=f"From GET {CSRF_PATH}")
        ] = None,
    ) -> Identity:
        if identity.role not in roles:
            detail = f"The role {identity.role} may not change this resource (needs {allowed})."
            if runtime.settings.auth == "token":
                raise _insufficient(detail)
            raise HTTPException(403, detail)
        if runtime.settings.auth == "token":
            # A bearer token cannot be sent cross-site by a browser: no CSRF to guard against.
            return identity
        # Several field lines join into one value, which no token is (RFC 9110 §5.3).
        sent = request.headers.getlist(CSRF_HEADER)
        verify_csrf_token(runtime, identity, ", ".join(sent) if sent else None)
        return identity

    return authorised

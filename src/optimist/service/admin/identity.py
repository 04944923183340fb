"""Who is asking, and may they: the admin API's identity headers, roles and CSRF tokens.

A trusted gateway in front of the admin API sets ``X-Tenant-Id`` and ``X-User-Role``
(SPEC §4.1). They are believed only from the gateway, a peer of
``settings.trusted_peers`` (loopback by default): from any other peer every admin
request is a 401 (:func:`~optimist.starlette.peers.check_peer`), with or without them.
Each request is parsed once into an :class:`Identity`; a field that is missing, sent
twice or not one the gateway could have sent is a 401. Reads are open to
every role; a write needs a role the resource allows (403) and a CSRF token (403).

A CSRF token is a :class:`~optimist.tokens.TokenSigner` token with an empty payload,
bound to the audience ``csrf:<tenant>:<role>`` and expiring after
``settings.csrf_max_age``. The signer's key is the deployment's, so a token from one
worker verifies in every other; a token of another tenant or role is foreign.

The checks run as FastAPI dependencies, which are solved before the endpoint reads the
body or the database: RFC 9110 §13.2.1 puts 401 and 403 before everything else.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request

from optimist.errors import InvalidInput, InvalidToken
from optimist.fastapi import required_header
from optimist.service.runtime import Runtime, RuntimeDep
from optimist.service.schema import USER_ROLES
from optimist.sqlalchemy import Scope
from optimist.starlette import GATEWAY_CHALLENGE, check_peer

__all__ = [
    "CSRF_HEADER",
    "IDENTITY_HEADERS",
    "ROLE_HEADER",
    "TENANT_HEADER",
    "Identity",
    "IdentityDep",
    "issue_csrf_token",
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
    """The tenant and role a request acts as, as the gateway asserted them."""

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
    FastAPI's 422. They are read here from the raw headers, so that a repeated field is
    refused rather than silently picked. Before any of them, the peer: an untrusted one
    is refused whatever it sent, so that it learns nothing of what the fields take.
    """
    check_peer(request, runtime.settings.trusted_peers, IDENTITY_HEADERS, needed=True)
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
            raise HTTPException(
                403, f"The role {identity.role} may not change this resource (needs {allowed})."
            )
        # Several field lines join into one value, which no token is (RFC 9110 §5.3).
        sent = request.headers.getlist(CSRF_HEADER)
        verify_csrf_token(runtime, identity, ", ".join(sent) if sent else None)
        return identity

    return authorised

"""Identity header fields believed only from trusted peers: :func:`check_peer`, :func:`peer_guard`.

A gateway authenticates the caller and tells the API who it is in header fields (a
tenant, a role). From any peer but the gateway those fields are a claim nobody checked,
so a request that carries them, or needs them, from a peer outside the
:class:`~optimist.peers.TrustedPeers` is refused with :class:`UntrustedPeer`: 401 as
problem details (RFC 9457) with the challenge RFC 9110 §11.6.1 requires of a 401.

The peer is the ASGI scope's ``client``: the connection's remote address unless the
server rewrote it from forwarded fields (see :mod:`optimist.peers`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request

from optimist.peers import TrustedPeers

__all__ = ["GATEWAY_CHALLENGE", "UntrustedPeer", "check_peer", "peer_guard"]

#: The challenge of a refusal (RFC 9110 §11.6.1): the scheme names what authenticates a
#: caller here, the gateway, which no client can satisfy by itself; the realm says for
#: what (RFC 9110 §11.5).
GATEWAY_CHALLENGE: Final = 'Gateway realm="optimist"'


class UntrustedPeer(HTTPException):
    """401: the request's identity comes, or would have to come, from a peer not trusted.

    An ``HTTPException``, so that the problem handlers of
    :func:`~optimist.starlette.install_problem_handlers` answer it as problem+json with
    its ``WWW-Authenticate`` field. ``peer`` is the address refused (None: none known).
    """

    def __init__(
        self, peer: str | None, fields: Sequence[str], challenge: str = GATEWAY_CHALLENGE
    ) -> None:
        named = " and ".join(fields) or "identity fields"
        super().__init__(
            401,
            f"{named} are believed only from the gateway: send the request through it, "
            "not to this server directly",
            headers={"WWW-Authenticate": challenge},
        )
        self.peer = peer
        self.fields = tuple(fields)


def _peer(connection: HTTPConnection) -> str | None:
    client = connection.scope.get("client")
    return str(client[0]) if client else None


def check_peer(
    connection: HTTPConnection,
    peers: TrustedPeers,
    fields: Sequence[str],
    *,
    needed: bool = False,
    challenge: str = GATEWAY_CHALLENGE,
) -> None:
    """Raise :class:`UntrustedPeer` if ``connection``'s peer is not one of ``peers`` and
    the request carries one of ``fields``, or ``needed`` says its route reads them."""
    peer = _peer(connection)
    if peers.trusts(peer):
        return
    if needed or any(name in connection.headers for name in fields):
        raise UntrustedPeer(peer, fields, challenge)


def peer_guard(
    peers: TrustedPeers,
    fields: Sequence[str],
    *,
    needed: bool = False,
    challenge: str = GATEWAY_CHALLENGE,
) -> Callable[[Request], Awaitable[None]]:
    """:func:`check_peer` as a dependency (``Depends(peer_guard(...))`` in FastAPI, on a
    route, a router or the whole application), or a function to await in a Starlette
    endpoint: it runs before the body is read, as RFC 9110 §13.2.1 puts 401 first."""
    names = tuple(fields)

    async def guard(request: Request) -> None:
        check_peer(request, peers, names, needed=needed, challenge=challenge)

    return guard

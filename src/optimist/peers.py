"""The peers whose word on identity a server takes: :class:`TrustedPeers`.

An API behind a gateway learns who is asking from header fields the gateway sets after
authenticating the caller. Those fields are worth what their sender is: a caller that
reaches the server without the gateway sets them to anything it likes. So the server
believes them only from the peers it trusts, the gateway's addresses, and a value of
this type says which those are: IP networks (an address is a network of one), or every
peer (``*``), which is for a server no one but the gateway can reach.

The peer is the connection's remote address, as the server reports it (the ASGI scope's
``client``). A server that rewrites it from ``X-Forwarded-For`` or ``Forwarded`` makes
it the word of whoever sent those fields: trust is then only as good as the server's own
list of proxies, so a server that decides trust this way should not rewrite it at all.

Parsed once at the boundary (:meth:`TrustedPeers.parse`, with :mod:`ipaddress`), the
value is frozen and compares and prints as the text it was parsed from, normalized.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Final

__all__ = ["EVERY_PEER", "IPAddress", "IPNetwork", "TrustedPeers"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What trusts every peer, in text.
EVERY_PEER: Final = "*"


@dataclass(frozen=True, slots=True)
class TrustedPeers:
    """The networks whose peers are trusted, or every peer (``everyone``).

    ``peer in trusted`` (or :meth:`trusts`) takes an address, its text, or None for a
    connection with no IP peer (a Unix socket, a scope without ``client``): such a peer
    is trusted only when every peer is. An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``,
    what a dual-stack socket reports) is its IPv4 address.
    """

    networks: tuple[IPNetwork, ...] = ()
    everyone: bool = False

    #: Loopback only: the gateway runs on the same machine. The default.
    LOOPBACK: ClassVar[TrustedPeers]

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> TrustedPeers:
        """The peers of ``text``: addresses and networks (CIDR) separated by commas, or ``*``.

        An iterable of such texts is read as one joined by commas. Raises ValueError,
        naming the entry, for one that is neither an address nor a network with no host
        bits set (``10.0.0.1/8`` is refused: it probably meant ``10.0.0.0/8`` or one host),
        and for an empty list, which would trust no one while looking configured.
        """
        texts = [text] if isinstance(text, str) else list(text)
        entries = [entry.strip() for part in texts for entry in part.split(",")]
        entries = [entry for entry in entries if entry]
        if not entries:
            raise ValueError("no address or network given")
        if EVERY_PEER in entries:
            if len(entries) > 1:
                raise ValueError(f"{EVERY_PEER} trusts every peer: give it alone")
            return cls(everyone=True)
        networks: list[IPNetwork] = []
        for entry in entries:
            network = _network(entry)
            if network not in networks:
                networks.append(network)
        return cls(tuple(networks))

    def trusts(self, peer: IPAddress | str | None) -> bool:
        """Whether ``peer`` (an address, its text, or None) is one of these peers."""
        if self.everyone:
            return True
        if peer is None:
            return False
        if isinstance(peer, str):
            try:
                peer = ipaddress.ip_address(peer.split("%", 1)[0])
            except ValueError:
                # A host name or a socket path: nothing an IP network contains.
                return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.networks)

    def __contains__(self, peer: object) -> bool:
        if peer is None or isinstance(peer, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
            return self.trusts(peer)
        return False

    def __str__(self) -> str:
        """The text :meth:`parse` reads back into an equal value."""
        return EVERY_PEER if self.everyone else ",".join(map(str, self.networks))


def _network(entry: str) -> IPNetwork:
    """``entry`` as a network, or ValueError saying why it is none."""
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry[:60]!r} is not an IP address or network") from None
    host = entry.split("/", 1)[0]
    raise ValueError(f"{entry!r} has host bits set: give the network {meant}, or the host {host}")


TrustedPeers.LOOPBACK = TrustedPeers(
    (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
)

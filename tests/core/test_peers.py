"""Trusted peers: the addresses and networks whose identity fields a service believes."""

from __future__ import annotations

import ipaddress

import pytest

from optimist.peers import TrustedPeers

GATEWAYS = TrustedPeers.parse("10.0.0.5, 192.168.1.0/24, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peers", "peer", "trusted"),
    [
        (TrustedPeers.LOOPBACK, "127.0.0.1", True),
        (TrustedPeers.LOOPBACK, "127.8.9.10", True),
        (TrustedPeers.LOOPBACK, "::1", True),
        (TrustedPeers.LOOPBACK, "::ffff:127.0.0.1", True),
        (TrustedPeers.LOOPBACK, "203.0.113.7", False),
        (GATEWAYS, "10.0.0.5", True),
        (GATEWAYS, "10.0.0.6", False),
        (GATEWAYS, "192.168.1.200", True),
        (GATEWAYS, "192.168.2.1", False),
        (GATEWAYS, "2001:db8::7", True),
        (GATEWAYS, "127.0.0.1", False),
        (GATEWAYS, ipaddress.ip_address("10.0.0.5"), True),
        (TrustedPeers.parse("*"), "203.0.113.7", True),
        (TrustedPeers.parse("*"), None, True),
        (TrustedPeers.LOOPBACK, None, False),
        (TrustedPeers.LOOPBACK, "testclient", False),
    ],
    ids=[
        "loopback-v4",
        "loopback-v4-net",
        "loopback-v6",
        "loopback-v4-mapped",
        "loopback-not-other",
        "listed-address",
        "unlisted-address",
        "listed-cidr",
        "outside-cidr",
        "listed-cidr-v6",
        "loopback-not-listed",
        "address-object",
        "star-anyone",
        "star-no-client",
        "no-client",
        "host-name",
    ],
)
def test_trust_decision(peers: TrustedPeers, peer: object, trusted: bool) -> None:
    """A peer is trusted when in a listed network, or when every peer is."""
    assert (peer in peers) is trusted


def test_text_round_trips() -> None:
    """str() gives the text parse() reads back into an equal value."""
    assert TrustedPeers.parse(str(GATEWAYS)) == GATEWAYS
    assert str(TrustedPeers.parse("*")) == "*"


def test_repeated_entries_are_kept_once() -> None:
    """An address listed twice (however written) is one network."""
    assert TrustedPeers.parse(["10.0.0.1,10.0.0.1/32", "10.0.0.1"]).networks == (
        ipaddress.ip_network("10.0.0.1/32"),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.1/8", "has host bits set: give the network 10.0.0.0/8, or the host 10.0.0.1"),
        ("10.0.0.0/33", "is not an IP address or network"),
        ("gateway.internal", "is not an IP address or network"),
        ("*,10.0.0.1", "give it alone"),
        (" , ", "no address or network given"),
    ],
    ids=["host-bits", "prefix-too-long", "host-name", "star-and-more", "empty"],
)
def test_bad_text_is_refused(text: str, reason: str) -> None:
    """What is neither an address nor a network, or an empty list, is a ValueError saying so."""
    with pytest.raises(ValueError, match=reason):
        TrustedPeers.parse(text)


def test_value_is_frozen() -> None:
    """The trusted peers of an application cannot change under it."""
    with pytest.raises(AttributeError):
        GATEWAYS.everyone = True  # type: ignore[misc]

"""One setting's value from the text an operator gave: :class:`InvalidSetting` when the
service cannot run with it, and the parsers of the values that need more than a number.

:class:`InvalidSetting` names the setting, says what is wrong with the value and what the
setting takes (:data:`EXPECTED`), so that the command line can say it in the operator's
terms (the option, or the variable). The CORS origins are read by :func:`parse_origin`
into the form browsers send, the trusted peers by :func:`parse_trusted_peers`.

This module imports no third-party package: ``optimist --help`` reads its defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from optimist.peers import TrustedPeers
from optimist.service.database_url import InvalidDatabaseURL

__all__ = [
    "EXPECTED",
    "InvalidSetting",
    "parse_origin",
    "parse_origins",
    "parse_trusted_peers",
    "whole_number",
]

# RFC 6454 §6.1: scheme "://" host [ ":" port ], no path; a host name or an IP literal.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN: Final = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}
_ORIGINS_SEPARATOR: Final = re.compile(r"[\s,]+")

#: What a setting takes, where a sentence says it better than its type.
EXPECTED: Final = {
    "node_id": "1 to 64 letters, digits and . _ ~ -",
    "read_database_url": "the URL of a streaming replica of the PostgreSQL database, "
    "such as postgresql://USER@REPLICA:PORT/NAME",
    "max_connections": "a whole number of connections, 1 or more",
    "trusted_peers": "the gateway's addresses or networks separated by commas, such as "
    "10.0.0.5,192.168.1.0/24, or * for every peer",
    "auth": "gateway (identity header fields from the trusted peers) or token (a bearer JWT)",
    "jwt_keys": "the path of a PEM public key or certificate, or of a JWKS document",
    "jwt_audience": "the audience (aud) the identity provider issues this service's tokens for",
    "jwt_issuer": "the identity provider's issuer (iss), as its tokens name it",
    "jwt_leeway": "a number of seconds, 0 or more",
    "tenant_claim": "the name of a claim, such as tenant or org_id",
    "role_claim": "the name of a claim, such as role",
}


class InvalidSetting(ValueError):
    """A value the service cannot run with: which setting, what is wrong, what it takes.

    ``name`` is the setting's (``max_connections``, or ``port`` for a server option);
    ``problem`` says what is wrong and shows the value unless it may be a secret;
    ``expected`` is what the setting takes; ``fix``, when given, says what to do
    instead of "give it ``expected``" (e.g. to install a driver).
    """

    def __init__(self, name: str, problem: str, expected: str, fix: str | None = None) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem
        self.expected = expected
        self.fix = fix

    @classmethod
    def of_database_url(
        cls, error: InvalidDatabaseURL, name: str = "database_url"
    ) -> InvalidSetting:
        """The database URL's ``error`` as the setting ``name``'s."""
        return cls(name, error.problem, error.expected, error.fix)


def whole_number(
    name: str, text: str, *, least: int, most: int | None = None, expected: str
) -> int:
    """``text`` as a whole number from ``least`` to ``most``, or InvalidSetting for ``name``."""
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidSetting(name, f"{text!r} is not a whole number", expected) from None
    if value < least:
        raise InvalidSetting(name, f"{value} is less than {least}", expected)
    if most is not None and value > most:
        raise InvalidSetting(name, f"{value} is more than {most}", expected)
    return value


def parse_origin(text: str) -> str:
    """``text`` as an origin (``scheme://host[:port]``, or ``*``), in the form browsers send.

    Scheme and host are lowercased and a default port (80 for http, 443 for https) is
    dropped, as in the ``Origin`` header field (RFC 6454 §6.2), so that a configured
    origin compares equal to the one a browser sends. Refuses anything else with
    InvalidSetting, a path (even ``/``) included.
    """
    text = text.strip()
    if text == "*":
        return text
    match = _ORIGIN.fullmatch(text)
    port = match and match["port"]
    if match is None or (port is not None and not 0 < int(port) < 65536):
        hint = " (without a path: no trailing /)" if text.endswith("/") else ""
        raise InvalidSetting(
            "cors_origins",
            f"{text!r} is not an origin{hint}",
            "origins such as https://app.example.com or http://localhost:5173, or *",
        )
    scheme, host = match["scheme"].lower(), match["host"].lower()
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def parse_origins(texts: Iterable[str]) -> tuple[str, ...]:
    """The origins of ``texts``, each one or more separated by commas or spaces, deduplicated."""
    origins = (
        parse_origin(part)
        for text in texts
        for part in _ORIGINS_SEPARATOR.split(text.strip())
        if part
    )
    return tuple(dict.fromkeys(origins))


def parse_trusted_peers(text: str) -> TrustedPeers:
    """``text`` as trusted peers (addresses and CIDR networks separated by commas, or
    ``*``), or InvalidSetting naming the entry that is neither."""
    try:
        return TrustedPeers.parse(text)
    except ValueError as error:
        raise InvalidSetting("trusted_peers", str(error), EXPECTED["trusted_peers"]) from None

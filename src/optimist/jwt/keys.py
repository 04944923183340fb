"""The public keys that verify a JSON Web Token, read from a file: :class:`KeySet`.

An identity provider publishes the keys it signs with as a JWKS document (RFC 7517 §5)
or hands over one key, or a certificate, in PEM. :func:`read_keys` reads either from
disk, never the network: a server that fetched its keys when a token arrived would let
whoever answers that fetch decide whom it believes, and would stop when the provider
is away. Rotate by replacing the file and restarting.

Only public keys of asymmetric algorithms are taken (RSA, RSA-PSS, ECDSA, EdDSA), each
with the algorithms its type can verify (RFC 8725 §3.1): a token is never checked with
``none``, nor with an HMAC keyed by a public key, which anyone could compute. A private
key, a symmetric key (``kty`` ``oct``) or a key the file marks for encryption only is
refused with ValueError saying which, as is a file holding no key at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from jwt import PyJWK, PyJWTError

__all__ = ["ASYMMETRIC", "KeySet", "PublicKey", "VerificationKey", "parse_keys", "read_keys"]

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_RSA: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
#: Every algorithm a key here may verify: the asymmetric ones of RFC 7518 §3.1 and EdDSA.
ASYMMETRIC: Final = frozenset({*_RSA, *_EC.values(), "EdDSA"})
#: The JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key, its id (``kid``; None for a PEM file) and what it may verify."""

    key: PublicKey
    algorithms: frozenset[str]
    kid: str | None = None


@dataclass(frozen=True, slots=True)
class KeySet:
    """The keys a verifier may use; a token names its key by ``kid`` when there are several."""

    keys: tuple[VerificationKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("no public key to verify tokens with")

    def find(self, kid: str | None, algorithm: str) -> VerificationKey | None:
        """The key for a token whose header names ``kid`` and ``algorithm``; None if no
        key fits (a kid no key has, or an algorithm the key may not verify). A set of
        one key without kid, or a token without one, uses the one key."""
        candidates = tuple(key for key in self.keys if kid is not None and key.kid == kid)
        [only] = self.keys if len(self.keys) == 1 else (None,)
        if not candidates and only is not None and (kid is None or only.kid is None):
            # A token without kid, or a key without one (a PEM file): the one key there
            # is (RFC 7515 §4.1.4 makes kid a hint).
            candidates = (only,)
        return next((key for key in candidates if algorithm in key.algorithms), None)


def _algorithms(key: object, where: str) -> frozenset[str]:
    """What public ``key`` may verify; ValueError for a key of any other kind."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC:
            raise ValueError(f"{where}: the curve {key.curve.name} signs no JWT algorithm")
        return frozenset({_EC[key.curve.name]})
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    raise ValueError(f"{where}: not a public key of RSA, ECDSA or EdDSA")


def _pem(data: bytes, where: str) -> KeySet:
    """The one key of a PEM file: a public key, or a certificate's."""
    key: object
    if b"-----BEGIN CERTIFICATE-----" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        try:
            key = load_pem_public_key(data)
        except ValueError:
            try:
                load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                raise ValueError(
                    f"{where}: neither a PEM public key or certificate nor a JWKS document"
                ) from None
            raise ValueError(
                f"{where} holds a private key: give the public key, which only verifies"
            ) from None
    public = _public(key, where)
    return KeySet((VerificationKey(public, _algorithms(public, where)),))


def _public(key: object, where: str) -> PublicKey:
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    raise ValueError(f"{where}: not a public key of RSA, ECDSA or EdDSA")


def _jwk(member: Mapping[str, object], where: str) -> VerificationKey | None:
    """One JWK as a key; None for one marked for encryption (``use`` ``enc``)."""
    if member.get("use", "sig") != "sig":
        return None
    kty = member.get("kty")
    if kty == "oct":
        raise ValueError(
            f"{where}: a symmetric key (kty oct): tokens are verified with public keys"
        )
    if any(name in member for name in _PRIVATE_MEMBERS):
        raise ValueError(f"{where} holds a private key: publish only the public members")
    # Read by its type alone: whether its alg fits the type is checked below.
    members = {name: value for name, value in member.items() if name != "alg"}
    try:
        key = _public(PyJWK(members).key, where)
    except PyJWTError as error:
        raise ValueError(f"{where}: {error}") from None
    algorithms = _algorithms(key, where)
    named = member.get("alg")
    if named is not None:
        if named not in algorithms:
            raise ValueError(f"{where}: alg {named!s:.20} cannot be verified with this key")
        algorithms = frozenset({str(named)})
    kid = member.get("kid")
    return VerificationKey(key, algorithms, kid if isinstance(kid, str) else None)


def _jwks(document: object, where: str) -> KeySet:
    members: Iterable[object]
    if isinstance(document, Mapping) and isinstance(document.get("keys"), list):
        members = document["keys"]
    elif isinstance(document, Mapping) and "kty" in document:
        members = [document]
    else:
        raise ValueError(f"{where}: a JSON document, but neither a JWKS nor a JWK")
    keys = []
    for number, member in enumerate(members):
        if not isinstance(member, Mapping):
            raise ValueError(f"{where}: key {number} is not a JSON object")
        key = _jwk(member, f"{where} key {number}")
        if key is not None:
            keys.append(key)
    kids = [key.kid for key in keys]
    if len(keys) > 1 and (None in kids or len(set(kids)) < len(kids)):
        raise ValueError(f"{where}: with several keys, each needs a kid of its own")
    if not keys:
        raise ValueError(f"{where}: no signature key in the JWKS")
    return KeySet(tuple(keys))


def parse_keys(data: bytes, where: str = "the keys") -> KeySet:
    """The keys of ``data``: a JWKS document (or one JWK) in JSON, or one PEM public key
    or certificate. ValueError, naming ``where``, for anything else."""
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            raise ValueError(f"{where}: not valid JSON") from None
        return _jwks(document, where)
    return _pem(stripped, where)


def read_keys(path: str | Path) -> KeySet:
    """The keys of the file at ``path`` (:func:`parse_keys`); ValueError also for a file
    that cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None
    return parse_keys(data, str(path))

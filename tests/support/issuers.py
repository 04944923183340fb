"""An identity provider of a test's own: keys made with cryptography, tokens with PyJWT."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = ["AUDIENCE", "ISSUER", "Issuer", "PrivateKey", "new_key"]

AUDIENCE: Final = "optimist-tests"
ISSUER: Final = "https://idp.test"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str = "RS256") -> PrivateKey:
    """A fresh private key for the algorithm ``kind`` (RS*/PS*, ES256, ES384, EdDSA)."""
    if kind.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


@dataclass
class Issuer:
    """Signs tokens with its own key, for ``AUDIENCE`` from ``ISSUER`` unless told otherwise."""

    algorithm: str = "RS256"
    kid: str | None = "k1"
    key: PrivateKey = field(init=False)

    def __post_init__(self) -> None:
        self.key = new_key(self.algorithm)

    def token(self, *, lifetime: float = 300, **claims: Any) -> str:
        """A token valid from now for ``lifetime`` seconds, with ``claims`` over the defaults
        (a claim given as None is left out)."""
        now = int(time.time())
        body = {"sub": "user-1", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + lifetime}
        body.update(claims)
        headers = {"kid": self.kid} if self.kid else None
        present = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(present, self.key, algorithm=self.algorithm, headers=headers)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwk(self, **members: Any) -> dict[str, Any]:
        """The public key as a JWK, with its kid and ``members``."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        document: dict[str, Any] = json.loads(algorithm.to_jwk(self.key.public_key()))
        if self.kid:
            document["kid"] = self.kid
        document.update(members)
        return document

"""PyJWT integration: bearer tokens that are JSON Web Tokens, verified offline.

* :mod:`~optimist.jwt.keys`: :func:`read_keys`, the public keys of a PEM file or a
  JWKS document on disk, each with the algorithms it may verify (:class:`KeySet`).
* :mod:`~optimist.jwt.verifier`: :class:`JWTVerifier`, which checks a token's
  algorithm, signature, expiry, not-before, audience and issuer and returns its
  :class:`optimist.bearer.Principal`: an :class:`optimist.bearer.TokenVerifier` for
  ``optimist.starlette.authenticate`` or any other use.

Installed with the ``jwt`` extra (``pyjwt[crypto]``).
"""

from optimist.jwt.keys import ASYMMETRIC, KeySet, VerificationKey, parse_keys, read_keys
from optimist.jwt.verifier import JWTVerifier

__all__ = ["ASYMMETRIC", "JWTVerifier", "KeySet", "VerificationKey", "parse_keys", "read_keys"]

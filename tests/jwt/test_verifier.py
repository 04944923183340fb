"""JWTVerifier: what a token must be to be accepted, and what each refusal says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from optimist.bearer import ClaimNames, Principal
from optimist.errors import InvalidCredentials
from optimist.jwt import JWTVerifier, parse_keys
from tests.support.issuers import AUDIENCE, ISSUER, Issuer

IDP = Issuer("RS256")
OTHER = Issuer("RS256")  # the same kid, another key: a forger's
#: The provider's key in a JWKS, by its kid k1.
VERIFIER = JWTVerifier(parse_keys(json.dumps({"keys": [IDP.jwk()]}).encode()), AUDIENCE, ISSUER)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(**header: object) -> str:
    """A token with ``header`` whose signature is empty, as alg none has it."""
    now = int(time.time())
    claims = {"aud": AUDIENCE, "iss": ISSUER, "exp": now + 300}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hmac_with_public_key() -> str:
    """An HS256 token keyed with the public PEM: what anyone holding that key can make."""
    signing = _unsigned(alg="HS256", typ="JWT")[:-1]
    mac = hmac.new(IDP.public_pem(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"


def test_a_pem_key_verifies_a_token_whatever_its_kid() -> None:
    """A PEM key has no kid: it verifies a token naming any kid, or none."""
    verifier = JWTVerifier(parse_keys(IDP.public_pem()), AUDIENCE, ISSUER)
    assert verifier.verify(IDP.token()).subject == "user-1"


def test_a_good_token_gives_its_principal() -> None:
    """A token of the provider, for this audience and issuer, names its subject, tenant, role."""
    principal = VERIFIER.verify(IDP.token(tenant="t1", role="admin"))
    assert principal == Principal("user-1", "t1", "admin")
    assert principal.claims["iss"] == ISSUER


def _now() -> int:
    """Now, read when a token is made: the tests may run long after they are collected."""
    return int(time.time())


REFUSALS: list[tuple[str, Callable[[], str], str]] = [
    ("forged", OTHER.token, "signature does not verify"),
    ("expired", lambda: IDP.token(exp=_now() - 3600), "has expired"),
    ("not-yet-valid", lambda: IDP.token(nbf=_now() + 3600), "not valid yet"),
    ("issued-in-future", lambda: IDP.token(iat=_now() + 3600), "not valid yet"),
    ("wrong-audience", lambda: IDP.token(aud="another-api"), "another audience"),
    ("wrong-issuer", lambda: IDP.token(iss="https://evil.test"), "another issuer"),
    ("no-expiry", lambda: IDP.token(exp=None), "lacks a required claim"),
    ("no-audience", lambda: IDP.token(aud=None), "lacks a required claim"),
    ("no-issuer", lambda: IDP.token(iss=None), "lacks a required claim"),
    ("alg-none", lambda: _unsigned(alg="none", kid="k1"), "algorithm is not allowed"),
    ("hs256-public-key", _hmac_with_public_key, "algorithm is not allowed"),
    ("unknown-kid", lambda: Issuer(kid="k2").token(), "no key of this server"),
    ("alg-of-other-key", lambda: Issuer("ES256").token(), "no key of this server"),
    ("not-a-jwt", lambda: "abc.def", "not a well-formed JWT"),
    ("garbled-payload", lambda: IDP.token()[:-30] + "A" * 30, "signature does not verify"),
]


@pytest.mark.parametrize(
    ("make", "reason"), [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS]
)
def test_a_bad_token_is_refused_saying_why(make: Callable[[], str], reason: str) -> None:
    """A token not accepted is an invalid_token 401 whose description names the check."""
    with pytest.raises(InvalidCredentials, match=reason) as refused:
        VERIFIER.verify(make())
    assert refused.value.status == 401
    assert refused.value.challenge is not None
    assert 'error="invalid_token"' in refused.value.challenge


def test_leeway_accepts_a_token_just_expired() -> None:
    """A token expired less than the leeway ago is accepted: the clocks may differ."""
    lenient = JWTVerifier(VERIFIER.keys, AUDIENCE, ISSUER, leeway=timedelta(seconds=60))
    assert lenient.verify(IDP.token(exp=_now() - 10)).subject == "user-1"


def test_without_an_issuer_any_issuer_is_accepted() -> None:
    """A verifier given no issuer checks none, and requires none."""
    verifier = JWTVerifier(VERIFIER.keys, AUDIENCE)
    assert verifier.verify(IDP.token(iss=None)).subject == "user-1"


def test_allowed_algorithms_narrow_the_keys() -> None:
    """An RSA key may verify PS256, unless the verifier allows RS256 alone."""
    issuer = Issuer("PS256")
    keys = parse_keys(issuer.public_pem())
    assert JWTVerifier(keys, AUDIENCE).verify(issuer.token()).subject == "user-1"
    narrowed = JWTVerifier(keys, AUDIENCE, algorithms=frozenset({"RS256"}))
    with pytest.raises(InvalidCredentials, match="algorithm is not allowed"):
        narrowed.verify(issuer.token())


def test_claim_names_are_chosen(tmp_path: Path) -> None:
    """The tenant and role come from the claims the verifier is told, read from a file."""
    path = tmp_path / "idp.pem"
    path.write_bytes(IDP.public_pem())
    verifier = JWTVerifier.from_file(
        path, audience=AUDIENCE, claims=ClaimNames(tenant="org", role="perm")
    )
    principal = verifier.verify(IDP.token(org="t9", perm="viewer", tenant="ignored"))
    assert (principal.tenant, principal.role) == ("t9", "viewer")


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"audience": ""}, "audience"),
        ({"leeway": timedelta(seconds=-1)}, "negative"),
        ({"algorithms": frozenset({"none"})}, "not an asymmetric algorithm: none"),
        ({"algorithms": frozenset({"HS256", "RS256"})}, "not an asymmetric algorithm: HS256"),
    ],
    ids=["no-audience", "negative-leeway", "alg-none", "hmac"],
)
def test_a_verifier_that_would_be_unsafe_is_refused(
    arguments: dict[str, object], reason: str
) -> None:
    """No audience, a negative leeway, or a symmetric or empty algorithm: refused when made."""
    options: dict[str, object] = {"audience": AUDIENCE, **arguments}
    with pytest.raises(ValueError, match=reason):
        JWTVerifier(VERIFIER.keys, **options)  # type: ignore[arg-type]

"""The public keys of a PEM file or a JWKS document, each with what it may verify."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from optimist.jwt import KeySet, parse_keys, read_keys
from tests.support.issuers import Issuer

RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


@pytest.mark.parametrize(
    ("algorithm", "verifies"),
    [
        ("RS256", RSA),
        ("ES256", frozenset({"ES256"})),
        ("ES384", frozenset({"ES384"})),
        ("EdDSA", frozenset({"EdDSA"})),
    ],
    ids=["rsa", "p256", "p384", "ed25519"],
)
def test_a_pem_public_key_verifies_what_its_type_signs(
    algorithm: str, verifies: frozenset[str]
) -> None:
    """A PEM public key is one key, without kid, allowed the algorithms of its type only."""
    [key] = parse_keys(Issuer(algorithm).public_pem()).keys
    assert (key.kid, key.algorithms) == (None, verifies)


def test_a_certificate_gives_its_public_key() -> None:
    """A PEM certificate, as some providers publish, gives the key it certifies."""
    issuer = Issuer("ES256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(issuer.key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(issuer.key, hashes.SHA256())
    )
    [key] = parse_keys(certificate.public_bytes(serialization.Encoding.PEM)).keys
    assert key.key.public_numbers() == issuer.key.public_key().public_numbers()  # type: ignore[union-attr]


def test_a_jwks_gives_each_key_by_kid() -> None:
    """Each key of a JWKS is found by its kid, and only for an algorithm it may verify."""
    rsa, ec = Issuer("RS256", kid="r"), Issuer("ES256", kid="e")
    keys = parse_keys(json.dumps({"keys": [rsa.jwk(), ec.jwk()]}).encode())
    assert keys.find("e", "ES256") is keys.keys[1]
    assert keys.find("r", "PS384") is keys.keys[0]
    assert keys.find("r", "ES256") is None
    assert keys.find("x", "RS256") is None
    assert keys.find(None, "RS256") is None


def test_the_alg_of_a_jwk_narrows_its_algorithms() -> None:
    """A JWK that names its alg verifies that algorithm alone."""
    [key] = parse_keys(json.dumps(Issuer("RS256").jwk(alg="PS256")).encode()).keys
    assert key.algorithms == {"PS256"}


def test_keys_for_encryption_are_left_out() -> None:
    """A JWK with use enc is not a signature key: it is skipped."""
    keys = parse_keys(
        json.dumps({"keys": [Issuer(kid="s").jwk(), Issuer(kid="c").jwk(use="enc")]}).encode()
    )
    assert [key.kid for key in keys.keys] == ["s"]


def test_one_key_verifies_tokens_without_kid() -> None:
    """A token that names no kid is verified with the one key of a set of one."""
    keys = parse_keys(Issuer().public_pem())
    assert keys.find(None, "RS256") is keys.keys[0]


def _jwks(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (lambda: Issuer().private_pem(), "holds a private key"),
        (lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "neither"),
        (lambda: b"{not json", "not valid JSON"),
        (lambda: b'{"issuer": "x"}', "neither a JWKS nor a JWK"),
        (lambda: _jwks({"kty": "oct", "k": "c2VjcmV0"}), "symmetric key"),
        (lambda: _jwks({**Issuer().jwk(), "d": "AAAA"}), "holds a private key"),
        (lambda: _jwks(Issuer().jwk(alg="ES256")), "cannot be verified with this key"),
        (lambda: _jwks(Issuer(kid=None).jwk(), Issuer(kid=None).jwk()), "a kid of its own"),
        (lambda: _jwks(Issuer(kid="a").jwk(), Issuer(kid="a").jwk()), "a kid of its own"),
        (lambda: _jwks(Issuer().jwk(use="enc")), "no signature key"),
        (lambda: _jwks("RSA"), "not a JSON object"),  # type: ignore[arg-type]
    ],
    ids=[
        "private-pem",
        "broken-pem",
        "broken-json",
        "json-no-keys",
        "symmetric-jwk",
        "private-jwk",
        "alg-of-other-type",
        "two-keys-no-kid",
        "two-keys-same-kid",
        "only-encryption-keys",
        "key-not-object",
    ],
)
def test_unusable_keys_are_refused(data: Any, reason: str) -> None:
    """What is no public signature key, or leaves a token's key ambiguous, is refused."""
    with pytest.raises(ValueError, match=reason):
        parse_keys(data(), "keys.json")


def test_an_empty_key_set_is_refused() -> None:
    """A key set with no key would verify nothing while looking configured."""
    with pytest.raises(ValueError, match="no public key"):
        KeySet(())


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """A missing file is a ValueError naming it."""
    with pytest.raises(ValueError, match=r"absent\.pem"):
        read_keys(tmp_path / "absent.pem")


def test_a_file_is_read(tmp_path: Path) -> None:
    """read_keys reads the file's keys."""
    path = tmp_path / "keys.json"
    path.write_bytes(_jwks(Issuer(kid="k").jwk()))
    assert [key.kid for key in read_keys(path).keys] == ["k"]

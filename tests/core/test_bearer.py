"""Bearer tokens in the core: the credentials of Authorization, the principal of claims,
the challenge of a refusal (RFC 6750)."""

from __future__ import annotations

import pytest

from optimist.bearer import ClaimNames, Principal, challenge, credentials
from optimist.errors import InvalidCredentials, OptimistError


@pytest.mark.parametrize(
    ("values", "token"),
    [
        ([], None),
        (["Bearer abc.def-ghi_jkl"], "abc.def-ghi_jkl"),
        (["bearer abc"], "abc"),
        (["BEARER   abc=="], "abc=="),
        (["Basic dXNlcjpwYXNz"], None),
        (["Digest username=x"], None),
    ],
    ids=["none", "token", "scheme-lowercase", "spaces-and-padding", "basic", "digest"],
)
def test_credentials_of_authorization(values: list[str], token: str | None) -> None:
    """The bearer token is read; no field, or another scheme, is no bearer credential."""
    assert credentials(values) == token


@pytest.mark.parametrize(
    "values",
    [["Bearer"], ["Bearer "], ["Bearer a b"], ["Bearer a,b"], ["Bearer a", "Bearer b"]],
    ids=["no-token", "blank-token", "two-words", "comma", "field-twice"],
)
def test_malformed_bearer_credentials_are_invalid_requests(values: list[str]) -> None:
    """Bearer credentials that are not one b64token, or sent twice, are a 400 invalid_request."""
    with pytest.raises(InvalidCredentials) as refused:
        credentials(values)
    assert refused.value.status == 400
    assert refused.value.error == "invalid_request"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, 'Bearer realm="optimist"'),
        ({"realm": "api"}, 'Bearer realm="api"'),
        (
            {"error": "invalid_token", "description": "the token has expired"},
            'Bearer realm="optimist", error="invalid_token", '
            'error_description="the token has expired"',
        ),
        (
            {"error": "insufficient_scope", "scope": "admin"},
            'Bearer realm="optimist", error="insufficient_scope", scope="admin"',
        ),
        ({"description": "ignored without an error"}, 'Bearer realm="optimist"'),
        (
            {"error": "invalid_token", "description": 'say "no" \\ é'},
            'Bearer realm="optimist", error="invalid_token", error_description="say ?no? ? ?"',
        ),
    ],
    ids=["bare", "realm", "invalid-token", "scope", "description-needs-error", "unsafe-chars"],
)
def test_challenge(arguments: dict[str, str], expected: str) -> None:
    """The challenge carries realm, then error, description and scope (RFC 6750 §3)."""
    assert challenge(**arguments) == expected


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        (None, 401, 'Bearer realm="optimist"'),
        ("invalid_token", 401, 'Bearer realm="optimist", error="invalid_token", '
         'error_description="why"'),
        ("invalid_request", 400, 'Bearer realm="optimist", error="invalid_request", '
         'error_description="why"'),
    ],
    ids=["no-credentials", "invalid-token", "invalid-request"],
)  # fmt: skip
def test_invalid_credentials_carry_status_and_challenge(
    error: str | None, status: int, expected: str
) -> None:
    """No credentials: 401 naming no error (§3.1); a bad token 401, a malformed request 400."""
    refusal = InvalidCredentials("why", error)
    assert isinstance(refusal, OptimistError)
    assert (refusal.status, refusal.challenge) == (status, expected)


def test_claims_name_the_principal() -> None:
    """Subject, tenant and role come from sub and the claims named."""
    names = ClaimNames(tenant="org", role="https://example.com/role")
    claims = {"sub": "u1", "org": "t1", "https://example.com/role": "editor", "x": 1}
    principal = names.principal(claims)
    assert principal == Principal("u1", "t1", "editor")
    assert principal.claims["x"] == 1


def test_absent_claims_are_none() -> None:
    """A token without the tenant or role claims names none."""
    assert ClaimNames().principal({"sub": "u1"}) == Principal("u1", None, None)


@pytest.mark.parametrize(
    "value", [7, ["admin"], {"name": "admin"}], ids=["number", "list", "object"]
)
def test_a_claim_that_is_no_string_is_an_invalid_token(value: object) -> None:
    """A role claim that is not a string is refused rather than guessed at."""
    with pytest.raises(InvalidCredentials, match="role claim is not a string") as refused:
        ClaimNames().principal({"role": value})
    assert refused.value.error == "invalid_token"


def test_principal_claims_are_read_only() -> None:
    """A principal's claims cannot be changed after verification, nor through the dict given."""
    given: dict[str, object] = {"sub": "u1"}
    principal = Principal("u1", claims=given)
    given["sub"] = "u2"
    assert principal.claims["sub"] == "u1"
    with pytest.raises(TypeError):
        principal.claims["sub"] = "u3"  # type: ignore[index]

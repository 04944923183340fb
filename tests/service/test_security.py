"""The OpenAPI document asks a caller for what the service believes, in each mode: the
gateway's fields, or a bearer token, and on which operations."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

import pytest
import schemathesis

from optimist.service.app import create_app
from optimist.service.security import BEARER_SCHEME
from tests.support.issuers import AUDIENCE, ISSUER, Issuer
from tests.support.service import settings_for

GATEWAY_FIELDS: Final = {"x-tenant-id", "x-user-role"}
#: What the gateway's mode alone reads.
GATEWAY_ONLY: Final = {*GATEWAY_FIELDS, "x-csrf-token"}
PUBLIC: Final = {"/healthz", "/readyz"}
MODES: Final = ("gateway", "gateway-required", "token", "token-required")


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The document of each mode (no database needed to build one)."""
    keys: Path = tmp_path_factory.mktemp("security") / "jwks.json"
    keys.write_text(json.dumps({"keys": [Issuer("RS256", kid="idp").jwk(alg="RS256")]}))
    token = {"auth": "token", "jwt_keys": keys, "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}
    settings = {
        "gateway": settings_for("sqlite://"),
        "gateway-required": settings_for("sqlite://", require_identity=True),
        "token": settings_for("sqlite://", **token),
        "token-required": settings_for("sqlite://", require_identity=True, **token),
    }
    return {mode: create_app(value).openapi() for mode, value in settings.items()}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def header_names(operation: dict[str, Any], *, required: bool = False) -> set[str]:
    return {
        parameter["name"].lower()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header" and (parameter.get("required") or not required)
    }


def identified(document: dict[str, Any], mode: str) -> set[tuple[str, str]]:
    """The operations that need an identity in ``mode``: the admin API's, or with
    require-identity every one but the health checks."""
    everywhere = mode.endswith("required")
    return {
        (method, path)
        for method, path in operations(document)
        if path.startswith("/admin") or (everywhere and path not in PUBLIC)
    }


@pytest.mark.parametrize("mode", ["gateway", "gateway-required"])
def test_gateway_mode_asks_for_the_fields_where_they_are_read(
    documents: dict[str, dict[str, Any]], mode: str
) -> None:
    """In gateway mode the operations that need an identity require both fields and
    list their 401; no other operation lists them."""
    document = documents[mode]
    needed = identified(document, mode)
    for key, operation in operations(document).items():
        if key in needed:
            assert header_names(operation, required=True) >= GATEWAY_FIELDS, key
            assert "401" in operation["responses"], key
        else:
            assert not GATEWAY_FIELDS & header_names(operation), key


@pytest.mark.parametrize("mode", MODES)
def test_only_token_mode_declares_a_security_scheme(
    documents: dict[str, dict[str, Any]], mode: str
) -> None:
    """Only token mode declares a security scheme, and every operation that names one
    names the bearer token."""
    document = documents[mode]
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert (BEARER_SCHEME in schemes) is mode.startswith("token")
    for key, operation in operations(document).items():
        assert operation.get("security", [{BEARER_SCHEME: []}]) == [{BEARER_SCHEME: []}], key


@pytest.mark.parametrize("mode", ["token", "token-required"])
def test_token_mode_lists_no_gateway_field(documents: dict[str, dict[str, Any]], mode: str) -> None:
    """In token mode no operation asks for a field the service refuses there (the
    identity fields) or ignores (the CSRF token)."""
    for key, operation in operations(documents[mode]).items():
        assert not GATEWAY_ONLY & header_names(operation), key


@pytest.mark.parametrize("mode", ["token", "token-required"])
def test_token_mode_names_the_bearer_token_where_it_is_needed(
    documents: dict[str, dict[str, Any]], mode: str
) -> None:
    """The operations that need an identity, and only they, name the bearer scheme and
    list its 401 and 403."""
    document = documents[mode]
    needed = identified(document, mode)
    named = {key for key, operation in operations(document).items() if "security" in operation}
    assert named == needed
    for key in needed:
        assert {"401", "403"} <= set(operations(document)[key]["responses"]), key


def test_the_bearer_scheme_says_what_the_token_must_hold(
    documents: dict[str, dict[str, Any]],
) -> None:
    """The scheme is an HTTP bearer JWT, and its description names the audience, the
    issuer and the claims read."""
    scheme = documents["token"]["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for told in (AUDIENCE, ISSUER, "tenant claim", "role claim"):
        assert told in scheme["description"]


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_s_document_is_valid_openapi(
    documents: dict[str, dict[str, Any]], mode: str
) -> None:
    """The rewritten document still validates against the OpenAPI 3.1 schema."""
    schemathesis.openapi.from_dict(copy.deepcopy(documents[mode])).validate()

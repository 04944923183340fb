"""What the OpenAPI document says a caller must show, in the mode the service runs in.

The routes are declared once, for the default mode: the admin API reads the gateway's
identity fields (``X-Tenant-Id``, ``X-User-Role``, and ``X-CSRF-Token`` on a write) and
the projects and sessions APIs read none. :func:`document_identity` rewrites the
document for the deployment's settings, so that a client generated from it sends what
this server believes and nothing it refuses:

* **gateway mode**: the admin API as declared. With ``require_identity`` the projects
  and sessions operations list the two identity fields as required and their 401.
* **token mode**: no operation lists a gateway field (the service refuses them with
  400); the document declares the ``bearer`` scheme (OpenAPI 3.1 §4.8.27, an HTTP
  ``Bearer`` token of RFC 6750 carrying a JWT) and every operation that needs an
  identity names it in ``security`` and lists its 401 (no token, or one not accepted)
  and 403 (a token naming no tenant or role here, RFC 6750 §3.1 ``insufficient_scope``).

Which operations need an identity is read from the routes' dependencies, not their
paths: those that solve :func:`~optimist.service.admin.identity.identify` always, those
that solve :func:`~optimist.service.admin.identity.authenticated` with
``require_identity``.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI

from optimist.fastapi import operations_depending_on, problem_responses
from optimist.service.admin.identity import (
    CSRF_HEADER,
    ROLE_HEADER,
    TENANT_HEADER,
    authenticated,
    identify,
)
from optimist.service.settings import Settings

__all__ = ["BEARER_SCHEME", "document_identity", "identity_document"]

#: The name of the bearer token's security scheme in ``components.securitySchemes``.
BEARER_SCHEME: Final = "bearer"

#: The gateway's fields, as the admin API's operations declare them.
_GATEWAY_FIELDS: Final = {
    TENANT_HEADER: "The tenant, set by the gateway",
    ROLE_HEADER: "admin, editor or viewer, set by the gateway",
}
_READ_BY_GATEWAY: Final = frozenset(name.lower() for name in (*_GATEWAY_FIELDS, CSRF_HEADER))


def _identified(app: FastAPI, settings: Settings) -> set[tuple[str, str]]:
    """The (path, method) of every documented operation that needs an identity."""
    needed = operations_depending_on(app, identify)
    if settings.require_identity:
        needed |= operations_depending_on(app, authenticated)
    return needed


def _add_responses(operation: dict[str, Any], *statuses: int) -> None:
    """Add the problem responses of ``statuses`` that ``operation`` does not list yet."""
    responses = operation.setdefault("responses", {})
    for status, response in problem_responses(*statuses).items():
        responses.setdefault(str(status), response)


def _require_gateway_fields(operation: dict[str, Any]) -> None:
    """List the gateway's identity fields as required headers, once each."""
    parameters = operation.setdefault("parameters", [])
    present = {p.get("name", "").lower() for p in parameters if p.get("in") == "header"}
    for name, description in _GATEWAY_FIELDS.items():
        if name.lower() not in present:
            parameters.append(
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "description": description,
                    "schema": {"type": "string", "title": name},
                }
            )


def _drop_gateway_fields(operation: dict[str, Any]) -> None:
    """Leave out the header parameters that only the gateway's mode reads."""
    parameters = [
        parameter
        for parameter in operation.get("parameters", [])
        if parameter.get("in") != "header"
        or parameter.get("name", "").lower() not in _READ_BY_GATEWAY
    ]
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)


def _bearer(settings: Settings) -> dict[str, Any]:
    """The bearer token's security scheme, saying what the service checks of the JWT."""
    issuer = f", issued by {settings.jwt_issuer}" if settings.jwt_issuer else ""
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            f"A JWT for the audience {settings.jwt_audience}{issuer}; its "
            f"{settings.tenant_claim} claim names the tenant and its {settings.role_claim} "
            "claim the role (admin, editor or viewer)."
        ),
    }


def identity_document(schema: dict[str, Any], app: FastAPI, settings: Settings) -> dict[str, Any]:
    """``schema``, the document of ``app``, saying what a caller must show under ``settings``."""
    identified = _identified(app, settings)
    token = settings.auth == "token"
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            if token:
                _drop_gateway_fields(operation)
            if (path, method) not in identified:
                continue
            if token:
                operation["security"] = [{BEARER_SCHEME: []}]
                _add_responses(operation, 401, 403)
            else:
                _require_gateway_fields(operation)
                _add_responses(operation, 401)
    if token:
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER_SCHEME] = _bearer(settings)
    return schema


def document_identity(app: FastAPI, settings: Settings) -> None:
    """Make ``app``'s ``/openapi.json`` say what a caller must show under ``settings``
    (:func:`identity_document`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = identity_document(build(), app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""The OpenAPI document of a problem-details API: what each error looks like, and which
operations read the precondition headers.

:func:`problem_responses` declares a route's problem statuses (a 412 and a 304 with the
ETag header); :func:`document_problems` adds the :class:`ProblemDetails` schema, puts it
in place of FastAPI's default 422, and lists the four precondition headers in every
operation that depends on :func:`~optimist.fastapi.conditional` (which reads them from
the request rather than declaring them, so that FastAPI validates nothing per request).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final, Literal

import fastapi.routing
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.routing import BaseRoute

from optimist.fastapi.dependencies import _depends_on_conditional

__all__ = ["InvalidParameter", "ProblemDetails", "document_problems", "problem_responses"]

_SCHEMAS: Final = "#/components/schemas/"


class InvalidParameter(BaseModel):
    """One input that was wrong, and why."""

    name: str
    reason: str


class ProblemDetails(BaseModel):
    """Problem details (RFC 9457) with the extension members optimist uses."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParameter] | None = None
    current_etag: str | None = None
    conflict: Literal["stale", "concurrent"] | None = None
    current_vector_clock: dict[str, int] | None = None
    conflicting_paths: list[str] | None = None


_DESCRIPTIONS: Final[Mapping[int, str]] = {
    304: "Not Modified: the representation matches If-None-Match; no body",
    400: "Bad Request: malformed input, or a required If-Match is missing",
    401: "Unauthorized: the request's identity is missing or unknown",
    403: "Forbidden: the identity may not do this",
    404: "Not Found",
    409: "Conflict: the resource already exists, or the changes collide",
    410: "Gone: the cursor's snapshot has expired",
    412: "Precondition Failed: the resource has changed; the ETag header is the current one",
    422: "Unprocessable Content: the body or a parameter is invalid",
    428: "Precondition Required: resend with If-Match set to the resource's ETag",
}

_DEFAULT_422: Final = {"$ref": _SCHEMAS + "HTTPValidationError"}

_ETAG_HEADER: Final = {
    "ETag": {"description": "The current entity-tag", "schema": {"type": "string"}}
}


def _problem_content() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": _SCHEMAS + "ProblemDetails"}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer ``statuses`` as problem details.

    Needs :func:`document_problems` (done by :func:`~optimist.fastapi.install_problem_handlers`)
    to put the ProblemDetails schema into the document.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = _DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
        response: dict[str, Any] = {"description": description}
        if status != 304:
            response["content"] = _problem_content()
        if status in (304, 412):
            response["headers"] = dict(_ETAG_HEADER)
        responses[status] = response
    return responses


def _with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem schemas and replace FastAPI's default 422 by problem details."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template=_SCHEMAS + "{model}")
    components.update(problem.pop("$defs", {}))
    components["ProblemDetails"] = problem
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            content = (response or {}).get("content", {})
            if content.get("application/json", {}).get("schema") == _DEFAULT_422:
                response["description"] = _DESCRIPTIONS[422]
                response["content"] = _problem_content()
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now unused
        definition = components.pop(name, None)
        if definition is not None and _SCHEMAS + name in json.dumps(schema):
            components[name] = definition
    return schema


#: The fields :func:`~optimist.fastapi.conditional` reads, as the OpenAPI parameters of
#: its operations.
_PRECONDITION_HEADERS: Final = (
    ("If-Match", "Entity-tags the write expects"),
    ("If-None-Match", 'Entity-tags, or "*"'),
    ("If-Modified-Since", "An HTTP-date"),
    ("If-Unmodified-Since", "An HTTP-date"),
)


def _header_parameter(name: str, description: str) -> dict[str, Any]:
    """An optional string header, as FastAPI documents ``Header(alias=name)`` of ``str | None``."""
    schema = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": description,
        "title": name,
    }
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _document_preconditions(operation: dict[str, Any]) -> None:
    """Add the precondition headers the operation does not declare already."""
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    # RFC 9110 §5.1: field names are case-insensitive.
    declared = {(p.get("in"), str(p.get("name", "")).lower()) for p in parameters}
    added = [
        _header_parameter(name, description)
        for name, description in _PRECONDITION_HEADERS
        if ("header", name.lower()) not in declared
    ]
    # FastAPI lists path, query, header and then cookie parameters.
    cookies = [i for i, p in enumerate(parameters) if p.get("in") == "cookie"]
    at = cookies[0] if cookies else len(parameters)
    parameters[at:at] = added


def _documented_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """The APIRoutes among ``routes`` as FastAPI's OpenAPI sees them.

    FastAPI versions that include a router lazily keep it as one route and document its
    routes through ``fastapi.routing.iter_route_contexts``; earlier ones copy them in.
    """
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        yield from (route for route in routes if isinstance(route, APIRoute))
        return
    for context in contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _conditional_operations(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of the operations FastAPI documents for ``routes`` that depend on
    :func:`~optimist.fastapi.conditional`; of two routes with the same path and method,
    the later one counts.
    """
    uses: dict[tuple[str, str], bool] = {}
    for route in _documented_routes(routes):
        if route.include_in_schema:
            conditional = _depends_on_conditional(route.dependant)
            for method in route.methods or ():
                uses[route.path_format, method.lower()] = conditional
    return {operation for operation, conditional in uses.items() if conditional}


def _with_preconditions(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Document the precondition headers of every operation that depends on
    :func:`~optimist.fastapi.conditional` (webhooks too, which FastAPI lists by path as
    well).
    """
    sections = (
        (schema.get("paths", {}), _conditional_operations(app.routes)),
        (schema.get("webhooks", {}), _conditional_operations(app.webhooks.routes)),
    )
    for operations, conditional in sections:
        for path, method in conditional:
            operation = operations.get(path, {}).get(method)
            if operation is not None:
                _document_preconditions(operation)
    return schema


def document_problems(app: FastAPI) -> None:
    """Make ``/openapi.json`` describe errors as problem details (the default 422 too), and
    list the precondition headers in every operation that depends on
    :func:`~optimist.fastapi.conditional`.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(_with_preconditions(build(), app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

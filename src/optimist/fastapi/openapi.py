"""The OpenAPI document of a conditional, problem-details API: what each error looks
like, which operations read the precondition headers, which responses carry an ETag,
and how a client goes from a representation to a conditional write of it.

:func:`problem_responses` declares a route's problem statuses (a 412 and a 304 with the
ETag header); :func:`representation_responses` declares that its success carries a
representation with ETag (and Last-Modified, and for a 201 Location);
:func:`required_header` declares a header the endpoint requires but checks itself.
:func:`document_problems` adds the :class:`ProblemDetails` schema, puts it in place of
FastAPI's default 422, lists the four precondition headers in every operation that
depends on :func:`~optimist.fastapi.conditional` (which reads them from the request
rather than declaring them, so that FastAPI validates nothing per request), marks the
required headers required, and links every 2xx that declares ETag to the conditional
PUT, PATCH and DELETE of the same resource (OpenAPI 3.1 links, ``If-Match`` set to
``$response.header.ETag``), so that generated clients and stateful tools can chain a
read or a create to a write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final, Literal

import fastapi.routing
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.routing import BaseRoute

from optimist.fastapi._links import LOCATION_EXTENSION, add_links, path_parameters
from optimist.fastapi.dependencies import _depends_on_conditional

__all__ = [
    "InvalidParameter",
    "ProblemDetails",
    "document_problems",
    "every_route",
    "operations_depending_on",
    "problem_responses",
    "representation_responses",
    "required_header",
]

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


_REPRESENTATION_ETAG: Final = {
    "description": "The entity-tag of this representation; If-Match takes it to write",
    "required": True,
    "schema": {"type": "string"},
}
_LAST_MODIFIED_HEADER: Final = {
    "description": "When the resource last changed, an HTTP-date (If-Unmodified-Since takes it)",
    "required": True,
    "schema": {"type": "string"},
}
_LOCATION_HEADER: Final = {
    "description": "The URL of the created resource",
    "required": True,
    "schema": {"type": "string", "format": "uri-reference"},
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


def representation_responses(
    status: int = 200,
    *,
    last_modified: bool = True,
    location: str | None = None,
    ids: Mapping[str, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` fragment that declares the route's ``status`` (a 2xx) as a
    representation with its ``ETag`` header, and ``Last-Modified`` unless told otherwise.

    FastAPI merges it with the schema of the route's ``response_model``; combine it
    with :func:`problem_responses`:
    ``responses={**representation_responses(), **problem_responses(412)}``.
    A 201 declares ``Location`` when given ``location``, the path template of the created
    resource as the document lists it (``"/items/{item_id}"``); ``ids`` maps each of its
    parameters to the JSON Pointer (RFC 6901) of the body member that holds the value
    (``{"item_id": "/id"}``); a parameter it leaves out is taken from the request's own
    path. :func:`document_problems` links the response to the conditional writes of the
    resource (on the route's path, and on ``location``) and needs these to fill in
    their path parameters: a Location header is a URL, not a value a link can pass on.
    """
    if not 200 <= status <= 299:
        raise ValueError(f"a representation is declared on a 2xx, not on {status}")
    if location is None and ids:
        raise ValueError("ids name the parameters of a location, and no location is given")
    if location is not None and status != 201:
        # RFC 9110 §15.3.2: a 201's Location names the resource it created.
        raise ValueError(f"Location is declared on a 201, not on {status}")
    headers: dict[str, Any] = {"ETag": dict(_REPRESENTATION_ETAG)}
    if last_modified:
        headers["Last-Modified"] = dict(_LAST_MODIFIED_HEADER)
    response: dict[str, Any] = {"headers": headers}
    if location is not None:
        headers["Location"] = dict(_LOCATION_HEADER)
        names = path_parameters(location)
        values: dict[str, str] = {}
        for name, pointer in (ids or {}).items():
            if name not in names:
                raise ValueError(f"{name} is not a parameter of {location}")
            if pointer and not pointer.startswith("/"):
                raise ValueError(f"{pointer!r} is not a JSON Pointer (RFC 6901 §3)")
            values[name] = f"$response.body#{pointer}"
        response[LOCATION_EXTENSION] = {"path": location, "values": values}
    return {status: response}


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


def every_route(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """``routes`` with the routes of included routers in their place, in the order
    FastAPI matches them; each of those has its full path as ``path_format``.

    FastAPI versions that include a router lazily keep it as one route and list its
    routes through ``fastapi.routing.iter_route_contexts``; earlier ones copy them in.
    A route of ``routes`` itself comes as it is.
    """
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        yield from routes
        return
    own = {id(route) for route in routes}
    for context in contexts(routes):
        yield context.original_route if id(context.original_route) in own else context


def _documented_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """The APIRoutes among ``routes`` as FastAPI's OpenAPI sees them (:func:`every_route`)."""
    for route in every_route(routes):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _documented_operations(routes: Sequence[BaseRoute]) -> dict[tuple[str, str], Dependant]:
    """The dependencies of each operation (path, method) FastAPI documents for
    ``routes``; of two routes with the same path and method, the later one counts."""
    operations: dict[tuple[str, str], Dependant] = {}
    for route in _documented_routes(routes):
        if route.include_in_schema:
            for method in route.methods or ():
                operations[route.path_format, method.lower()] = route.dependant
    return operations


def _solves(dependant: Dependant, call: Callable[..., Any]) -> bool:
    """Whether ``dependant`` or one of its dependencies, at any depth, is ``call``."""
    return dependant.call is call or any(_solves(sub, call) for sub in dependant.dependencies)


def operations_depending_on(app: FastAPI, call: Callable[..., Any]) -> set[tuple[str, str]]:
    """(path, method lower-case) of the operations of ``app``'s document whose
    dependencies include ``call`` at any depth, through routers and their dependencies:
    the operations that need an identity, say, to document what they ask of a caller."""
    return {
        operation
        for operation, dependant in _documented_operations(app.routes).items()
        if _solves(dependant, call)
    }


def _conditional_operations(routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of the operations FastAPI documents for ``routes`` that depend on
    :func:`~optimist.fastapi.conditional`."""
    return {
        operation
        for operation, dependant in _documented_operations(routes).items()
        if _depends_on_conditional(dependant)
    }


def _sections(schema: dict[str, Any], app: FastAPI) -> Iterator[tuple[dict[str, Any], Any]]:
    """Each part of the document that lists operations, with the routes it documents
    (webhooks too, which FastAPI lists by name as it lists paths)."""
    yield schema.get("paths", {}), app.routes
    yield schema.get("webhooks", {}), app.webhooks.routes


def _with_preconditions(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Document the precondition headers of every operation that depends on
    :func:`~optimist.fastapi.conditional`."""
    for operations, routes in _sections(schema, app):
        for path, method in _conditional_operations(routes):
            operation = operations.get(path, {}).get(method)
            if operation is not None:
                _document_preconditions(operation)
    return schema


# pydantic marks FieldInfo final for type checkers; FastAPI's params subclass it, and so
# does this marker, which FastAPI treats as the Header it is.
class _RequiredHeader(params.Header):  # type: ignore[misc]
    """A header parameter that :func:`document_problems` documents as required."""


def required_header(alias: str, *, description: str | None = None) -> params.Header:
    """A header the endpoint requires and checks itself, for ``Annotated[str | None, ...] = None``.

    FastAPI would answer a missing required header with its own 422 before the endpoint
    runs; declared optional, the header reaches the endpoint (or dependency), which
    answers its absence as it must (a 401 for a missing identity), and
    :func:`document_problems` still documents it as required, so that generated
    clients ask for it.
    """
    return _RequiredHeader(alias=alias, description=description)


def _required_headers(dependant: Dependant) -> set[str]:
    """The names (lower case) of the :func:`required_header` parameters of ``dependant``
    and of its dependencies, at any depth."""
    names = {
        str(field.alias).lower()
        for field in dependant.header_params
        if isinstance(field.field_info, _RequiredHeader)
    }
    for sub in dependant.dependencies:
        names |= _required_headers(sub)
    return names


def _require(parameter: dict[str, Any]) -> None:
    """Mark an optional header parameter required, its schema without ``null``."""
    parameter["required"] = True
    schema = parameter.get("schema", {})
    choices = schema.get("anyOf")
    if isinstance(choices, list):
        kept = [choice for choice in choices if choice != {"type": "null"}]
        if len(kept) == 1 and isinstance(kept[0], dict) and not set(kept[0]) & set(schema):
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept


def _with_required_headers(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Document every :func:`required_header` as required in the operations using it."""
    for operations, routes in _sections(schema, app):
        for (path, method), dependant in _documented_operations(routes).items():
            names = _required_headers(dependant)
            operation = operations.get(path, {}).get(method)
            if not names or operation is None:
                continue
            for parameter in operation.get("parameters", []):
                # RFC 9110 §5.1: field names are case-insensitive.
                if parameter.get("in") == "header" and parameter.get("name", "").lower() in names:
                    _require(parameter)
    return schema


def document_problems(app: FastAPI) -> None:
    """Make ``/openapi.json`` describe errors as problem details (the default 422 too),
    list the precondition headers in every operation that depends on
    :func:`~optimist.fastapi.conditional`, mark each :func:`required_header` required,
    and link each 2xx that declares ETag (:func:`representation_responses`) to the
    conditional PUT, PATCH and DELETE of its resource.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = _with_required_headers(_with_preconditions(build(), app), app)
            schema = add_links(schema, _conditional_operations(app.routes))
            app.openapi_schema = _with_problems(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""FastAPI integration: the precondition dependency, a route class that keeps RFC 9110
§13.2.1's precedence, problem+json for validation errors, and the OpenAPI declarations.

FastAPI solves a route's dependencies *before* it validates the body, and JSON-decodes
the body before both. So:

* :func:`conditional` only parses: the policy (400/428) applies when the route calls
  :meth:`~optimist.starlette.ConditionalRequest.write_condition` or ``evaluate``, after
  the body was validated, so an invalid body with a missing If-Match is a 422;
* identity (401/403) and existence (404) belong in dependencies, which run first; and
  :class:`PrecedenceRoute` makes an unparsable body wait for them too.

GET routes do not answer HEAD in FastAPI (fastapi/fastapi#1773):
``app.add_middleware(HeadMiddleware)`` makes them.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from http import HTTPStatus
from types import FunctionType
from typing import Any, Final, Literal

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.etag import Comparison
from optimist.policy import PreconditionPolicy
from optimist.problem import InvalidParam, Problem
from optimist.starlette import (
    ConditionalProfile,
    ConditionalRequest,
    FailedDetail,
    _http_exception,
    problem_response,
)
from optimist.starlette import (
    install_problem_handlers as install_starlette_handlers,
)

__all__ = [
    "HeadMiddleware",
    "InvalidParameter",
    "PrecedenceRoute",
    "ProblemDetails",
    "conditional",
    "document_problems",
    "install_problem_handlers",
    "problem_responses",
]

_SCHEMAS: Final = "#/components/schemas/"
_MAX_PARAMS: Final = 50  # a hostile body can fail validation a million times; say so once
_MAX_NAME: Final = 200


# -- the precondition dependency -------------------------------------------------------


#: The dependencies :func:`conditional` made, for :func:`document_problems` to recognise.
_DEPENDENCIES: Final[weakref.WeakSet[Callable[..., Any]]] = weakref.WeakSet()


def conditional(
    policy: PreconditionPolicy | None = None,
    *,
    comparison: Comparison = Comparison.STRONG,
    allow_bare: bool = False,
    failed_detail: str | FailedDetail | None = None,
    failed_extensions: Mapping[str, Any] | None = None,
) -> Callable[..., Awaitable[ConditionalRequest]]:
    """A dependency giving the route its :class:`~optimist.starlette.ConditionalRequest`.

    It parses and never raises; see :class:`~optimist.starlette.ConditionalProfile` for
    the arguments. :func:`document_problems` (which :func:`install_problem_handlers`
    calls) lists the four precondition headers in the OpenAPI of every operation that
    depends on it.
    """
    profile = ConditionalProfile(
        policy or PreconditionPolicy(),
        comparison,
        allow_bare,
        failed_detail,
        dict(failed_extensions or {}),
    )

    # Only the request: FastAPI would parse and validate a Header parameter on every
    # request, and bind reads the fields anyway, list fields joined across lines
    # (RFC 9110 §5.3). document_problems documents them.
    async def preconditions(request: Request) -> ConditionalRequest:
        return profile.bind(request)

    _DEPENDENCIES.add(preconditions)
    return preconditions


# -- HEAD for GET routes ---------------------------------------------------------------


def _no_body(receive: Receive) -> Receive:
    """A receive that gives an empty request body once, then defers to ``receive``."""
    given = False

    async def empty() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return empty


class HeadMiddleware:
    """Answer HEAD wherever GET is answered: GET's status and headers, no body.

    RFC 9110 §9.3.2: HEAD is GET without the content. FastAPI routes declare GET only
    (fastapi/fastapi#1773); a HEAD that the app answers 405 with ``Allow: GET`` is
    replayed as GET. Routes that declare HEAD themselves keep it. Since HEAD is then
    served wherever GET is, a 405's ``Allow`` that lists GET lists HEAD too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allowing_head(send))
            return
        original = dict(scope)
        replay = False

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        async def first(message: Message) -> None:
            nonlocal replay
            if message["type"] == "http.response.start":
                allow = Headers(raw=message["headers"]).get("allow", "")
                methods = {method.strip().upper() for method in allow.split(",")}
                replay = message["status"] == 405 and "GET" in methods
            if not replay:
                await headers_only(message)

        await self.app(scope, receive, first)
        if replay:
            await self.app({**original, "method": "GET"}, _no_body(receive), headers_only)


def _allowing_head(send: Send) -> Send:
    async def allowing(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = MutableHeaders(scope=message)
            methods = {method.strip().upper() for method in headers.get("allow", "").split(",")}
            if "GET" in methods and "HEAD" not in methods:
                headers["Allow"] = ", ".join(sorted((methods - {""}) | {"HEAD"}))
        await send(message)

    return allowing


# -- precedence of an unparsable body --------------------------------------------------


def _unparsable_body(error: Exception) -> bool:
    """Whether FastAPI raised ``error`` because the body is not JSON at all."""
    if isinstance(error, RequestValidationError):
        errors = error.errors()
        return bool(errors) and all(e.get("type") == "json_invalid" for e in errors)
    # FastAPI answers a body it cannot decode (not UTF-8, nested too deeply, an integer
    # too long) with HTTPException(400) raised from the parser's error.
    return (
        isinstance(error, HTTPException)
        and error.status_code == 400
        and isinstance(error.__cause__, ValueError | RecursionError)
    )


class PrecedenceRoute(APIRoute):
    """An APIRoute that decides an unparsable body after the route's dependencies.

    FastAPI decodes the JSON body before it solves dependencies, so malformed JSON would
    answer 422 before an identity dependency's 401 or a lookup's 404, against RFC 9110
    §13.2.1's order. When the required body cannot be decoded, this route first solves
    the dependencies on an empty body (which cannot reach the endpoint: the body is
    required), letting them raise, and then raises the decoding error. Use it with
    ``APIRouter(route_class=PrecedenceRoute)``.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        if field is None or not field.field_info.is_required():
            return handler

        async def ordered(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as error:
                if not _unparsable_body(error):
                    raise
                # A RequestValidationError here is the missing body: the dependencies passed.
                with contextlib.suppress(RequestValidationError):
                    await handler(Request(request.scope, _no_body(request.receive)))
                raise error from error.__cause__

        return ordered


# -- problem handlers ------------------------------------------------------------------


def _preview(text: str) -> str:
    return text if len(text) <= _MAX_NAME else text[:_MAX_NAME] + "…"


def _invalid_param(error: Mapping[str, Any]) -> InvalidParam:
    location: Sequence[Any] = error.get("loc", ())
    if error.get("type") == "json_invalid":
        position = location[1] if len(location) > 1 else "?"
        cause = error.get("ctx", {}).get("error", "invalid JSON")
        return InvalidParam("body", f"malformed JSON at position {position}: {cause}")
    name = ".".join(str(part) for part in location) or "request"
    return InvalidParam(_preview(name), _preview(str(error.get("msg", "invalid"))))


def _body_reason(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "JSON nested too deeply"
    return "could not be parsed"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    params = tuple(_invalid_param(error) for error in errors[:_MAX_PARAMS])
    shown = "; ".join(f"{param.name}: {param.reason}" for param in params[:5])
    more = len(errors) - min(len(errors), 5)
    detail = f"The request is invalid: {shown}" + (f" (and {more} more)" if more else "")
    return problem_response(Problem(422, detail, invalid_params=params))


async def _fastapi_http_exception(request: Request, exc: Exception) -> Response:
    if _unparsable_body(exc):
        # A body that is not JSON is a malformed body like any other: 422, as SPEC §1 says.
        reason = _body_reason(exc.__cause__)
        detail = f"The request body could not be parsed: {reason}"
        return problem_response(
            Problem(422, detail, invalid_params=(InvalidParam("body", reason),))
        )
    return await _http_exception(request, exc)


def install_problem_handlers(app: FastAPI, *, openapi: bool = True) -> None:
    """Answer every error as problem+json, validation errors included (422 with
    ``invalid_params``), and, unless ``openapi=False``, document that (:func:`document_problems`).
    """
    install_starlette_handlers(app)
    app.add_exception_handler(HTTPException, _fastapi_http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if openapi:
        document_problems(app)


# -- OpenAPI ---------------------------------------------------------------------------


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

    Needs :func:`document_problems` (done by :func:`install_problem_handlers`) to put
    the ProblemDetails schema into the document.
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


#: The fields :func:`conditional` reads, as the OpenAPI parameters of its operations.
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


def _depends_on_conditional(dependant: Dependant) -> bool:
    # Only a function can be one of ours; another callable may not even be hashable.
    return any(
        (isinstance(sub.call, FunctionType) and sub.call in _DEPENDENCIES)
        or _depends_on_conditional(sub)
        for sub in dependant.dependencies
    )


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
    :func:`conditional`; of two routes with the same path and method, the later one counts.
    """
    uses: dict[tuple[str, str], bool] = {}
    for route in _documented_routes(routes):
        if route.include_in_schema:
            conditional = _depends_on_conditional(route.dependant)
            for method in route.methods or ():
                uses[route.path_format, method.lower()] = conditional
    return {operation for operation, conditional in uses.items() if conditional}


def _with_preconditions(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Document the precondition headers of every operation that depends on :func:`conditional`
    (webhooks too, which FastAPI lists by path as well).
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
    list the precondition headers in every operation that depends on :func:`conditional`.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(_with_preconditions(build(), app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

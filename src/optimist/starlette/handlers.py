"""Exception handlers that answer every error of an application as problem details.

:func:`install_problem_handlers` turns every :class:`~optimist.errors.OptimistError`,
every ``HTTPException`` (404 unknown route, 405 with ``Allow``) and every unexpected
exception (a generic 500 that leaks nothing) into ``application/problem+json``, and
gives the application the default caching policy (:mod:`~optimist.starlette.caching`)
unless it has one.
:func:`http_error_response` is the ``HTTPException`` half, for a framework on top of
Starlette whose own handler answers some of them differently (``optimist.fastapi``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Host, Match, Mount

from optimist.errors import OptimistError
from optimist.httpdate import http_date
from optimist.problem import Problem
from optimist.starlette._fields import allow_field, allowed_methods
from optimist.starlette.caching import caching_installed, install_caching
from optimist.starlette.responses import INTERNAL_DETAIL, error_response, problem_response

__all__ = ["http_error_response", "install_problem_handlers"]

#: Every method a 405's ``Allow`` may name besides the ones the router said.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _allow(request: HTTPConnection, sent: str) -> str:
    """Every method some route serves at the request's path (RFC 9110 §15.5.6: MUST).

    The router names the methods of the first route whose path matched only; FastAPI
    makes each method a route of its own, so every route is asked.
    """
    allowed = allowed_methods(sent)
    routes = getattr(getattr(request.scope.get("app"), "router", None), "routes", [])
    # A mount matches its prefix whatever the method: it cannot tell.
    routes = [route for route in routes if not isinstance(route, Mount | Host)]
    path = request.scope["path"]
    probe = {"type": "http", "path": path, "root_path": request.scope.get("root_path", "")}
    for method in _METHODS:
        if any(r.matches({**probe, "method": method})[0] is Match.FULL for r in routes):
            allowed.add(method)
    return allow_field(allowed)


def http_error_response(error: HTTPException, request: HTTPConnection) -> Response:
    """The response for an ``HTTPException``: problem+json, but for a status that has no
    content (1xx, 204, 304); a 405 lists every allowed method; a 5xx leaks nothing.

    A string detail is the problem's detail; any other (FastAPI allows any JSON) becomes
    the ``details`` member beside the status phrase.
    """
    status, headers = error.status_code, dict(error.headers or {})
    if status == 405:
        headers["Allow"] = _allow(request, headers.pop("Allow", headers.pop("allow", "")))
    if status < 200 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    if status >= 500:
        return problem_response(Problem(status, INTERNAL_DETAIL), headers)
    detail: Any = error.detail
    extensions: dict[str, Any] = {}
    if not isinstance(detail, str):  # FastAPI allows any JSON-able detail
        detail, extensions = _phrase(status), {"details": detail}
    if status == 404 and detail == _phrase(404):
        detail = "No resource matches the request's path."
    elif status == 405 and detail == _phrase(405):
        method = request.scope.get("method", "This method")
        detail = f"{method} is not allowed here; allowed: {headers['Allow']}."
    return problem_response(Problem(status, detail, extensions=extensions), headers)


async def _optimist_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OptimistError)
    return error_response(exc, request)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error_response(exc, request)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette sends this one from outside every middleware, the caching policy's too:
    # RFC 9110 §6.6.1 lets a 5xx go without Date, but a clock is at hand.
    return problem_response(Problem(500, INTERNAL_DETAIL), {"Date": http_date(datetime.now(UTC))})


def install_problem_handlers(app: Starlette) -> None:
    """Answer library errors, HTTP exceptions and anything unexpected as problem+json;
    install the default :class:`~optimist.starlette.CachingPolicy` unless
    :func:`~optimist.starlette.install_caching` gave ``app`` one already."""
    app.add_exception_handler(OptimistError, _optimist_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _internal_error)
    if not caching_installed(app):
        install_caching(app)

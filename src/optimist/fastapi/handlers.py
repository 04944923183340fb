"""Problem details for every error of a FastAPI app, FastAPI's own refusals included.

On top of :func:`optimist.starlette.install_problem_handlers`, a RequestValidationError
is a 422 whose ``invalid_params`` name each invalid input by its location
(``body.name``, ``query.limit``), and a body FastAPI cannot even decode (not UTF-8,
nested too deeply) is a 422 as well, as SPEC §1 has every malformed body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from optimist.fastapi._body import undecodable
from optimist.fastapi.openapi import document_problems
from optimist.problem import InvalidParam, Problem, shorten
from optimist.starlette import http_error_response, problem_response
from optimist.starlette import install_problem_handlers as install_starlette_handlers

__all__ = ["install_problem_handlers"]

_MAX_PARAMS: Final = 50  # a hostile body can fail validation a million times; say so once
_SHOWN_PARAMS: Final = 5  # the invalid inputs the detail names
_MAX_NAME: Final = 200  # characters of a location or message repeated


def _invalid_param(error: Mapping[str, Any]) -> InvalidParam:
    location: Sequence[Any] = error.get("loc", ())
    if error.get("type") == "json_invalid":
        position = location[1] if len(location) > 1 else "?"
        cause = error.get("ctx", {}).get("error", "invalid JSON")
        return InvalidParam("body", f"malformed JSON at position {position}: {cause}")
    name = ".".join(str(part) for part in location) or "request"
    reason = str(error.get("msg", "invalid"))
    return InvalidParam(shorten(name, _MAX_NAME), shorten(reason, _MAX_NAME))


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
    shown = "; ".join(f"{param.name}: {param.reason}" for param in params[:_SHOWN_PARAMS])
    more = len(errors) - min(len(errors), _SHOWN_PARAMS)
    detail = f"The request is invalid: {shown}" + (f" (and {more} more)" if more else "")
    return problem_response(Problem(422, detail, invalid_params=params))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if undecodable(exc):
        # A body that is not JSON is a malformed body like any other: 422, as SPEC §1 says.
        reason = _body_reason(exc.__cause__)
        detail = f"The request body could not be parsed: {reason}"
        return problem_response(
            Problem(422, detail, invalid_params=(InvalidParam("body", reason),))
        )
    return http_error_response(exc, request)


def install_problem_handlers(app: FastAPI, *, openapi: bool = True) -> None:
    """Answer every error as problem+json, validation errors included (422 with
    ``invalid_params``), and, unless ``openapi=False``, document that (:func:`document_problems`).
    """
    install_starlette_handlers(app)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if openapi:
        document_problems(app)

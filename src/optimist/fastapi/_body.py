"""Request bodies as FastAPI sees them: an empty one to replay a request with, and
whether FastAPI refused a body because it could not even decode it."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

__all__ = ["empty_body", "undecodable"]


def empty_body(receive: Receive) -> Receive:
    """A receive that gives an empty request body once, then defers to ``receive``."""
    given = False

    async def empty() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return empty


def undecodable(error: Exception) -> bool:
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

"""Request and response bodies of the service's APIs: read within bounds, validated by
pydantic into problems, and timestamps written one way.

The admin and test-sessions endpoints read their bodies themselves instead of
declaring them to FastAPI, for one reason: RFC 9110 §13.2.1 wants a missing resource
(404) decided before a malformed body (422), and a FastAPI body is validated before
the endpoint runs, which would take a read of the row before every write. Read here, a
body that fails is answered only after the endpoint has asked whether the resource
exists, and a body that passes goes straight into the one conditional write.

A body is at most :data:`MAX_BODY` bytes (413), of a JSON media type (415), and valid
for its model (422 with ``invalid_params`` named ``body.<member>``, like FastAPI's).
The models are strict (no coercion of ``"5"`` to 5) and refuse unknown members.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "JSON_TYPES",
    "MAX_BODY",
    "MERGE_PATCH",
    "Strict",
    "no_controls",
    "openapi_body",
    "read_json",
    "timestamp",
    "validated",
]

#: The largest body a write reads (the largest valid body is a few KB).
MAX_BODY: Final = 64 * 1024
#: RFC 7396 §4: the media type of a JSON merge patch.
MERGE_PATCH: Final = "application/merge-patch+json"
#: The media types a write accepts (PATCH advertises them in Accept-Patch).
JSON_TYPES: Final = ("application/json", MERGE_PATCH)

# C0 controls and DEL, except tab, line feed and carriage return.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of the admin bodies: no unknown members, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def no_controls(value: str) -> str:
    """Refuse control characters other than tab and line breaks (PostgreSQL cannot even
    store NUL)."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _json_media_type(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    # RFC 6839 §3.1: any +json structured syntax suffix is JSON too.
    return media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_json(request: Request) -> bytes:
    """The raw body of a JSON request, or a 415 (not JSON) or 413 (too large) problem.

    A request without Content-Type is read as JSON, as FastAPI does.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and not _json_media_type(content_type):
        # RFC 5789 §2.2: a 415 to a PATCH says which patch formats are accepted.
        headers = {"Accept-Patch": ", ".join(JSON_TYPES)} if request.method == "PATCH" else None
        raise HTTPException(
            415, f"The body must be JSON ({', '.join(JSON_TYPES)}).", headers=headers
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"The request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _body_error(error: Any) -> dict[str, Any]:
    """A pydantic error as FastAPI reports a body's: located under ``body``."""
    location = ("body", *error.get("loc", ()))
    if error.get("type") == "json_invalid":
        # pydantic's message already says where ("... at line 1 column 17").
        return {"type": "value_error", "loc": location, "msg": error.get("msg", "invalid JSON")}
    return {"type": error.get("type"), "loc": location, "msg": error.get("msg", "invalid")}


def validated(model: type[M], raw: bytes) -> M:
    """``raw`` parsed and validated as ``model``, or a RequestValidationError (422).

    pydantic's own JSON parser refuses what would break later: invalid UTF-8, lone
    surrogates, numbers out of range, nesting deeper than its recursion limit.
    """
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([_body_error(e) for e in problems]) from None


def openapi_body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """The ``openapi_extra`` that documents ``model`` as the required request body."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": schema} for media_type in media_types},
        }
    }


def timestamp(moment: datetime) -> str:
    """A time as every API of the service shows it: RFC 3339 in UTC with ``Z``, like
    seed 002's ``"2025-01-15T10:30:00Z"``, to the microsecond, so that every write
    visibly moves ``updated_at``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

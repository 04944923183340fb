"""Request and response bodies of the service's APIs: read within bounds, validated by
pydantic into problems, and timestamps written one way.

Every body is read by :func:`read_json`: at most a limit of bytes (413), of a JSON
media type (415). It is then validated one of two ways, because the models differ:

* the admin and test-sessions models are :class:`Strict` (no coercion of ``"5"`` to 5,
  no unknown members), which holds only when pydantic validates the JSON text itself:
  FastAPI validates a declared body after decoding it to Python objects, where strict
  mode refuses a UUID sent as a string. So their endpoints call :func:`read_body`
  (pydantic's JSON parser: 422 with ``invalid_params`` named ``body.<member>``, like
  FastAPI's, malformed JSON located by line and column), and :func:`openapi_body`
  documents the body;
* the projects models are lax and declared to FastAPI, which decodes them with
  Python's ``json`` (its 422 wording; a byte order mark accepted, and NaN decoded for
  the models to refuse) and documents
  them as component schemas; the projects route class reads the body with
  :func:`read_json` and hands the bytes on. The projects API also reads a larger body,
  and curl's label for ``-d`` (seed 003's steps), through :func:`read_json`'s keywords.

Either way RFC 9110 §13.2.1 wants a missing resource (404) decided before a refused
body (413, 415, 422), and the endpoint's one conditional write is what finds out
whether the resource exists: :func:`missing_first` looks it up only when the body is
refused, so a body that passes goes straight into the write.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException

__all__ = [
    "JSON_TYPES",
    "MAX_BODY",
    "MERGE_PATCH",
    "Line",
    "Prose",
    "Strict",
    "openapi_body",
    "read_body",
    "read_json",
    "text",
    "timestamp",
]

#: The largest body a write reads (the largest valid body is a few KB).
MAX_BODY: Final = 64 * 1024
#: RFC 7396 §4: the media type of a JSON merge patch.
MERGE_PATCH: Final = "application/merge-patch+json"
#: The media types a write accepts (PATCH advertises them in Accept-Patch).
JSON_TYPES: Final = ("application/json", MERGE_PATCH)

# What curl labels a body sent with -d and no -H.
_CURL_FORM: Final = "application/x-www-form-urlencoded"

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of the admin bodies: no unknown members, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def text(*, multiline: bool) -> Callable[[str], str]:
    """A validator refusing in a string what no column stores faithfully and no client
    expects: lone surrogates (not Unicode text; PostgreSQL cannot store them), and every
    control character (Unicode category Cc: C0, DEL and C1; NUL included, which
    PostgreSQL cannot store either) except, in ``multiline`` text, tab and line breaks.
    One rule for every string member of every API, nested ones included."""
    allowed = "\t\n\r" if multiline else ""

    def check(value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate, which is not Unicode text") from None
        for character in value:
            if unicodedata.category(character) == "Cc" and character not in allowed:
                raise ValueError(f"contains the control character U+{ord(character):04X}")
        return value

    return check


#: A single-line string member: names, keys, emails.
Line = AfterValidator(text(multiline=False))
#: A multi-line string member: notes, descriptions.
Prose = AfterValidator(text(multiline=True))


def _json_media_type(content_type: str | None, *, curl: bool) -> bool:
    if content_type is None:
        return True  # as FastAPI reads an unlabelled body
    media_type = content_type.partition(";")[0].strip().lower()
    if curl and media_type in ("", _CURL_FORM):
        return True
    # RFC 6839 §3.1: any +json structured syntax suffix is JSON too.
    return media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_json(
    request: Request,
    *,
    limit: int = MAX_BODY,
    named: tuple[str, ...] = JSON_TYPES,
    curl: bool = False,
) -> bytes:
    """The raw body of a JSON request, or a 413 (larger than ``limit`` bytes, declared or
    sent) or 415 (not JSON, saying so with the media types ``named``) problem.

    A request without Content-Type is read as JSON, as FastAPI does. With ``curl``, so
    is one labelled ``application/x-www-form-urlencoded`` or with an empty label: seed
    003's steps send JSON with ``curl -d`` and no ``-H``, which curl labels so.
    """
    too_large = HTTPException(413, f"The request body is larger than {limit} bytes.")
    # A body declared too large is refused before anything else is asked of it.
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    if not _json_media_type(request.headers.get("content-type"), curl=curl):
        # RFC 5789 §2.2: a 415 to a PATCH says which patch formats are accepted.
        headers = {"Accept-Patch": ", ".join(named)} if request.method == "PATCH" else None
        raise HTTPException(415, f"The body must be JSON ({', '.join(named)}).", headers=headers)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _body_error(error: Any) -> dict[str, Any]:
    """A pydantic error as FastAPI reports a body's: located under ``body``."""
    location = ("body", *error.get("loc", ()))
    if error.get("type") == "json_invalid":
        # pydantic's message already says where ("... at line 1 column 17").
        return {"type": "value_error", "loc": location, "msg": error.get("msg", "invalid JSON")}
    return {"type": error.get("type"), "loc": location, "msg": error.get("msg", "invalid")}


async def read_body(request: Request, model: type[M]) -> M:
    """The request's body (:func:`read_json`) parsed and validated as ``model`` by
    pydantic, or a RequestValidationError (422).

    pydantic's own JSON parser refuses what would break later: invalid UTF-8, lone
    surrogates, numbers out of range, nesting deeper than its recursion limit.
    """
    raw = await read_json(request)
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

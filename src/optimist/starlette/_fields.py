"""The header fields the integration reads and writes, one helper for each.

A request's precondition fields are found in one pass over its raw field lines
(:func:`precondition_lines`) and read the way RFC 9110 reads each kind: a list field's
lines are one list (:func:`joined`), a date sent twice is no date (:func:`single`). The
``Allow`` field is read and written here only (:func:`allowed_methods`,
:func:`allow_field`): the 405 handler and ``optimist.fastapi``'s HEAD support agree on
it. A response's validators are set by :func:`set_etag`, which
:meth:`~optimist.starlette.ConditionalRequest.evaluate` calls too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from starlette.datastructures import Headers
from starlette.responses import Response

from optimist.etag import EntityTag
from optimist.httpdate import http_date

__all__ = [
    "NOT_MODIFIED_FIELDS",
    "allow_field",
    "allowed_methods",
    "joined",
    "precondition_lines",
    "set_etag",
    "single",
]

#: The fields a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5); ETag is
#: set from the resource, and other representation metadata is left out.
NOT_MODIFIED_FIELDS: Final = ("Cache-Control", "Content-Location", "Date", "Expires", "Vary")

_PRECONDITIONS: Final = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since"}
)


def precondition_lines(headers: Headers) -> dict[bytes, list[str]]:
    """The precondition field lines of a request by (lower-case) name, in one pass."""
    lines: dict[bytes, list[str]] = {}
    for name, value in headers.raw:
        if name in _PRECONDITIONS:
            lines.setdefault(name, []).append(value.decode("latin-1"))
    return lines


def joined(lines: Mapping[bytes, list[str]], name: bytes) -> str | None:
    """A list-based field's value: its lines as one list, or None if it was not sent."""
    # RFC 9110 §5.3: several field lines of a list-based field are one comma-joined list.
    values = lines.get(name)
    return ", ".join(values) if values else None


def single(lines: Mapping[bytes, list[str]], name: bytes) -> str | None:
    """A singleton field's value, or None if it was sent on no line or on several."""
    # A date sent twice is not an HTTP-date; RFC 9110 §13.1.3/§13.1.4: ignore it.
    values = lines.get(name)
    return values[0] if values is not None and len(values) == 1 else None


def allowed_methods(allow: str) -> set[str]:
    """The methods an ``Allow`` field value lists (RFC 9110 §10.2.1), upper-cased."""
    return {method.strip().upper() for method in allow.split(",") if method.strip()}


def allow_field(methods: Iterable[str]) -> str:
    """The ``Allow`` field value listing ``methods``, in one order whoever writes it."""
    return ", ".join(sorted(set(methods)))


def set_etag(response: Response, tag: EntityTag, *, last_modified: datetime | None = None) -> None:
    """Set the ETag (and Last-Modified, as an IMF-fixdate) of ``response``."""
    response.headers["ETag"] = str(tag)
    if last_modified is not None:
        response.headers["Last-Modified"] = http_date(last_modified)

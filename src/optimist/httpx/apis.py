"""The adapter seam: how one HTTP API shapes its documents, pages, writes and credentials.

The client's flows know HTTP (preconditions, retries, merging); an :class:`Api` knows
the rest, so adapting another API is one small class:

* :meth:`Api.document` finds the document in a response body (an envelope unwrapped);
* :meth:`Api.writable` drops the members the server owns from what the client writes
  back (ids, timestamps, a body ``etag``);
* :meth:`Api.page` reads one page of a cursor-paginated list;
* ``write`` says how an update is sent (PATCH with a merge patch, PUT of the document…);
* ``auth`` adds identity and CSRF headers, as an :class:`httpx.Auth` flow, so that it
  works for the sync and the async client alike.

:class:`JsonApi` is the plain implementation, configured by data: the members the
server owns, the member a page keeps its items in, how an update is written. An API
that wraps its bodies in an envelope subclasses it, unwraps the envelope in
:meth:`~JsonApi.document` and :meth:`~JsonApi.page`, and hands the inside to
:class:`JsonApi`'s own methods.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from optimist.httpx.outcomes import Page
from optimist.merge import JSON

__all__ = [
    "MERGE_PATCH",
    "PUT",
    "PUT_CHANGES",
    "Api",
    "Body",
    "JsonApi",
    "Write",
]


class Body(enum.Enum):
    """What the body of an update holds."""

    #: The changes from the server's current document to ours, as a JSON Merge Patch
    #: (RFC 7396): only what differs.
    CHANGES = "changes"
    #: The top-level members that differ, each with its whole new value (null for one
    #: we removed): for an API whose write replaces each member it is given.
    MEMBERS = "members"
    #: Our whole document, without the members the server owns.
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class Write:
    """How an update is sent: the method, what the body holds, and its media type."""

    method: str
    body: Body
    content_type: str = "application/json"


#: ``PATCH`` with a merge patch (RFC 7396 §4 registers the media type).
MERGE_PATCH = Write("PATCH", Body.CHANGES, "application/merge-patch+json")
#: ``PUT`` of the whole document (RFC 9110 §9.3.4).
PUT = Write("PUT", Body.DOCUMENT)
#: ``PUT`` of the changed members only, for APIs whose PUT replaces the fields given.
PUT_CHANGES = Write("PUT", Body.MEMBERS)


class Api(Protocol):
    """What the client needs to know about an API beyond HTTP."""

    @property
    def write(self) -> Write:
        """How ``update`` sends a change unless the call says otherwise."""
        ...

    @property
    def cursor_param(self) -> str:
        """The query parameter that carries a page cursor."""
        ...

    @property
    def auth(self) -> httpx.Auth | None:
        """Credentials added to every request; None leaves the httpx client's own."""
        ...

    def document(self, body: JSON) -> JSON:
        """The document in a response body (raise KeyError or TypeError if there is none)."""
        ...

    def writable(self, document: JSON) -> JSON:
        """``document`` without the members the server owns, as the client writes it."""
        ...

    def page(self, body: JSON) -> Page:
        """One page of a list from a response body."""
        ...


def _cursor(value: object) -> str | None:
    # An empty cursor ends the list as surely as null does.
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"a cursor is a string, not {type(value).__name__}")
    return value


def _items(value: object) -> tuple[JSON, ...]:
    if not isinstance(value, list):
        raise TypeError(f"page items are a list, not {type(value).__name__}")
    return tuple(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonApi:
    """A plain JSON API: bare documents, ``{"data": [...], "next_cursor": ...}`` pages.

    ``server_owned`` names the members :meth:`writable` drops, ``items_member`` the
    member of a page body that holds its items; a null or empty ``next_cursor`` (or
    none) marks the last page.
    """

    write: Write = MERGE_PATCH
    server_owned: frozenset[str] = frozenset()
    cursor_param: str = "cursor"
    items_member: str = "data"
    auth: httpx.Auth | None = None

    def document(self, body: JSON) -> JSON:
        return body

    def writable(self, document: JSON) -> JSON:
        if not isinstance(document, Mapping):
            return document
        return {key: value for key, value in document.items() if key not in self.server_owned}

    def page(self, body: JSON) -> Page:
        return Page(_items(body[self.items_member]), _cursor(body.get("next_cursor")))

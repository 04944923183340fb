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

:class:`JsonApi` is the plain implementation; the reference service's three APIs
(SPEC §4) are :class:`AdminApi`, :class:`ProjectsApi` and :class:`SessionsApi`.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from optimist.httpx.outcomes import Page
from optimist.merge import JSON

__all__ = [
    "MERGE_PATCH",
    "PUT",
    "PUT_CHANGES",
    "AdminApi",
    "AdminAuth",
    "Api",
    "Body",
    "JsonApi",
    "ProjectsApi",
    "SessionsApi",
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
    """A plain JSON API: bare documents, ``{"data": [...], "next_cursor": ...}`` pages."""

    write: Write = MERGE_PATCH
    server_owned: frozenset[str] = frozenset()
    cursor_param: str = "cursor"
    auth: httpx.Auth | None = None

    def document(self, body: JSON) -> JSON:
        return body

    def writable(self, document: JSON) -> JSON:
        if not isinstance(document, Mapping):
            return document
        return {key: value for key, value in document.items() if key not in self.server_owned}

    def page(self, body: JSON) -> Page:
        return Page(_items(body["data"]), _cursor(body.get("next_cursor")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectsApi(JsonApi):
    """The projects API (SPEC §4.2, seed 003): ``{"result": ...}`` envelopes, a PUT that
    updates the fields it is given, and a bare ``etag`` member the server owns."""

    write: Write = PUT_CHANGES
    server_owned: frozenset[str] = frozenset({"project_id", "created_at", "updated_at", "etag"})

    def document(self, body: JSON) -> JSON:
        return body["result"]

    def page(self, body: JSON) -> Page:
        result = body["result"]
        return Page(_items(result["items"]), _cursor(result.get("next_cursor")))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionsApi(JsonApi):
    """The test-sessions API (SPEC §4.3, seed 000).

    Its ETag encodes the session's vector clock; sending it back as If-Match is all a
    client does, so only the server-owned members differ from :class:`JsonApi`.
    """

    server_owned: frozenset[str] = frozenset({"id", "created_at", "updated_at", "vector_clock"})


class AdminAuth(httpx.Auth):
    """The admin API's credentials (SPEC §4.1, seed 002): identity headers on every
    request, and on unsafe methods a CSRF token from ``csrf_path``, fetched when first
    needed and fetched again once when a write is refused with 403 (expired token)."""

    requires_response_body = True
    _UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, tenant: str, role: str, csrf_path: str = "/admin/csrf-token") -> None:
        self.identity = {"X-Tenant-Id": tenant, "X-User-Role": role}
        self.csrf_path = csrf_path
        # Shared by every request of this identity; two threads refreshing at once
        # merely fetch two valid tokens.
        self._token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.identity)
        if request.method not in self._UNSAFE:
            yield request
            return
        if self._token is None:
            self._token = self._read_token((yield self._token_request(request)))
        self._sign(request)
        response = yield request
        if response.status_code == 403:
            self._token = self._read_token((yield self._token_request(request)))
            if self._token is not None:
                self._sign(request)
                yield request

    def _sign(self, request: httpx.Request) -> None:
        if self._token is not None:
            request.headers["X-CSRF-Token"] = self._token

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request("GET", request.url.join(self.csrf_path), headers=self.identity)

    @staticmethod
    def _read_token(response: httpx.Response) -> str | None:
        if not response.is_success:
            return None
        try:
            token = response.json().get("csrf_token")
        except (ValueError, AttributeError):
            return None
        return token if isinstance(token, str) and token else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminApi(JsonApi):
    """The admin API (SPEC §4.1, seed 002) for one tenant and role: PATCH with a merge
    patch, ``{"data": ...}`` pages, identity and CSRF headers through :class:`AdminAuth`."""

    tenant: str
    role: str
    csrf_path: str = "/admin/csrf-token"
    server_owned: frozenset[str] = frozenset({"id", "key", "created_at", "updated_at"})
    auth: httpx.Auth | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth", AdminAuth(self.tenant, self.role, self.csrf_path))

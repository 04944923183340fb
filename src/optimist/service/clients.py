"""Client adapters for the reference service's three APIs, for :mod:`optimist.httpx`.

Each is an :class:`~optimist.httpx.Api` for :class:`~optimist.httpx.Client` and
:class:`~optimist.httpx.AsyncClient`:

* :class:`ProjectsApi`: the projects API (SPEC §4.2, seed 003);
* :class:`SessionsApi`: the test-sessions API (SPEC §4.3, seed 000);
* :class:`AdminApi`: the admin API (SPEC §4.1, seed 002), whose credentials are
  :class:`AdminAuth`.

::

    from optimist.httpx import Client
    from optimist.service.clients import ProjectsApi

    with Client(httpx.Client(base_url="http://127.0.0.1:8000"), api=ProjectsApi()) as client:
        client.update("/projects/proj_1", {"name": "Main Street Sign"})

They are built from :mod:`optimist.httpx`'s public names only, as any other API's
adapters would be: the library knows nothing of this service.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import httpx

from optimist.httpx import PUT_CHANGES, JsonApi, Page, Write
from optimist.merge import JSON

__all__ = ["AdminApi", "AdminAuth", "ProjectsApi", "SessionsApi"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectsApi(JsonApi):
    """The projects API (SPEC §4.2, seed 003): ``{"result": ...}`` envelopes, a PUT that
    updates the fields it is given, and a bare ``etag`` member the server owns."""

    write: Write = PUT_CHANGES
    server_owned: frozenset[str] = frozenset({"project_id", "created_at", "updated_at", "etag"})
    items_member: str = "items"

    def document(self, body: JSON) -> JSON:
        return body["result"]

    def page(self, body: JSON) -> Page:
        # A list is ``{"result": {"items": [...], "next_cursor": ...}}``. JsonApi is named:
        # a slots dataclass is a new class, so a bare super() would look in the old one.
        return JsonApi.page(self, body["result"])


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

"""The client's logic, written once, as sans-I/O flows.

A flow is a generator that yields what to do next and returns the operation's outcome:

* it yields an :class:`httpx.Request` and is sent back the :class:`httpx.Response`,
  body read, or has the :class:`httpx.TransportError` that lost the request raised
  where it waits;
* it yields a :class:`Sleep` and is sent back None once the time has passed.

:class:`~optimist.httpx.Client` and :class:`~optimist.httpx.AsyncClient` drive the same
flows, one with blocking calls and one with awaits, the way httpx drives an
``Auth.auth_flow``; each hands every reply to :func:`advance`. Everything that decides
(preconditions, retries, resending what transport lost, merging, what a status means)
lives here and is written once.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, cast

import httpx

from optimist.errors import (
    InvalidEntityTag,
    InvalidInput,
    PreconditionFailed,
    PreconditionRequired,
    ResourceExists,
    ResourceNotFound,
    ResponseError,
)
from optimist.etag import EntityTag, parse
from optimist.httpx.apis import Api, Body, Write
from optimist.httpx.backoff import Attempts, Backoff
from optimist.httpx.cache import ETagCache
from optimist.httpx.outcomes import (
    Change,
    Created,
    Exists,
    OnConflict,
    Page,
    Updated,
    Versioned,
)
from optimist.merge import JSON, apply_merge_patch, create_merge_patch, json_equal, merge

__all__ = [
    "TRANSPORT_ATTEMPTS",
    "Context",
    "Flow",
    "Reply",
    "RequestBuilder",
    "Sleep",
    "Step",
    "advance",
    "create",
    "delete",
    "page",
    "read",
    "resendable",
    "update",
]

T = TypeVar("T")

#: How often a request that failed in transport (a reset, a connection the server
#: closed while idle) is sent, if it may be sent again.
TRANSPORT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before going on."""

    seconds: float


#: What a flow yields: a request to send, or a pause.
Step: TypeAlias = httpx.Request | Sleep
#: A flow returning ``T``; it is sent the response to each request, None after a pause.
Flow: TypeAlias = Generator[Step, httpx.Response | None, T]
#: What a driver has for a flow after a step: the response to its request, the
#: transport error that lost the request, or None after a pause.
Reply: TypeAlias = httpx.Response | httpx.TransportError | None


def advance(flow: Flow[T], reply: Reply) -> Step:
    """Resume ``flow`` with ``reply`` and return its next step.

    A transport error is raised inside the flow, where the request was sent, so that
    the flow decides whether to send it again; StopIteration carries the result.
    """
    if isinstance(reply, httpx.TransportError):
        return flow.throw(reply)
    return flow.send(reply)


class RequestBuilder(Protocol):
    """``httpx.Client.build_request`` or ``httpx.AsyncClient.build_request``: builds a
    request with the client's base URL, headers and cookies, without sending it."""

    def __call__(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        json: Any | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What every flow of one client shares."""

    build_request: RequestBuilder
    api: Api
    backoff: Backoff
    cache: ETagCache

    def attempts(self, limit: int) -> Attempts:
        """A fresh attempt budget for one operation."""
        return Attempts(self.backoff, limit)


# -- exchanging and reading responses --------------------------------------------------------

_BUSY = frozenset({429, 503})


def resendable(request: httpx.Request) -> bool:
    """Whether ``request`` may be sent again after a transport failure.

    A safe method may (RFC 9110 §9.2.1), and so may a conditional write: if the first
    copy was applied, the second finds the precondition false and is refused (412),
    which the flows then resolve. An unconditional write may not: it could apply twice.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    return "if-match" in request.headers or "if-none-match" in request.headers


def _exchange(request: httpx.Request) -> Flow[httpx.Response]:
    """Send ``request`` and take its response; send it again, up to
    :data:`TRANSPORT_ATTEMPTS` times in all, when transport lost it and it is
    :func:`resendable`. Otherwise the transport error goes on to the caller."""
    sent = 1
    while True:
        try:
            reply = yield request
        except httpx.TransportError:
            if sent >= TRANSPORT_ATTEMPTS or not resendable(request):
                raise
            sent += 1
        else:
            return cast(httpx.Response, reply)


def _send(request: httpx.Request, attempts: Attempts) -> Flow[httpx.Response]:
    """Send ``request``, sending it again after the wait a busy server asks for."""
    while True:
        response = yield from _exchange(request)
        # RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503): the server is busy and may say,
        # with Retry-After (§10.2.3), when to come back.
        if response.status_code in _BUSY:
            delay = attempts.next_delay(response)
            if delay is not None:
                yield Sleep(delay)
                continue
        return response


def _json(response: httpx.Response) -> JSON:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as error:
        raise _error(response, f"the body is not JSON ({error})") from None


def _problem(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, Mapping) else None


def _error(response: httpx.Response, detail: str | None = None) -> ResponseError:
    request = response.request
    return ResponseError(
        request.method, str(request.url), response.status_code, _problem(response), detail
    )


def _failure(response: httpx.Response) -> Exception:
    """The error a response that ends an operation stands for."""
    request = response.request
    status = response.status_code
    if status == 404:
        return ResourceNotFound("resource", request.url)
    if status == 412:
        return PreconditionFailed(_current_etag(response))
    if status == 428:
        return PreconditionRequired(request.method, "If-Match")
    return _error(response)


def _tag(value: object) -> EntityTag | None:
    if not isinstance(value, str):
        return None
    try:
        # Seed 003 sends its tags unquoted; read them as the strong tags they stand for.
        return parse(value, allow_bare=True)
    except InvalidEntityTag:
        return None


def _etag(response: httpx.Response) -> EntityTag | None:
    return _tag(response.headers.get("ETag"))


def _current_etag(response: httpx.Response) -> EntityTag | None:
    """The current tag a 412 reports: its ETag header (SPEC §2), else ``current_etag``."""
    tag = _etag(response)
    if tag is None:
        problem = _problem(response)
        tag = _tag(problem.get("current_etag")) if problem is not None else None
    return tag


def _document(api: Api, response: httpx.Response) -> JSON:
    body = _json(response)
    try:
        return api.document(body)
    except (KeyError, TypeError, IndexError) as error:
        raise _error(response, f"the body holds no document ({error!r})") from None


def _required_etag(versioned: Versioned, url: object) -> EntityTag:
    if versioned.etag is None:
        raise InvalidInput(
            "ETag", "", f"{url} was served without a usable ETag, so a write cannot be conditional"
        )
    return versioned.etag


# -- operations ------------------------------------------------------------------------------


def read(context: Context, url: httpx.URL | str, attempts: Attempts) -> Flow[Versioned]:
    """GET a document, revalidating the cached one with If-None-Match when there is one."""
    request = context.build_request("GET", url)
    key = str(request.url)
    cached = context.cache.get(key)
    if cached is not None and cached.etag is not None:
        # RFC 9110 §13.1.2: If-None-Match compares weakly, so weak tags revalidate too.
        request.headers["If-None-Match"] = str(cached.etag)
    response = yield from _send(request, attempts)
    # RFC 9110 §15.4.5: 304 says the representation we hold is the selected one.
    if response.status_code == 304 and cached is not None:
        return Versioned(cached.document, _etag(response) or cached.etag)
    if not response.is_success:
        raise _failure(response)
    versioned = Versioned(_document(context.api, response), _etag(response))
    context.cache.put(key, versioned.document, versioned.etag)
    return versioned


def _apply(change: Change, document: JSON) -> JSON:
    if isinstance(change, Mapping):
        return apply_merge_patch(document, change)
    # The change may modify what it is given; it must not modify what we read.
    return change(copy.deepcopy(document))


def _write_body(api: Api, write: Write, theirs: JSON, mine: JSON) -> JSON | None:
    """What to send to turn ``theirs`` into ``mine``, or None when nothing would change."""
    ours, current = api.writable(mine), api.writable(theirs)
    if write.body is Body.CHANGES:
        patch = create_merge_patch(current, ours)
        return None if isinstance(patch, Mapping) and not patch else patch
    if write.body is Body.MEMBERS and isinstance(current, Mapping) and isinstance(ours, Mapping):
        members: dict[str, JSON] = {
            name: value
            for name, value in ours.items()
            if name not in current or not json_equal(current[name], value)
        }
        members.update({name: None for name in current if name not in ours})
        return members or None
    return None if json_equal(current, ours) else ours


def update(
    context: Context,
    url: httpx.URL | str,
    change: Change,
    *,
    write: Write,
    on_conflict: OnConflict,
    max_attempts: int,
) -> Flow[Updated]:
    """Read, change, write with If-Match; on 412 refetch, merge (or reapply) and retry."""
    attempts = context.attempts(max_attempts)
    current = yield from read(context, url, attempts)
    mine = _apply(change, current.document)
    writes = 0
    while True:
        body = _write_body(context.api, write, current.document, mine)
        if body is None:
            return Updated(current.document, current.etag, writes)
        etag = _required_etag(current, url)
        request = context.build_request(
            write.method,
            url,
            json=body,
            # RFC 9110 §13.1.1: apply the write only to the version it was computed from.
            headers={"If-Match": str(etag), "Content-Type": write.content_type},
        )
        writes += 1
        response = yield from _send(request, attempts)
        key = str(request.url)
        if response.is_success:
            return _written(context, key, response, mine, writes)
        if response.status_code != 412:
            raise _failure(response)
        # RFC 9110 §15.5.13: the resource changed since we read it (or the tag we sent
        # can never match); the 412's body is a problem, not the document.
        reported = _current_etag(response)
        if reported == etag:
            raise PreconditionFailed(reported, f"{key} refuses the ETag it serves: {etag}")
        delay = attempts.next_delay(response)
        if delay is None:
            raise PreconditionFailed(
                reported, f"{key} kept changing: gave up after {writes} conditional writes"
            )
        yield Sleep(delay)
        theirs = yield from read(context, url, attempts)
        if theirs.etag == etag:
            raise PreconditionFailed(theirs.etag, f"{key} refuses the ETag it serves: {etag}")
        if on_conflict is OnConflict.MERGE:
            mine = merge(current.document, theirs.document, mine)
        else:
            mine = _apply(change, theirs.document)
        current = theirs


def _written(
    context: Context, key: str, response: httpx.Response, sent: JSON, writes: int
) -> Updated:
    etag = _etag(response)
    try:
        document = context.api.document(response.json())
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
        # The write happened; an answer without the document (204, or a bare status
        # body) must not turn it into a failure. What we sent is what was written.
        context.cache.discard(key)
        return Updated(sent, etag, writes)
    context.cache.put(key, document, etag)
    return Updated(document, etag, writes)


def create(
    context: Context, url: httpx.URL | str, document: JSON, *, method: str, max_attempts: int
) -> Flow[Created | Exists]:
    """Create only if absent: ``If-None-Match: *`` (RFC 9110 §13.1.2)."""
    request = context.build_request(method, url, json=document, headers={"If-None-Match": "*"})
    response = yield from _send(request, context.attempts(max_attempts))
    if response.is_success:
        location = response.headers.get("Location")
        try:
            created = context.api.document(response.json())
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
            created = document
        return Created(
            created,
            _etag(response),
            None if location is None else str(request.url.join(location)),
        )
    # RFC 9110 §13.1.2: "*" is false when a current representation exists.
    if response.status_code == 412:
        return Exists(_current_etag(response))
    if response.status_code == 409:
        raise ResourceExists("resource", request.url)
    raise _failure(response)


def delete(
    context: Context, url: httpx.URL | str, etag: EntityTag | None, *, max_attempts: int
) -> Flow[None]:
    """DELETE with If-Match: ``etag``, or the tag of the current document when None."""
    attempts = context.attempts(max_attempts)
    if etag is None:
        etag = _required_etag((yield from read(context, url, attempts)), url)
    request = context.build_request("DELETE", url, headers={"If-Match": str(etag)})
    response = yield from _send(request, attempts)
    context.cache.discard(str(request.url))
    if response.is_success:
        return None
    if response.status_code == 412:
        raise PreconditionFailed(
            _current_etag(response), f"{request.url} changed since {etag}: not deleted"
        )
    raise _failure(response)


def page(
    context: Context,
    url: httpx.URL | str,
    params: Mapping[str, str | int],
    cursor: str | None,
    *,
    max_attempts: int,
) -> Flow[Page]:
    """GET one page of a list; ``cursor`` None asks for the first."""
    query = dict(params)
    if cursor is not None:
        query[context.api.cursor_param] = cursor
    request = context.build_request("GET", url, params=query)
    response = yield from _send(request, context.attempts(max_attempts))
    if not response.is_success:
        raise _failure(response)
    body = _json(response)
    try:
        result = context.api.page(body)
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise _error(response, f"the body is not a page ({error!r})") from None
    if result.next_cursor is not None and result.next_cursor == cursor:
        # Following it would ask for this page again, forever.
        raise _error(response, "the next cursor is the one just used")
    return result

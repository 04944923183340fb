"""The flows of one conditional request: read, create-if-absent, delete, list a page.

Each is a sans-I/O flow (:mod:`optimist.httpx.flows`) that sends its request through
:func:`~optimist.httpx.flows.send` and reads the answer through
:mod:`optimist.httpx.responses`. :func:`read` is also the first step of
:func:`~optimist.httpx.updates.update` and of a :func:`delete` that was given no tag.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from optimist.errors import PreconditionFailed, ResourceExists
from optimist.etag import EntityTag
from optimist.httpx import keys, responses
from optimist.httpx.backoff import Attempts
from optimist.httpx.flows import Context, Flow, send
from optimist.httpx.outcomes import Created, Exists, Page, Versioned
from optimist.idempotency import IdempotencyKey
from optimist.merge import JSON

__all__ = ["create", "delete", "page", "read"]


def read(context: Context, url: httpx.URL | str, attempts: Attempts) -> Flow[Versioned]:
    """GET a document, revalidating the cached one with If-None-Match when there is one."""
    request = context.build_request("GET", url)
    key = str(request.url)
    cached = context.cache.get(key)
    if cached is not None and cached.etag is not None:
        # RFC 9110 §13.1.2: If-None-Match compares weakly, so weak tags revalidate too.
        request.headers["If-None-Match"] = str(cached.etag)
    response = yield from send(request, attempts)
    # RFC 9110 §15.4.5: 304 says the representation we hold is the selected one.
    if response.status_code == 304 and cached is not None:
        return Versioned(cached.document, responses.etag(response) or cached.etag)
    if not response.is_success:
        raise responses.failure(response)
    versioned = Versioned(responses.document(context.api, response), responses.etag(response))
    context.cache.put(key, versioned.document, versioned.etag)
    return versioned


def create(
    context: Context,
    url: httpx.URL | str,
    document: JSON,
    *,
    method: str,
    max_attempts: int,
    key: IdempotencyKey | None = None,
) -> Flow[Created | Exists]:
    """Create only if absent: ``If-None-Match: *`` (RFC 9110 §13.1.2); ``key`` is the
    Idempotency-Key to send (None: a new one when the client sends keys)."""
    request = context.write_request(
        method, url, json=document, headers={"If-None-Match": "*"}, key=key
    )
    response = yield from send(request, context.attempts(max_attempts))
    if response.is_success:
        location = response.headers.get("Location")
        try:
            created = context.api.document(response.json())
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
            created = document
        return Created(
            created,
            responses.etag(response),
            None if location is None else str(request.url.join(location)),
            keys.replayed(response),
        )
    # RFC 9110 §13.1.2: "*" is false when a current representation exists.
    if response.status_code == 412:
        return Exists(responses.current_etag(response))
    # A 409 about the key (still in flight after the waits) is not a resource that exists.
    if response.status_code == 409 and keys.error(response) is None:
        raise ResourceExists("resource", request.url)
    raise responses.failure(response)


def delete(
    context: Context,
    url: httpx.URL | str,
    etag: EntityTag | None,
    *,
    max_attempts: int,
    key: IdempotencyKey | None = None,
) -> Flow[None]:
    """DELETE with If-Match: ``etag``, or the tag of the current document when None;
    ``key`` as for :func:`create`."""
    attempts = context.attempts(max_attempts)
    if etag is None:
        etag = responses.required_etag((yield from read(context, url, attempts)), url)
    request = context.write_request("DELETE", url, headers={"If-Match": str(etag)}, key=key)
    response = yield from send(request, attempts)
    context.cache.discard(str(request.url))
    if response.is_success:
        return None
    if response.status_code == 412:
        raise PreconditionFailed(
            responses.current_etag(response), f"{request.url} changed since {etag}: not deleted"
        )
    raise responses.failure(response)


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
    response = yield from send(request, context.attempts(max_attempts))
    if not response.is_success:
        raise responses.failure(response)
    body = responses.json_body(response)
    try:
        result = context.api.page(body)
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise responses.error(response, f"the body is not a page ({error!r})") from None
    if result.next_cursor is not None and result.next_cursor == cursor:
        # Following it would ask for this page again, forever.
        raise responses.error(response, "the next cursor is the one just used")
    return result

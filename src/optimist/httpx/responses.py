"""What a response means to the client: its document, its entity tag, or the error it is.

The flows read every response through these functions, so that a body that is not
JSON, a document the :class:`~optimist.httpx.Api` cannot find, a tag that does not
parse or a status that ends the operation each become the one error of
:mod:`optimist.errors` that stands for it, never a KeyError or a ValueError.
"""

from __future__ import annotations

import httpx

from optimist.errors import (
    InvalidEntityTag,
    InvalidInput,
    PreconditionFailed,
    PreconditionRequired,
    ResourceNotFound,
    ResponseError,
)
from optimist.etag import EntityTag, parse
from optimist.httpx import keys
from optimist.httpx._problems import problem_of
from optimist.httpx.apis import Api
from optimist.httpx.outcomes import Versioned
from optimist.merge import JSON

__all__ = [
    "current_etag",
    "document",
    "error",
    "etag",
    "failure",
    "json_body",
    "required_etag",
]


def json_body(response: httpx.Response) -> JSON:
    """The body of ``response`` as JSON; ResponseError if it is not JSON."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as problem:
        raise error(response, f"the body is not JSON ({problem})") from None


def error(response: httpx.Response, detail: str | None = None) -> ResponseError:
    """A ResponseError for ``response``, with its problem details when the body has them."""
    request = response.request
    return ResponseError(
        request.method, str(request.url), response.status_code, problem_of(response), detail
    )


def failure(response: httpx.Response) -> Exception:
    """The error a response that ends an operation stands for: a problem about the
    request's Idempotency-Key is its :mod:`~optimist.httpx.keys` error."""
    request = response.request
    status = response.status_code
    misuse = keys.error(response)
    if misuse is not None:
        return misuse
    if status == 404:
        return ResourceNotFound("resource", request.url)
    if status == 412:
        return PreconditionFailed(current_etag(response))
    if status == 428:
        return PreconditionRequired(request.method, "If-Match")
    return error(response)


def _tag(value: object) -> EntityTag | None:
    if not isinstance(value, str):
        return None
    try:
        # Some servers send their tags unquoted; read them as the strong tags they
        # stand for.
        return parse(value, allow_bare=True)
    except InvalidEntityTag:
        return None


def etag(response: httpx.Response) -> EntityTag | None:
    """The tag in the ETag header of ``response``, or None if it has no usable one."""
    return _tag(response.headers.get("ETag"))


def current_etag(response: httpx.Response) -> EntityTag | None:
    """The current tag a 412 reports: its ETag header, else the ``current_etag`` member
    of its problem details."""
    tag = etag(response)
    if tag is None:
        problem = problem_of(response)
        tag = _tag(problem.get("current_etag")) if problem is not None else None
    return tag


def document(api: Api, response: httpx.Response) -> JSON:
    """The document in the body of ``response``, as ``api`` finds it; ResponseError if
    the body is not JSON or holds no document."""
    body = json_body(response)
    try:
        return api.document(body)
    except (KeyError, TypeError, IndexError) as problem:
        raise error(response, f"the body holds no document ({problem!r})") from None


def required_etag(versioned: Versioned, url: object) -> EntityTag:
    """The tag a write to ``url`` is made conditional on; InvalidInput if the document
    was served without one, since a write without it would be blind."""
    if versioned.etag is None:
        raise InvalidInput(
            "ETag", "", f"{url} was served without a usable ETag, so a write cannot be conditional"
        )
    return versioned.etag

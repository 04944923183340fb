"""A conflict-aware httpx client: read, change, write with If-Match; on 412 refetch,
merge three-way and retry.

::

    import httpx

    from optimist.httpx import Client, JsonApi

    api = JsonApi(server_owned=frozenset({"id", "updated_at"}))
    with Client(httpx.Client(base_url="https://api.example"), api=api) as client:
        client.update("/notes/n1", {"text": "second draft"})

Every write carries an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), one
per attempt, so that a write whose answer was lost is sent again and answered, never
applied twice; ``Client(..., idempotency=False)`` for a server that does not honour keys.

Modules, one concept each:

* :mod:`~optimist.httpx.client`: :class:`Client` and :class:`AsyncClient`, the drivers;
* :mod:`~optimist.httpx.flows`: what a flow is, and how a flow sends a request;
* :mod:`~optimist.httpx.responses`: what a response means (its document, tag or error);
* :mod:`~optimist.httpx.operations`: the read, create, delete and page flows;
* :mod:`~optimist.httpx.updates`: the update flow (read, change, write, merge on 412);
* :mod:`~optimist.httpx.apis`: the adapter seam, how one API shapes its bodies;
* :mod:`~optimist.httpx.backoff`: bounded jittered backoff and Retry-After;
* :mod:`~optimist.httpx.bearer`: :class:`BearerToken`, an access token on every request;
* :mod:`~optimist.httpx.cache`: the entity-tag cache behind conditional GETs;
* :mod:`~optimist.httpx.keys`: the Idempotency-Key of each attempt, and what answers say;
* :mod:`~optimist.httpx.outcomes`: what the operations return.

Errors are those of :mod:`optimist.errors`: MergeConflict, PreconditionFailed,
ResourceNotFound, ResourceExists, IdempotencyKeyInFlight, IdempotencyKeyReused,
IdempotencyKeyRequired, InvalidIdempotencyKey (a caller's key), ResponseError.
"""

from optimist.httpx.apis import (
    MERGE_PATCH,
    PUT,
    PUT_CHANGES,
    Api,
    Body,
    JsonApi,
    Write,
)
from optimist.httpx.backoff import Backoff, parse_retry_after
from optimist.httpx.bearer import BearerToken
from optimist.httpx.cache import ETagCache
from optimist.httpx.client import AsyncClient, Client
from optimist.httpx.outcomes import (
    Change,
    Created,
    Exists,
    OnConflict,
    Page,
    Updated,
    Versioned,
)

__all__ = [
    "MERGE_PATCH",
    "PUT",
    "PUT_CHANGES",
    "Api",
    "AsyncClient",
    "Backoff",
    "BearerToken",
    "Body",
    "Change",
    "Client",
    "Created",
    "ETagCache",
    "Exists",
    "JsonApi",
    "OnConflict",
    "Page",
    "Updated",
    "Versioned",
    "Write",
    "parse_retry_after",
]

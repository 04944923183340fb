"""A conflict-aware httpx client: read, change, write with If-Match; on 412 refetch,
merge three-way and retry.

::

    from optimist.httpx import Client, ProjectsApi

    with Client(httpx.Client(base_url="http://127.0.0.1:8000"), api=ProjectsApi()) as client:
        client.update("/projects/proj_1", {"name": "Main Street Sign"})

Modules, one concept each:

* :mod:`~optimist.httpx.client`: :class:`Client` and :class:`AsyncClient`, the drivers;
* :mod:`~optimist.httpx.flows`: the logic, as sans-I/O generators both drivers share;
* :mod:`~optimist.httpx.apis`: the adapter seam and the reference service's three APIs;
* :mod:`~optimist.httpx.backoff`: bounded jittered backoff and Retry-After;
* :mod:`~optimist.httpx.cache`: the entity-tag cache behind conditional GETs;
* :mod:`~optimist.httpx.outcomes`: what the operations return.

Errors are those of :mod:`optimist.errors`: MergeConflict, PreconditionFailed,
ResourceNotFound, ResourceExists, ResponseError.
"""

from optimist.httpx.apis import (
    MERGE_PATCH,
    PUT,
    PUT_CHANGES,
    AdminApi,
    AdminAuth,
    Api,
    Body,
    JsonApi,
    ProjectsApi,
    SessionsApi,
    Write,
)
from optimist.httpx.backoff import Backoff, parse_retry_after
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
    "AdminApi",
    "AdminAuth",
    "Api",
    "AsyncClient",
    "Backoff",
    "Body",
    "Change",
    "Client",
    "Created",
    "ETagCache",
    "Exists",
    "JsonApi",
    "OnConflict",
    "Page",
    "ProjectsApi",
    "SessionsApi",
    "Updated",
    "Versioned",
    "Write",
    "parse_retry_after",
]

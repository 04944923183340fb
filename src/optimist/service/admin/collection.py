"""One tenant-scoped collection of the admin API: reads, lists and conditional writes.

Users, roles and feature flags behave alike (SPEC §4.1, seed 002), so a
:class:`Collection` holds what they share and each resource module only adds its
fields. Every operation is scoped by the caller's tenant, so another tenant's row is a
404 for every method; every write is one statement whose WHERE clause carries the
request's precondition (``optimist.sqlalchemy``), and the store's refusal read, made
only when nothing was written, tells 404 from 412.

The precondition profile is seed 002's (:data:`AdminConditions`): weak entity tags,
If-Match compared by opaque-tag (the documented deviation from RFC 9110 §13.1.1's
strong comparison that the seed's client workflow needs), DELETE strict with the seed's
400, PATCH and PUT lenient, and the seed's 412 detail.

The order of checks (SPEC §4.1): the identity dependencies (401, 403) run before the
endpoint; a failing body or a missing required If-Match then looks the row up once,
so that a missing resource is a 404 first; only then 422, 400, and the write's 412.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Query, Response
from fastapi.responses import JSONResponse

from optimist.conditions import ALWAYS, Condition
from optimist.errors import ResourceExists, ResourceNotFound
from optimist.etag import Comparison
from optimist.fastapi import conditional, representation_responses
from optimist.policy import PreconditionPolicy, Requirement
from optimist.service.admin.identity import Identity
from optimist.service.bodies import timestamp
from optimist.service.reads import read, read_page
from optimist.service.runtime import Runtime
from optimist.sqlalchemy import Bind, Record, Versioned, create, delete, get, update
from optimist.starlette import ConditionalRequest, set_etag

__all__ = [
    "COMPARISON",
    "MODIFIED_DETAIL",
    "POLICY",
    "AdminConditions",
    "Collection",
    "Limit",
    "PageCursor",
    "timestamp",
]

#: Seed 002's 412 detail.
MODIFIED_DETAIL: Final = "Resource has been modified. Please fetch the latest version and retry."
#: If-Match compares by opaque-tag in this profile (SPEC §4.1); change it here.
COMPARISON: Final = Comparison.WEAK
#: DELETE strict with seed 002's 400 (detail and ``invalid_params``), PATCH/PUT lenient.
POLICY: Final = PreconditionPolicy(
    {"DELETE": Requirement.REQUIRED},
    missing_status=400,
    missing_detail="{header} header required for {method} operations",
    satisfied_by=("If-Match",),
)

AdminConditions = Annotated[
    ConditionalRequest,
    Depends(conditional(POLICY, comparison=COMPARISON, failed_detail=MODIFIED_DETAIL)),
]

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page, 1 to 100")]
PageCursor = Annotated[
    str | None, Query(description="The next_cursor of the previous page (opaque, signed)")
]

_SHOWN: Final = 80  # how much of a hostile key an error message repeats


def _shown(key: object) -> object:
    """A key as an error message may repeat it: hostile ones shortened."""
    if isinstance(key, str) and len(key) > _SHOWN:
        return key[:_SHOWN] + "…"
    return key


@dataclass(frozen=True, slots=True)
class Collection:
    """A tenant-scoped versioned table served at ``path`` (e.g. ``/admin/users``).

    ``key`` is the shape of a key in the path (anything else cannot exist: 404 without
    a query); ``key_member`` names the member of the representation that holds it;
    ``render`` turns a row into the representation; ``unique`` is ``(column, member)``
    of a value unique in the tenant (the column the constraint compares, the member
    the client sent), for the 409 when a write takes a value already taken. The table's
    primary key may include the tenant (feature flags: one key per tenant).
    """

    versioned: Versioned
    path: str
    key: re.Pattern[str]
    key_member: str
    render: Callable[[Mapping[str, Any]], dict[str, Any]]
    unique: tuple[str, str] | None = None

    @property
    def resource(self) -> str:
        """The resource's name in problems ("user")."""
        return self.versioned.resource

    # -- keys and errors ---------------------------------------------------------------

    def checked(self, key: str) -> str:
        """``key`` if it could name a row; a 404 without a query otherwise."""
        if self.key.fullmatch(key) is None:
            raise ResourceNotFound(self.resource, _shown(key))
        return key

    def _row_key(self, identity: Identity, key: str) -> tuple[Any, ...]:
        scope = identity.scope
        return tuple(scope.get(column.name, key) for column in self.versioned.key)

    @contextmanager
    def _named(self, key: object) -> Iterator[None]:
        """The store's 404 and 409 named as the client names things: by the key in the
        path (not the row's key with its tenant), or by the unique member that collided."""
        try:
            yield
        except ResourceNotFound as error:
            raise ResourceNotFound(self.resource, _shown(key)) from error
        except ResourceExists as error:
            taken = error.key
            if self.unique is not None and isinstance(taken, Mapping):
                column, member = self.unique
                if column in taken:
                    named = f"{self.resource} with {member}"
                    raise ResourceExists(named, taken[column]) from error
            raise ResourceExists(self.resource, key) from error

    async def fetch(self, runtime: Runtime, identity: Identity, key: str) -> Record:
        """The tenant's row at ``key``, or its 404 (the route's lookup: asked only when a
        refusal that ranks below 404 is about to be answered)."""
        with self._named(key):
            return await get(
                runtime.engine,
                self.versioned,
                self._row_key(identity, self.checked(key)),
                scope=identity.scope,
            )

    # -- representations ---------------------------------------------------------------

    def created(self, parameter: str) -> dict[int | str, dict[str, Any]]:
        """The ``responses=`` of the create route: the 201 that :meth:`respond` answers,
        with ETag, Last-Modified and Location, the item path's ``parameter`` taken from
        the body's key member (so that the document links the create to the writes)."""
        location = f"{self.path}/{{{parameter}}}"
        return representation_responses(
            201, location=location, ids={parameter: f"/{self.key_member}"}
        )

    def respond(self, record: Record, status: int = 200) -> JSONResponse:
        """The representation of ``record`` with its validators (and Location on 201)."""
        response = JSONResponse(self.render(record.values), status_code=status)
        set_etag(response, record.etag, last_modified=record.updated_at)
        if status == 201:
            response.headers["Location"] = f"{self.path}/{record[self.key_member]}"
        return response

    async def read(
        self, runtime: Runtime, identity: Identity, key: str, conditions: ConditionalRequest
    ) -> Response:
        """GET/HEAD of one resource: one query, then 304/412 or the representation."""
        with self._named(key):
            # RFC 9110 §13.2.2 on what was read: 304 for a matching If-None-Match.
            record = await read(
                runtime,
                self.versioned,
                self._row_key(identity, self.checked(key)),
                conditions,
                scope=identity.scope,
            )
        return self.respond(record)

    async def listing(
        self, runtime: Runtime, identity: Identity, limit: int, token: str | None
    ) -> dict[str, Any]:
        """One page of the tenant's rows, ``{"data": [...], "next_cursor": ...}``.

        The cursor is bound to this route and tenant: another's is a 400 (foreign).
        """
        found = await read_page(
            runtime,
            self.versioned,
            query=f"{self.path}?tenant={identity.tenant}",
            limit=limit,
            cursor=token,
            scope=identity.scope,
        )
        return {
            "data": [self.render(record.values) for record in found.records],
            "next_cursor": found.next_cursor,
        }

    # -- writes ------------------------------------------------------------------------

    async def update(
        self,
        bind: Bind,
        identity: Identity,
        key: str,
        values: Mapping[str, Any],
        conditions: ConditionalRequest,
    ) -> JSONResponse:
        """Write ``values`` if the preconditions hold, in one statement: 200 and the new
        ETag, or 404/412 (the store's refusal), or 409 (a unique value taken)."""
        self.checked(key)
        condition = conditions.write_condition()
        with self._named(key):
            record = await update(
                bind,
                self.versioned,
                self._row_key(identity, key),
                values,
                condition=condition,
                scope=identity.scope,
            )
        return self.respond(record)

    async def delete(
        self, bind: Bind, identity: Identity, key: str, conditions: ConditionalRequest
    ) -> Response:
        """Delete if the (required) If-Match holds, in one statement: 204, or 400/404/412."""
        self.checked(key)
        condition = conditions.write_condition()
        with self._named(key):
            await delete(
                bind,
                self.versioned,
                self._row_key(identity, key),
                condition=condition,
                scope=identity.scope,
            )
        return Response(status_code=204)

    async def create(
        self,
        bind: Bind,
        identity: Identity,
        values: Mapping[str, Any],
        condition: Condition = ALWAYS,
    ) -> JSONResponse:
        """Insert a row of ``values`` in the tenant: 201 with Location and ETag.

        A taken key is a 409 (ResourceExists), or 412 under ``If-None-Match: *``.
        """
        with self._named(values.get(self.key_member)):
            record = await create(
                bind, self.versioned, values, condition=condition, scope=identity.scope
            )
        return self.respond(record, status=201)

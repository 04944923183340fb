"""RFC 9110 §13.2.1's precedence without a query on the happy path: a refusal that ranks
below a missing resource's 404 looks the resource up before it is answered.

SPEC's order is 401/403, then 404, then a malformed body (413, 415, 422), then the
preconditions (400/428, 412). Identity is decided first, by whatever runs before the
endpoint. But a write that is one conditional statement finds out whether the resource
exists only when it runs, after its body was read and its preconditions required, and
looking the resource up on every request would cost a query that success never needs.
So the lookup waits: inside :func:`missing_first`, a refusal that ranks below 404
(:func:`yields_to_lookup`) first awaits it. A missing resource raises its 404 instead;
an existing one lets the refusal through, and a 412 that names no current entity-tag
(a deferred invalid vector clock, say) gets the one just looked up (SPEC §2: every 412
carries it).

The lookup is given to :func:`missing_first`, or remembered on the request
(:func:`remember_lookup`) by whatever resolved the resource's key, as
``optimist.fastapi.lookup`` does for a FastAPI dependency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from optimist.errors import PreconditionFailed, PreconditionRequired
from optimist.etag import EntityTag

__all__ = [
    "Lookup",
    "Tagged",
    "missing_first",
    "remember_lookup",
    "remembered_lookup",
    "yields_to_lookup",
]

_LOOKUP: Final = "optimist.lookup"  # scope key of the request's remembered lookup
#: An HTTPException refusing the body: undecodable (FastAPI's 400), too large, not of
#: an accepted media type, invalid.
_BODY_REFUSALS: Final = frozenset({400, 413, 415, 422})


class Tagged(Protocol):
    """What a lookup finds: the current resource, with its entity-tag (an
    ``optimist.sqlalchemy.Record``, an :class:`~optimist.conditions.ResourceState`…)."""

    @property
    def etag(self) -> EntityTag | None:
        """The current entity-tag."""
        ...


#: Finds the current resource, or raises ResourceNotFound (404).
Lookup = Callable[[], Awaitable[Tagged]]


def remember_lookup(request: HTTPConnection, lookup: Lookup) -> None:
    """Keep ``lookup`` for :func:`missing_first` to await if the request is refused."""
    request.scope[_LOOKUP] = lookup


def remembered_lookup(request: HTTPConnection) -> Lookup | None:
    """The lookup remembered for ``request``, if any."""
    lookup: Lookup | None = request.scope.get(_LOOKUP)
    return lookup


def yields_to_lookup(error: BaseException) -> bool:
    """Whether ``error`` is a refusal that RFC 9110 §13.2.1 ranks below a missing
    resource's 404: a refused body (an HTTPException 400, 413, 415 or 422), a missing
    required precondition (400/428), or a 412 that could not name the current ETag."""
    if isinstance(error, HTTPException):
        return error.status_code in _BODY_REFUSALS
    if isinstance(error, PreconditionFailed):
        # One that names the current entity-tag was decided on the resource itself.
        return error.current_etag is None
    return isinstance(error, PreconditionRequired)


@asynccontextmanager
async def missing_first(
    request: HTTPConnection,
    lookup: Lookup | None = None,
    *,
    refusals: tuple[type[Exception], ...] = (),
) -> AsyncIterator[None]:
    """Inside, a refusal that ranks below 404 (:func:`yields_to_lookup`, or one of
    ``refusals``) awaits the lookup before it propagates.

    ``lookup`` defaults to the one remembered for ``request`` when the refusal is
    raised (:func:`remember_lookup`); without one, the refusal propagates as it is. A
    missing resource raises the lookup's 404 instead; a 412 without a current ETag is
    re-raised with the one the lookup found.
    """
    try:
        yield
    except Exception as error:
        find = lookup or remembered_lookup(request)
        if find is None or not (yields_to_lookup(error) or isinstance(error, refusals)):
            raise
        current = await find()
        if isinstance(error, PreconditionFailed) and error.current_etag is None:
            error.current_etag = current.etag
        raise

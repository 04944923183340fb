"""The HTTP boundary of the test-sessions API: path keys, the lookup of a refused
request, and writes under the clock If-Match carried."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Final, TypeVar

from fastapi import Depends, Request

from optimist.conditions import ALWAYS, Condition
from optimist.errors import PreconditionFailed, ResourceNotFound, VersionConflict
from optimist.fastapi import conditional, lookup
from optimist.preconditions import Preconditions
from optimist.problem import shorten
from optimist.service import schema
from optimist.service.runtime import RuntimeDep
from optimist.sqlalchemy import Record, get
from optimist.starlette import ConditionalRequest, client_clock
from optimist.vclock import VectorClock

__all__ = [
    "PATH",
    "Conditions",
    "Current",
    "SessionKey",
    "Write",
    "find_session",
    "session_key",
    "write_under_clock",
]

#: The collection's path; a session is at ``PATH/<id>``.
PATH: Final = "/v1/tests/sessions"

_SESSION_ID: Final = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_HELD_FAILED: Final = "If-None-Match or If-Unmodified-Since does not hold of the current session"

R = TypeVar("R")


def session_key(session_id: str) -> str:
    """The path's session id; one the service cannot have issued is a 404 without a query."""
    if _SESSION_ID.fullmatch(session_id) is None:
        raise ResourceNotFound(schema.test_sessions.resource, shorten(session_id))
    return session_id


SessionKey = Annotated[str, Depends(session_key)]
Conditions = Annotated[ConditionalRequest, Depends(conditional())]


async def find_session(session_id: SessionKey, runtime: RuntimeDep) -> Record:
    """The session in the path (the lookup of a refused request: a body that fails, an
    unparsable clock)."""
    return await get(runtime.engine, schema.test_sessions, session_id)


#: The lookup of a route that writes one session (``dependencies=[Current]``).
Current = Depends(lookup(find_session))


def _beyond_the_clock(received: Preconditions) -> bool:
    """Whether a write has preconditions the clock's compare-and-set does not decide.

    RFC 9110 §13.2.2: If-Unmodified-Since counts only without If-Match, and
    If-None-Match always does.
    """
    return received.if_none_match is not None or (
        received.if_match is None and received.if_unmodified_since is not None
    )


#: A write of a session: ``(sent, condition)`` → the store's result, ``sent`` being the
#: compare-and-set clock (None: the store holds the row and increments what it finds)
#: and ``condition`` the preconditions the store evaluates on the held row.
Write = Callable[[VectorClock | None, Condition], Awaitable[R]]


async def write_under_clock(request: Request, conditions: ConditionalRequest, write: Write[R]) -> R:
    """Apply ``write`` under the request's preconditions: the clock If-Match carried as
    the compare-and-set key (one statement), and the preconditions beyond it evaluated
    by the store on the held session, in the write's transaction."""
    sent = client_clock(request)
    if not _beyond_the_clock(conditions.enforce()):
        # Without a clock (none, or "*"), the store holds the row: nothing is lost.
        return await write(sent, ALWAYS)
    try:
        return await write(sent, conditions.write_condition())
    except VersionConflict:
        raise
    except PreconditionFailed as failed:
        # The store's 412 names no field; this one names the two it evaluated.
        raise PreconditionFailed(
            failed.current_etag, _HELD_FAILED, current=failed.current
        ) from None

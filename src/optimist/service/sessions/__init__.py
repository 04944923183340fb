"""The test-sessions API of seed 000 (SPEC §4.3): sessions versioned by vector clocks.

A session's version is its :class:`~optimist.vclock.VectorClock`; its ETag is the
clock's entity-tag (``"test-node=3"``). Seed 000's middleware
(:class:`~optimist.starlette.VectorClockMiddleware`, installed by the app with
``defer=True``) parses If-Match on PUT, PATCH and DELETE (that tag, or the clock as raw
JSON) into the request's :func:`~optimist.starlette.clock_state`; the write sends it to
the store as the compare-and-set key (:func:`optimist.sqlalchemy.update_clocked`), so the
check and the write are one statement and a client whose clock is not the stored one gets a 412 that
says ``stale`` or ``concurrent``, with the current clock. A successful write advances
this node's counter (``--node-id``) and answers the new clock in the ETag.

**If-Match is optional** on PUT, PATCH and DELETE, as seed 000's middleware has it
(SPEC §4.3 is silent). A write without a clock, or with ``If-Match: *``, is
unconditional and still loses nothing: the store holds the row while it reads the
clock it increments. If-Unmodified-Since and If-None-Match on a write are evaluated
on the row while one transaction holds it, and the write is made in that transaction
(the ``condition`` of :func:`optimist.sqlalchemy.update_clocked`).

The order of checks (SPEC §1): an id that is not a UUID is a 404 without a query; a
body that fails (413, 415, 422) or an unparsable clock (412) looks the session up once
(the routes' :func:`~optimist.fastapi.lookup`), so a missing session is a 404 first;
then the write's own 412. No status machine: SPEC §4.3 names the four statuses and no
rule between them.

* :mod:`~optimist.service.sessions.bodies`: request and response bodies;
* :mod:`~optimist.service.sessions.requests`: path keys, the lookup, writes under a clock;
* :mod:`~optimist.service.sessions.routes`: the five operations.
"""

from optimist.service.sessions.bodies import (
    MAX_NOTES,
    NewSession,
    Session,
    SessionPage,
    SessionPatch,
    SessionReplacement,
    SessionStatus,
    representation,
)
from optimist.service.sessions.requests import PATH, session_key
from optimist.service.sessions.routes import router

__all__ = [
    "MAX_NOTES",
    "PATH",
    "NewSession",
    "Session",
    "SessionPage",
    "SessionPatch",
    "SessionReplacement",
    "SessionStatus",
    "representation",
    "router",
    "session_key",
]

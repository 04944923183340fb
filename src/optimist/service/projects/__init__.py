"""The projects API of seed 003 (SPEC §4.2): projects with strong ETags and a status machine.

Every write is one conditional statement (:func:`optimist.sqlalchemy.update` and
friends): the request's preconditions, and for a status change the transition rule,
are the statement's WHERE clause, so no update is lost and no transition is applied
from a status other than the one it was checked against. A read happens before a
write only on a path that already refuses the request, to put the errors in RFC 9110
§13.2.1's order (404 → body 422 → 428 → 412/304 → invalid transition 422).

The ETag is 16 hex digits of SHA-256 (the recipe of :data:`optimist.service.schema.projects`):
the ``ETag`` header carries it quoted, the body's ``etag`` bare, and If-Match accepts
either, as seed 003's client copies the body's ``etag`` into If-Match.

* :mod:`~optimist.service.projects.bodies`: the status machine, request and response bodies;
* :mod:`~optimist.service.projects.requests`: preconditions, path keys, body limits, 404 first;
* :mod:`~optimist.service.projects.routes`: the five operations.
"""

from optimist.service.projects.bodies import (
    TRANSITIONS,
    Project,
    ProjectChanges,
    ProjectIn,
    ProjectStatus,
    representation,
    sources,
)
from optimist.service.projects.requests import MAX_BODY, ProjectRoute, mismatch_detail
from optimist.service.projects.routes import new_project_id, router

__all__ = [
    "MAX_BODY",
    "TRANSITIONS",
    "Project",
    "ProjectChanges",
    "ProjectIn",
    "ProjectRoute",
    "ProjectStatus",
    "mismatch_detail",
    "new_project_id",
    "representation",
    "router",
    "sources",
]

"""The one exception tree of optimist.

Every error the library raises derives from :class:`OptimistError`, carries the
fields a caller needs to act on it, and knows the HTTP status it stands for, so
that one handler can turn any of them into problem details (RFC 9457)::

    OptimistError                      status  fields
    ├── InvalidInput                    400    field, value, reason
    │   ├── InvalidEntityTag            400    field, value, reason, position
    │   ├── InvalidIdempotencyKey       400    field, value, reason, position
    │   ├── InvalidVectorClock          400    field, value, reason
    │   └── InvalidToken                400    field, value, reason   (cursors, CSRF tokens)
    │       ├── MalformedToken          400
    │       ├── TamperedToken           400
    │       ├── ForeignToken            400
    │       └── ExpiredToken            410    issued_at, max_age
    ├── PreconditionError
    │   ├── PreconditionRequired        428    method, header (400 where a policy says so)
    │   ├── PreconditionFailed          412    current_etag, current
    │   │   └── VersionConflict         412    current_etag, ordering, conflict, current_clock
    │   └── NotModified                 304    current_etag
    ├── InvalidCredentials              401    error, realm, challenge   (bearer tokens)
    ├── ResourceNotFound                404    resource, key
    ├── ResourceExists                  409    resource, key
    ├── GuardFailed                     409    resource, key, current
    ├── MergeConflict                   409    base, theirs, mine, paths
    ├── IdempotencyError                       documentation
    │   ├── IdempotencyKeyRequired      400    method, target
    │   ├── IdempotencyKeyInFlight      409    key
    │   └── IdempotencyKeyReused        422    key, differences
    ├── CorruptRecord                   500    record, reason
    ├── ServiceUnavailable              503    reason, retry_after, dependency
    └── ResponseError                  (its)   method, url, status, problem   (client side)

``NotModified`` is an outcome rather than a failure, but raising it lets a
handler deep inside a request end it with 304 the same way it ends others.
``IdempotencyError`` covers the misuses of an ``Idempotency-Key`` that
draft-ietf-httpapi-idempotency-key-header names ("Error Handling"), each with the draft's title;
``CorruptRecord`` is a stored record (an idempotency fingerprint or response) that
cannot be read back, a fault of the server, never of the request.
``InvalidCredentials`` refuses a request's bearer token, or its lack of one (RFC 6750
§3.1): 401 with the ``Bearer`` challenge, or 400 for credentials sent malformed.
``ServiceUnavailable`` is the one 5xx a client is told about: a temporary condition
(the database cannot be reached) that may be over in ``retry_after`` seconds.

The core modules raise these; integrations translate them into responses and
never invent parallel types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from optimist._text import shorten

if TYPE_CHECKING:
    from optimist.etag import EntityTag
    from optimist.vclock import Ordering, VectorClock

__all__ = [
    "CorruptRecord",
    "ExpiredToken",
    "ForeignToken",
    "GuardFailed",
    "IdempotencyError",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "InvalidCredentials",
    "InvalidEntityTag",
    "InvalidIdempotencyKey",
    "InvalidInput",
    "InvalidToken",
    "InvalidVectorClock",
    "MalformedToken",
    "MergeConflict",
    "NotModified",
    "OptimistError",
    "PreconditionError",
    "PreconditionFailed",
    "PreconditionRequired",
    "ResourceExists",
    "ResourceNotFound",
    "ResponseError",
    "ServiceUnavailable",
    "TamperedToken",
    "VersionConflict",
]


class OptimistError(Exception):
    """Base of every error optimist raises; ``status`` is the HTTP status it stands for."""

    #: The HTTP status this error stands for; a class default an instance may override.
    status: int = 500
    #: For a 401, the challenge its response carries in WWW-Authenticate (RFC 9110
    #: §11.6.1 requires one); None for any other error.
    challenge: str | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(OptimistError, ValueError):
    """A value from the outside (a header, a token, a body member) could not be parsed."""

    status = 400

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason

    def __repr__(self) -> str:
        shown = shorten(self.value)
        return (
            f"{type(self).__name__}(field={self.field!r}, value={shown!r}, reason={self.reason!r})"
        )


class InvalidEntityTag(InvalidInput):
    """An entity-tag field value does not follow RFC 9110 §8.8.3; ``position`` is where it broke."""

    def __init__(self, field: str, value: str, reason: str, position: int) -> None:
        super().__init__(field, value, f"{reason} at position {position}")
        self.position = position


class InvalidIdempotencyKey(InvalidInput):
    """An Idempotency-Key field is not one sf-string key (RFC 9651 §3.3.3) of 1 to 255
    characters; ``position`` is where it broke."""

    def __init__(self, field: str, value: str, reason: str, position: int) -> None:
        super().__init__(field, value, f"{reason} at position {position}")
        self.position = position


class InvalidVectorClock(InvalidInput):
    """A vector clock is malformed or exceeds the bounds that keep hostile input cheap."""


class InvalidToken(InvalidInput):
    """A signed token (a cursor, a CSRF token) cannot be used; the subclass says why."""


class MalformedToken(InvalidToken):
    """The token is not one optimist could have issued (bad encoding or structure)."""


class TamperedToken(InvalidToken):
    """The token's signature matches none of the configured keys."""


class ForeignToken(InvalidToken):
    """The token is genuine but was issued for another purpose (another query, tenant…)."""


class ExpiredToken(InvalidToken):
    """The token (or the snapshot it carries) is older than its maximum age: 410 Gone."""

    status = 410

    def __init__(self, field: str, value: str, issued_at: datetime, max_age: timedelta) -> None:
        super().__init__(field, value, f"issued {issued_at.isoformat()}, older than {max_age}")
        self.issued_at = issued_at
        self.max_age = max_age


class PreconditionError(OptimistError):
    """A conditional request did not go ahead (RFC 9110 §13)."""


class PreconditionRequired(PreconditionError):
    """The route requires a precondition the request lacked (RFC 6585 §3, or 400 by policy)."""

    status = 428

    def __init__(
        self, method: str, header: str, status: int = 428, detail: str | None = None
    ) -> None:
        super().__init__(
            detail
            or f"{method} requires an {header} header: fetch the resource, then resend with "
            f"{header} set to its ETag"
        )
        self.method = method
        self.header = header
        self.status = status


class PreconditionFailed(PreconditionError):
    """A precondition evaluated false (RFC 9110 §13.1); ``current_etag`` is what is stored now.

    ``current`` is the current state of the resource when the store that refused the
    write read it (e.g. an ``optimist.sqlalchemy.Record``), for a 412 that shows it.
    """

    status = 412

    def __init__(
        self, current_etag: EntityTag | None, detail: str | None = None, *, current: Any = None
    ) -> None:
        super().__init__(detail or "precondition failed: the resource has changed")
        self.current_etag = current_etag
        self.current = current


class VersionConflict(PreconditionFailed):
    """A vector-clock precondition failed: the client's clock is stale or concurrent."""

    def __init__(
        self,
        current_etag: EntityTag | None,
        ordering: Ordering,
        current_clock: VectorClock,
        detail: str | None = None,
    ) -> None:
        # A clock dominated by the stored one missed writes ("stale"); any other
        # inequality, including one claiming writes the server never saw, cannot be
        # ordered against what is stored ("concurrent").
        self.conflict = "stale" if ordering.value == "before" else "concurrent"
        super().__init__(
            current_etag,
            detail
            or (
                "the vector clock sent is stale: the resource has been modified since"
                if self.conflict == "stale"
                else "the vector clock sent is concurrent with the stored one"
            ),
        )
        self.ordering = ordering
        self.current_clock = current_clock


class NotModified(PreconditionError):
    """The selected representation has not changed (RFC 9110 §15.4.5): answer 304."""

    status = 304

    def __init__(
        self, current_etag: EntityTag | None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__("not modified")
        self.current_etag = current_etag
        #: Fields the 200 would have carried that a 304 must repeat (RFC 9110 §15.4.5).
        self.headers = dict(headers or {})


class InvalidCredentials(OptimistError):
    """The request's bearer token was missing, malformed or not accepted (RFC 6750 §3.1).

    ``error`` is RFC 6750's code: None when no credentials were sent (§3.1: the client
    may not know that the resource needs them, so the challenge names no error),
    ``invalid_token`` (401) for a token not accepted, ``invalid_request`` (400) for
    credentials sent malformed or more than once. ``challenge`` is the ``Bearer``
    challenge of :func:`optimist.bearer.challenge` for ``realm``.
    """

    status = 401

    def __init__(self, detail: str, error: str | None = None, realm: str = "optimist") -> None:
        super().__init__(detail)
        self.error = error
        self.realm = realm
        if error == "invalid_request":
            self.status = 400
        # Imported here: optimist.bearer imports this module.
        from optimist.bearer import challenge  # noqa: PLC0415

        self.challenge = challenge(realm, error=error, description=detail if error else None)


class ResourceNotFound(OptimistError):
    """No resource exists at the target (or it belongs to someone else)."""

    status = 404

    def __init__(self, resource: str, key: object) -> None:
        super().__init__(f"{resource} {key!s} not found")
        self.resource = resource
        self.key = key


class ResourceExists(OptimistError):
    """A create without ``If-None-Match: *`` hit a key that is taken."""

    status = 409

    def __init__(self, resource: str, key: object) -> None:
        super().__init__(f"{resource} {key!s} already exists")
        self.resource = resource
        self.key = key


class GuardFailed(OptimistError):
    """A write's guard is false of the stored row: its current state forbids the write.

    A guard is a rule about the row's own values that the write checks in its
    statement (e.g. that a status is one a transition may leave); ``current`` is the
    row as the store read it after refusing (e.g. an ``optimist.sqlalchemy.Record``),
    so the caller can say which rule failed. 409 by default (RFC 9110 §15.5.10); an
    API whose rule is a validation of the request may answer 422 instead.
    """

    status = 409

    def __init__(self, resource: str, key: object, current: Any) -> None:
        super().__init__(f"{resource} {key!s} is not in a state that allows this write")
        self.resource = resource
        self.key = key
        self.current = current


class MergeConflict(OptimistError):
    """Both sides changed the same paths differently; ``paths`` lists them."""

    status = 409

    def __init__(
        self,
        base: Any,
        theirs: Any,
        mine: Any,
        paths: Sequence[tuple[str, ...]],
    ) -> None:
        shown = ", ".join("/".join(p) or "<root>" for p in paths)
        super().__init__(f"conflicting changes at {shown}")
        self.base = base
        self.theirs = theirs
        self.mine = mine
        self.paths = tuple(paths)


class IdempotencyError(OptimistError):
    """An Idempotency-Key is missing or misused (draft-ietf-httpapi-idempotency-key-header).

    ``title`` is the draft's title for the problem; ``documentation`` is the address of
    the API's rules for its keys, which the draft asks the answer to link (it becomes the
    problem's ``type``), or None.
    """

    title: ClassVar[str] = "Idempotency-Key misused"

    def __init__(self, detail: str, documentation: str | None = None) -> None:
        super().__init__(detail)
        self.documentation = documentation


class IdempotencyKeyRequired(IdempotencyError):
    """The route requires an Idempotency-Key the request lacked: 400, as the draft asks."""

    status = 400
    title = "Idempotency-Key is missing"

    def __init__(self, method: str, target: str, documentation: str | None = None) -> None:
        super().__init__(
            f"{method} {shorten(target)} requires an Idempotency-Key header: send a new "
            "random key (a UUID) with each new request, and the same key when resending it",
            documentation,
        )
        self.method = method
        self.target = target


class IdempotencyKeyInFlight(IdempotencyError):
    """A request with this key is still being processed: 409; resend it once that one is done."""

    status = 409
    title = "A request is outstanding for this Idempotency-Key"

    def __init__(self, key: str, documentation: str | None = None) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still being processed: resend it "
            "unchanged once that one has been answered",
            documentation,
        )
        self.key = key


class IdempotencyKeyReused(IdempotencyError):
    """The key was first used for another request: 422, as the draft asks.

    ``differences`` names the parts of the request that differ from the first one
    (``"method"``, ``"target"``, a precondition field, ``"Content-Type"``, ``"body"``).
    """

    status = 422
    title = "Idempotency-Key is already used"

    def __init__(
        self, key: str, differences: Sequence[str], documentation: str | None = None
    ) -> None:
        shown = ", ".join(differences) or "the request"
        super().__init__(
            f"this Idempotency-Key was used for another request (it differs in {shown}): "
            "use a new key for a new request",
            documentation,
        )
        self.key = key
        self.differences = tuple(differences)


class CorruptRecord(OptimistError):
    """A record the server stored cannot be read back: ``record`` names it, ``reason`` says why.

    A fault of the server (a damaged row, a record written by an incompatible version),
    so 500; the reason is the operator's and stays out of the response.
    """

    status = 500

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"the stored {record} cannot be read: {reason}")
        self.record = record
        self.reason = reason


class ServiceUnavailable(OptimistError):
    """Something the server depends on cannot serve the request now: 503, try again later.

    RFC 9110 §15.6.4: a temporary overload or outage, not a fault of the request;
    ``retry_after`` is the number of seconds a client should wait before it tries
    again (the ``Retry-After`` field, §10.2.3). ``reason`` names what went wrong in
    words fit for a log ("cannot connect", "lock timeout"), ``dependency`` what is
    unavailable; neither should carry addresses, credentials or driver messages, and
    a response shows only that ``dependency`` is unavailable and when to come back.
    """

    status = 503

    def __init__(self, reason: str, *, retry_after: int = 1, dependency: str = "database") -> None:
        if retry_after < 0:
            raise ValueError(f"retry_after cannot be negative, not {retry_after}")
        super().__init__(f"the {dependency} is unavailable: {reason}")
        self.reason = reason
        self.retry_after = retry_after
        self.dependency = dependency


class ResponseError(OptimistError):
    """A server answered a client's request with a status the client cannot act on.

    Raised by ``optimist.httpx`` for what no more specific error describes (401, 403,
    422, 5xx, retries exhausted on 429/503, a 429/503 to a write it may not send twice);
    ``status`` is the response's status and ``problem`` its parsed body when that is a
    JSON object (RFC 9457), else None.
    """

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        problem: Mapping[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        reason = detail or (problem or {}).get("detail") or "unexpected response"
        super().__init__(f"{method} {url} answered {status}: {reason}")
        self.method = method
        self.url = url
        self.status = status
        self.problem = problem

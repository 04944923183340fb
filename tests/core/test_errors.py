"""The exception tree: shape, statuses, the fields each error carries, and its messages."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta

import pytest

from optimist import errors
from optimist.errors import (
    CorruptRecord,
    ExpiredToken,
    ForeignToken,
    GuardFailed,
    IdempotencyError,
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidCredentials,
    InvalidEntityTag,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidToken,
    InvalidVectorClock,
    MalformedToken,
    MergeConflict,
    NotModified,
    OptimistError,
    PreconditionError,
    PreconditionFailed,
    PreconditionRequired,
    ResourceExists,
    ResourceNotFound,
    ResponseError,
    ServiceUnavailable,
    TamperedToken,
    VersionConflict,
)
from optimist.etag import EntityTag
from optimist.vclock import Ordering, VectorClock

TREE = [
    (InvalidInput, OptimistError, 400),
    (InvalidEntityTag, InvalidInput, 400),
    (InvalidIdempotencyKey, InvalidInput, 400),
    (InvalidVectorClock, InvalidInput, 400),
    (InvalidToken, InvalidInput, 400),
    (MalformedToken, InvalidToken, 400),
    (TamperedToken, InvalidToken, 400),
    (ForeignToken, InvalidToken, 400),
    (ExpiredToken, InvalidToken, 410),
    (PreconditionError, OptimistError, 500),
    (PreconditionRequired, PreconditionError, 428),
    (PreconditionFailed, PreconditionError, 412),
    (VersionConflict, PreconditionFailed, 412),
    (NotModified, PreconditionError, 304),
    (InvalidCredentials, OptimistError, 401),
    (ResourceNotFound, OptimistError, 404),
    (ResourceExists, OptimistError, 409),
    (GuardFailed, OptimistError, 409),
    (MergeConflict, OptimistError, 409),
    (IdempotencyError, OptimistError, 500),
    (IdempotencyKeyRequired, IdempotencyError, 400),
    (IdempotencyKeyInFlight, IdempotencyError, 409),
    (IdempotencyKeyReused, IdempotencyError, 422),
    (CorruptRecord, OptimistError, 500),
    (ServiceUnavailable, OptimistError, 503),
    (ResponseError, OptimistError, 500),
]


@pytest.mark.parametrize(
    ("cls", "parent", "status"), TREE, ids=[cls.__name__ for cls, _, _ in TREE]
)
def test_tree(cls: type[OptimistError], parent: type[OptimistError], status: int) -> None:
    """Each class sits under the parent the module docstring draws, with its status."""
    assert cls.__mro__[1] is parent
    assert cls.status == status


def test_every_exported_name_is_an_error_in_the_tree() -> None:
    """__all__ lists exactly the error classes, and the docstring's tree draws each one."""
    classes = {
        name
        for name, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, OptimistError) and value.__module__ == errors.__name__
    }
    assert set(errors.__all__) == classes
    assert {cls.__name__ for cls, _, _ in TREE} | {"OptimistError"} == classes
    drawn = set(re.findall(r"(?:── |^    )(\w+)", errors.__doc__ or "", re.MULTILINE))
    assert classes <= drawn


def test_invalid_input_is_a_value_error() -> None:
    """Parsing code that catches ValueError also catches optimist's parse errors."""
    error = InvalidInput("limit", "abc", "not an integer")
    assert isinstance(error, ValueError)
    assert (error.field, error.value, error.reason) == ("limit", "abc", "not an integer")
    assert error.detail == str(error) == "invalid limit: not an integer"


def test_repr_shortens_hostile_values() -> None:
    """repr shows at most 80 characters of the value, so logs stay readable."""
    error = InvalidInput("cursor", "x" * 10_000, "bad")
    shown = repr(error)
    assert shown == f"InvalidInput(field='cursor', value='{'x' * 80}…', reason='bad')"
    assert repr(InvalidToken("cursor", "short", "bad")) == (
        "InvalidToken(field='cursor', value='short', reason='bad')"
    )


def test_invalid_entity_tag_reports_the_position() -> None:
    """The reason ends with where the field value broke."""
    error = InvalidEntityTag("If-Match", '"a', "unterminated opaque-tag", 0)
    assert error.position == 0
    assert error.reason == "unterminated opaque-tag at position 0"
    assert error.detail == "invalid If-Match: unterminated opaque-tag at position 0"


def test_expired_token() -> None:
    """An expired token is 410 Gone and says when it was issued and the limit."""
    issued = datetime(2025, 1, 1, tzinfo=UTC)
    error = ExpiredToken("cursor", "tok", issued, timedelta(hours=1))
    assert error.status == 410
    assert (error.issued_at, error.max_age) == (issued, timedelta(hours=1))
    assert error.reason == "issued 2025-01-01T00:00:00+00:00, older than 1:00:00"


def test_precondition_required_defaults() -> None:
    """By default 428 with a detail that says how to resubmit."""
    error = PreconditionRequired("DELETE", "If-Match")
    assert (error.method, error.header, error.status) == ("DELETE", "If-Match", 428)
    assert error.detail == (
        "DELETE requires an If-Match header: fetch the resource, then resend with "
        "If-Match set to its ETag"
    )


def test_precondition_required_status_and_detail_per_instance() -> None:
    """A policy's 400 and its wording belong to the instance, not the class."""
    error = PreconditionRequired("DELETE", "If-Match", 400, "If-Match header required")
    assert error.status == 400
    assert error.detail == "If-Match header required"
    assert PreconditionRequired.status == 428


def test_precondition_failed() -> None:
    """412 carries the current tag and, optionally, the current state as read."""
    tag = EntityTag("v2")
    error = PreconditionFailed(tag, current={"id": 1})
    assert (error.current_etag, error.current, error.status) == (tag, {"id": 1}, 412)
    assert error.detail == "precondition failed: the resource has changed"
    assert PreconditionFailed(None, "custom").detail == "custom"
    assert PreconditionFailed(None).current is None


@pytest.mark.parametrize(
    ("ordering", "conflict", "detail"),
    [
        (
            Ordering.BEFORE,
            "stale",
            "the vector clock sent is stale: the resource has been modified since",
        ),
        (
            Ordering.CONCURRENT,
            "concurrent",
            "the vector clock sent is concurrent with the stored one",
        ),
        (Ordering.AFTER, "concurrent", "the vector clock sent is concurrent with the stored one"),
    ],
    ids=["before-is-stale", "concurrent", "after-claims-unseen-writes"],
)
def test_version_conflict(ordering: Ordering, conflict: str, detail: str) -> None:
    """A dominated clock is stale; any other inequality is concurrent."""
    clock = VectorClock({"a": 2})
    error = VersionConflict(EntityTag("a=2"), ordering, clock)
    assert (error.conflict, error.ordering, error.current_clock) == (conflict, ordering, clock)
    assert error.detail == detail
    assert error.status == 412
    assert VersionConflict(None, ordering, clock, "custom").detail == "custom"


def test_not_modified() -> None:
    """304 carries the current tag, for the ETag header of the empty response."""
    error = NotModified(EntityTag("a"))
    assert (error.status, error.current_etag, error.detail) == (304, EntityTag("a"), "not modified")


def test_resource_errors_name_the_resource_and_key() -> None:
    """404 and 409 say which resource and key."""
    missing = ResourceNotFound("project", "proj_1")
    taken = ResourceExists("feature flag", 7)
    assert (missing.resource, missing.key, missing.detail) == (
        "project",
        "proj_1",
        "project proj_1 not found",
    )
    assert (taken.resource, taken.key, taken.detail) == (
        "feature flag",
        7,
        "feature flag 7 already exists",
    )


def test_guard_failed_keeps_the_current_row() -> None:
    """A refused guard names the resource and key and carries the row that refused it."""
    error = GuardFailed("project", "proj_1", {"status": "accepted"})
    assert (error.status, error.resource, error.key) == (409, "project", "proj_1")
    assert error.current == {"status": "accepted"}
    assert error.detail == "project proj_1 is not in a state that allows this write"


def test_merge_conflict_lists_the_paths() -> None:
    """A merge conflict keeps all three versions and names each colliding path."""
    error = MergeConflict({"a": 1}, {"a": 2}, {"a": 3}, [("a",), ("b", "c"), ()])
    assert error.paths == (("a",), ("b", "c"), ())
    assert (error.base, error.theirs, error.mine) == ({"a": 1}, {"a": 2}, {"a": 3})
    assert error.detail == "conflicting changes at a, b/c, <root>"


def test_service_unavailable_says_what_and_when() -> None:
    """503 carries the reason, the seconds to wait and what is unavailable."""
    error = ServiceUnavailable("connection refused", retry_after=5)
    assert (error.status, error.reason, error.retry_after) == (503, "connection refused", 5)
    assert error.dependency == "database"
    assert error.detail == "the database is unavailable: connection refused"
    assert ServiceUnavailable("pool exhausted").retry_after == 1


def test_service_unavailable_refuses_a_negative_wait() -> None:
    """A Retry-After cannot ask for a negative number of seconds (RFC 9110 §10.2.3)."""
    with pytest.raises(ValueError, match="negative"):
        ServiceUnavailable("down", retry_after=-1)


@pytest.mark.parametrize(
    ("problem", "detail", "message"),
    [
        (None, None, "PATCH /x answered 503: unexpected response"),
        ({"detail": "Invalid transition"}, None, "PATCH /x answered 503: Invalid transition"),
        ({"detail": "from the body"}, "given", "PATCH /x answered 503: given"),
        ({"title": "no detail"}, None, "PATCH /x answered 503: unexpected response"),
    ],
    ids=["no-body", "problem-detail", "explicit-detail-wins", "problem-without-detail"],
)
def test_response_error(problem: dict[str, str] | None, detail: str | None, message: str) -> None:
    """A client-side error keeps the request, the status and the problem body."""
    error = ResponseError("PATCH", "/x", 503, problem, detail)
    assert (error.method, error.url, error.status, error.problem) == ("PATCH", "/x", 503, problem)
    assert error.detail == message

"""Problem details (RFC 9457): member order, default titles, extensions, from_error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimist import errors
from optimist.etag import EntityTag
from optimist.problem import MEDIA_TYPE, InvalidParam, Problem, from_error, shorten
from optimist.vclock import Ordering, VectorClock


def test_media_type() -> None:
    """RFC 9457 §6.1 registers application/problem+json."""
    assert MEDIA_TYPE == "application/problem+json"


def test_member_order() -> None:
    """Standard members first, then invalid_params, then the extensions in their order."""
    problem = Problem(
        status=412,
        detail="changed",
        title="Changed",
        type="https://example.com/probs/changed",
        instance="/projects/1",
        invalid_params=(InvalidParam("If-Match", "stale"),),
        extensions={"current_etag": '"b"', "another": 1},
    )
    assert list(problem.to_dict().items()) == [
        ("type", "https://example.com/probs/changed"),
        ("title", "Changed"),
        ("status", 412),
        ("detail", "changed"),
        ("instance", "/projects/1"),
        ("invalid_params", [{"name": "If-Match", "reason": "stale"}]),
        ("current_etag", '"b"'),
        ("another", 1),
    ]


def test_minimal_problem() -> None:
    """Absent optional members are left out, not written as null."""
    assert Problem(404).to_dict() == {"type": "about:blank", "title": "Not Found", "status": 404}


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "Bad Request"),
        (404, "Not Found"),
        (409, "Conflict"),
        (410, "Gone"),
        (412, "Precondition Failed"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (416, "Range Not Satisfiable"),
        (422, "Unprocessable Content"),
        (428, "Precondition Required"),
        (500, "Internal Server Error"),
        (599, "Error"),
    ],
    ids=[
        "400",
        "404",
        "409",
        "410",
        "412",
        "413",
        "414",
        "416",
        "422",
        "428",
        "500",
        "unregistered",
    ],
)
def test_default_title_is_the_status_phrase(status: int, title: str) -> None:
    """RFC 9457 §4.2.1: with about:blank the title is the RFC 9110 status phrase."""
    assert Problem(status).resolved_title == title
    assert Problem(status).to_dict()["title"] == title


def test_explicit_title_wins() -> None:
    """A given title is used as is, even an empty one."""
    assert Problem(400, title="Nope").to_dict()["title"] == "Nope"
    assert Problem(400, title="").to_dict()["title"] == ""


@pytest.mark.parametrize("status", [0, 99, 600, -1])
def test_status_must_be_an_http_status(status: int) -> None:
    """A status outside 100 to 599 is refused."""
    with pytest.raises(ValueError, match="not an HTTP status"):
        Problem(status)


@pytest.mark.parametrize(
    "name", ["type", "title", "status", "detail", "instance", "invalid_params"]
)
def test_extensions_cannot_redefine_standard_members(name: str) -> None:
    """An extension with a standard member's name would overwrite it, so it is refused."""
    with pytest.raises(ValueError, match=name):
        Problem(400, extensions={name: "x"})
    with pytest.raises(ValueError, match=name):
        Problem(400).with_extensions(**{name: "x"})


def test_with_extensions_returns_a_copy() -> None:
    """with_extensions adds or replaces extension members and leaves the original alone."""
    original = Problem(
        412,
        detail="d",
        title="t",
        type="urn:x",
        instance="/i",
        invalid_params=(InvalidParam("a", "b"),),
        extensions={"one": 1, "two": 2},
    )
    extended = original.with_extensions(two=22, three=3)
    assert extended.to_dict() == {
        "type": "urn:x",
        "title": "t",
        "status": 412,
        "detail": "d",
        "instance": "/i",
        "invalid_params": [{"name": "a", "reason": "b"}],
        "one": 1,
        "two": 22,
        "three": 3,
    }
    assert original.extensions == {"one": 1, "two": 2}


def test_invalid_param_to_dict() -> None:
    """Each invalid_params entry is a name and a reason."""
    assert InvalidParam("limit", "must be 1-100").to_dict() == {
        "name": "limit",
        "reason": "must be 1-100",
    }


def test_problems_are_frozen() -> None:
    """A problem is a value: it cannot be changed after it is built."""
    with pytest.raises(AttributeError):
        Problem(400).status = 500  # type: ignore[misc]


ISSUED = datetime(2025, 1, 1, tzinfo=UTC)
CLOCK = VectorClock({"node-a": 3, "node-b": 1})

FROM_ERROR: list[tuple[errors.OptimistError, dict[str, Any]]] = [
    (
        errors.OptimistError("boom"),
        {"status": 500, "title": "Internal Server Error", "detail": "boom"},
    ),
    (
        errors.InvalidInput("limit", "0", "must be 1-100"),
        {
            "status": 400,
            "detail": "invalid limit: must be 1-100",
            "invalid_params": [{"name": "limit", "reason": "must be 1-100"}],
        },
    ),
    (
        errors.InvalidEntityTag("If-Match", "x", "expected an entity-tag", 0),
        {
            "status": 400,
            "detail": "invalid If-Match: expected an entity-tag at position 0",
            "invalid_params": [
                {"name": "If-Match", "reason": "expected an entity-tag at position 0"}
            ],
        },
    ),
    (
        errors.InvalidVectorClock("If-Match", "{", "not JSON"),
        {
            "status": 400,
            "detail": "invalid If-Match: not JSON",
            "invalid_params": [{"name": "If-Match", "reason": "not JSON"}],
        },
    ),
    (
        errors.InvalidToken("cursor", "t", "unusable"),
        {
            "status": 400,
            "detail": "invalid cursor: unusable",
            "invalid_params": [{"name": "cursor", "reason": "unusable"}],
        },
    ),
    (
        errors.MalformedToken("cursor", "t", "bad base64"),
        {
            "status": 400,
            "detail": "invalid cursor: bad base64",
            "invalid_params": [{"name": "cursor", "reason": "bad base64"}],
        },
    ),
    (
        errors.TamperedToken("cursor", "t", "bad signature"),
        {
            "status": 400,
            "detail": "invalid cursor: bad signature",
            "invalid_params": [{"name": "cursor", "reason": "bad signature"}],
        },
    ),
    (
        errors.ForeignToken("cursor", "t", "another query"),
        {
            "status": 400,
            "detail": "invalid cursor: another query",
            "invalid_params": [{"name": "cursor", "reason": "another query"}],
        },
    ),
    (
        errors.ExpiredToken("cursor", "t", ISSUED, timedelta(hours=1)),
        {
            "status": 410,
            "title": "Gone",
            "detail": "invalid cursor: issued 2025-01-01T00:00:00+00:00, older than 1:00:00",
            "invalid_params": [
                {"name": "cursor", "reason": "issued 2025-01-01T00:00:00+00:00, older than 1:00:00"}
            ],
        },
    ),
    (
        errors.PreconditionError("not evaluated"),
        {"status": 500, "detail": "not evaluated"},
    ),
    (
        errors.PreconditionRequired("PATCH", "If-Match"),
        {
            "status": 428,
            "title": "Precondition Required",
            "detail": "PATCH requires an If-Match header: fetch the resource, then resend with "
            "If-Match set to its ETag",
            "invalid_params": [{"name": "If-Match", "reason": "required"}],
        },
    ),
    (
        errors.PreconditionFailed(
            EntityTag("abc", weak=True),
            "Resource has been modified. Please fetch the latest version and retry.",
        ),
        {
            "status": 412,
            "title": "Precondition Failed",
            "detail": "Resource has been modified. Please fetch the latest version and retry.",
            "current_etag": 'W/"abc"',
        },
    ),
    (
        errors.PreconditionFailed(None),
        {
            "status": 412,
            "detail": "precondition failed: the resource has changed",
            "current_etag": None,
        },
    ),
    (
        errors.VersionConflict(CLOCK.to_etag(), Ordering.BEFORE, CLOCK),
        {
            "status": 412,
            "detail": "the vector clock sent is stale: the resource has been modified since",
            "conflict": "stale",
            "current_etag": str(CLOCK.to_etag()),
            "current_vector_clock": {"node-a": 3, "node-b": 1},
        },
    ),
    (
        errors.VersionConflict(None, Ordering.CONCURRENT, CLOCK),
        {
            "status": 412,
            "detail": "the vector clock sent is concurrent with the stored one",
            "conflict": "concurrent",
            "current_etag": None,
            "current_vector_clock": {"node-a": 3, "node-b": 1},
        },
    ),
    (errors.NotModified(EntityTag("a")), {"status": 304, "detail": "not modified"}),
    (
        errors.InvalidCredentials("the token has expired", "invalid_token"),
        {"status": 401, "title": "Unauthorized", "detail": "the token has expired"},
    ),
    (
        errors.ResourceNotFound("project", "proj_1"),
        {"status": 404, "detail": "project proj_1 not found"},
    ),
    (
        errors.ResourceExists("feature flag", "dark-mode"),
        {"status": 409, "title": "Conflict", "detail": "feature flag dark-mode already exists"},
    ),
    (
        errors.GuardFailed("project", "proj_1", {"status": "accepted"}),
        {"status": 409, "detail": "project proj_1 is not in a state that allows this write"},
    ),
    (
        errors.MergeConflict({}, {}, {}, [("name",), ("tags", "0"), ()]),
        {
            "status": 409,
            "detail": "conflicting changes at name, tags/0, <root>",
            "conflicting_paths": ["name", "tags/0", ""],
        },
    ),
    (
        errors.InvalidIdempotencyKey("Idempotency-Key", "abc", "expected '\"'", 0),
        {
            "status": 400,
            "detail": "invalid Idempotency-Key: expected '\"' at position 0",
            "invalid_params": [
                {"name": "Idempotency-Key", "reason": "expected '\"' at position 0"}
            ],
        },
    ),
    (errors.IdempotencyError("misused"), {"status": 500, "detail": "misused"}),
    (
        errors.IdempotencyKeyRequired("POST", "/projects"),
        {
            "status": 400,
            "detail": "POST /projects requires an Idempotency-Key header: send a new random "
            "key (a UUID) with each new request, and the same key when resending it",
            "invalid_params": [{"name": "Idempotency-Key", "reason": "required"}],
        },
    ),
    (
        errors.IdempotencyKeyInFlight("k1"),
        {
            "status": 409,
            "detail": "a request with this Idempotency-Key is still being processed: resend it "
            "unchanged once that one has been answered",
            "idempotency_key": "k1",
        },
    ),
    (
        errors.IdempotencyKeyReused("k1", ["body"]),
        {
            "status": 422,
            "detail": "this Idempotency-Key was used for another request (it differs in body): "
            "use a new key for a new request",
            "idempotency_key": "k1",
            "differences": ["body"],
        },
    ),
    (
        errors.CorruptRecord("response", "not JSON"),
        {"status": 500, "detail": "A stored record could not be read."},
    ),
    (
        errors.ServiceUnavailable("connection refused: 10.0.0.7:5432", retry_after=5),
        {
            "status": 503,
            "title": "Service Unavailable",
            "detail": "The database is temporarily unavailable; try again in 5 seconds.",
            "retry_after": 5,
        },
    ),
    (
        errors.ResponseError("GET", "/x", 503, {"detail": "down"}),
        {"status": 503, "detail": "GET /x answered 503: down"},
    ),
]


@pytest.mark.parametrize(
    ("error", "expected"),
    FROM_ERROR,
    ids=[
        "OptimistError",
        "InvalidInput",
        "InvalidEntityTag",
        "InvalidVectorClock",
        "InvalidToken",
        "MalformedToken",
        "TamperedToken",
        "ForeignToken",
        "ExpiredToken",
        "PreconditionError",
        "PreconditionRequired",
        "PreconditionFailed",
        "PreconditionFailed-no-tag",
        "VersionConflict-stale",
        "VersionConflict-concurrent",
        "NotModified",
        "InvalidCredentials",
        "ResourceNotFound",
        "ResourceExists",
        "GuardFailed",
        "MergeConflict",
        "InvalidIdempotencyKey",
        "IdempotencyError",
        "IdempotencyKeyRequired",
        "IdempotencyKeyInFlight",
        "IdempotencyKeyReused",
        "CorruptRecord",
        "ServiceUnavailable",
        "ResponseError",
    ],
)
def test_from_error(error: errors.OptimistError, expected: dict[str, Any]) -> None:
    """Each error becomes about:blank with its status, phrase, detail and its fields."""
    body = from_error(error).to_dict()
    title = expected.pop("title", None)
    assert body.pop("title") == (title or from_error(error).resolved_title)
    assert body == {"type": "about:blank", **expected}
    assert json.loads(json.dumps(body)) == body


def test_from_error_covers_every_error_class() -> None:
    """The table above holds an instance of every class errors.py exports."""
    assert {type(error).__name__ for error, _ in FROM_ERROR} == set(errors.__all__)


def test_service_unavailable_waits_one_second_in_the_singular() -> None:
    """A one-second wait reads as one second, and the reason stays out of the problem."""
    problem = from_error(errors.ServiceUnavailable("lock timeout")).to_dict()
    assert problem["detail"] == "The database is temporarily unavailable; try again in 1 second."
    assert "lock timeout" not in json.dumps(problem)


def test_from_error_uses_the_instance_status() -> None:
    """A policy's 400 for a missing precondition is the problem's status and title."""
    error = errors.PreconditionRequired(
        "DELETE", "If-Match", 400, "If-Match header required for DELETE operations"
    )
    assert from_error(error).to_dict() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "If-Match header required for DELETE operations",
        "invalid_params": [{"name": "If-Match", "reason": "required"}],
    }


@pytest.mark.parametrize(
    ("value", "limit", "shown"),
    [("abc", 3, "abc"), ("abcd", 3, "abc…"), ("", 0, ""), ("x" * 81, 80, "x" * 80 + "…")],
    ids=["at-the-limit", "over-the-limit", "empty", "default-limit"],
)
def test_shorten_cuts_only_what_is_over_the_limit(value: str, limit: int, shown: str) -> None:
    """shorten keeps a value within its limit and cuts a longer one, marking the cut."""
    assert shorten(value, limit) == shown

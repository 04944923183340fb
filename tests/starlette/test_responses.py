"""optimist.starlette.responses: problem+json, 304s and validators, and how a library
error's problem is worded for the request it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from optimist.errors import (
    NotModified,
    OptimistError,
    PreconditionFailed,
    ResourceNotFound,
    ServiceUnavailable,
    VersionConflict,
)
from optimist.etag import EntityTag
from optimist.problem import Problem
from optimist.starlette import (
    INTERNAL_DETAIL,
    INVALID_CLOCK_DETAIL,
    ConditionalProfile,
    ProblemResponse,
    clock_state,
    error_response,
    not_modified,
    problem_response,
    set_etag,
)
from optimist.vclock import VectorClock
from tests.starlette.support import PROBLEM

TAG = EntityTag("v1")
MODIFIED = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
STORED = VectorClock({"node-a": 2, "node-b": 1})
PROFILE = ConditionalProfile(
    failed_detail=lambda current, sent: f"expected {current}, got {sent}",
    failed_extensions={"retry": "fetch the resource, then resend"},
)


def request(*headers: tuple[bytes, bytes]) -> Request:
    """A PUT with ``headers``."""
    return Request({"type": "http", "method": "PUT", "headers": list(headers)})


def body(response: Response) -> dict[str, object]:
    """The JSON body of ``response``."""
    document: dict[str, object] = json.loads(bytes(response.body))
    return document


def test_problem_json_is_ascii_even_for_lone_surrogates() -> None:
    """A problem echoing hostile text still renders (as escaped ASCII JSON)."""
    response = ProblemResponse({"detail": "bad \ud800 é"}, status_code=400)
    assert response.body == b'{"detail":"bad \\ud800 \\u00e9"}'


def test_problem_response_has_the_problem_media_type_and_headers() -> None:
    """problem_response answers the problem's status as problem+json with the headers."""
    response = problem_response(Problem(409, "taken"), {"X-Why": "taken"})
    assert (response.status_code, response.headers["content-type"]) == (409, PROBLEM)
    assert response.headers["x-why"] == "taken"
    assert body(response)["detail"] == "taken"


def test_set_etag_writes_both_validators() -> None:
    """set_etag sets ETag, and Last-Modified as an IMF-fixdate."""
    response = Response()
    set_etag(response, TAG, last_modified=MODIFIED)
    assert response.headers["etag"] == '"v1"'
    assert response.headers["last-modified"] == "Wed, 15 Jan 2025 10:30:00 GMT"


def test_not_modified_has_validators_and_no_body() -> None:
    """not_modified is a 304 with the validators, the headers given and no body."""
    response = not_modified(TAG, last_modified=MODIFIED, headers={"Vary": "Accept"})
    assert (response.status_code, response.body) == (304, b"")
    assert (response.headers["etag"], response.headers["vary"]) == ('"v1"', "Accept")


def test_not_modified_error_is_a_304_with_its_fields() -> None:
    """A NotModified answers 304 with its ETag and the fields it carries."""
    response = error_response(NotModified(TAG, {"Cache-Control": "max-age=60"}))
    assert response.status_code == 304
    assert response.headers["etag"] == '"v1"'
    assert response.headers["cache-control"] == "max-age=60"


def test_412_of_an_unbound_request_is_the_error_own() -> None:
    """Without a bound profile, a 412 says the error's detail, with the ETag header."""
    response = error_response(PreconditionFailed(TAG, "changed"), request())
    assert body(response) == {
        "type": "about:blank",
        "title": "Precondition Failed",
        "status": 412,
        "detail": "changed",
        "current_etag": '"v1"',
    }
    assert response.headers["etag"] == '"v1"'


def test_412_of_a_bound_request_is_worded_by_the_profile() -> None:
    """A bound request's profile words the 412 and adds its extension members."""
    bound = request((b"if-match", b'"v0"'))
    PROFILE.bind(bound)
    problem = body(error_response(PreconditionFailed(TAG), bound))
    assert problem["detail"] == 'expected "v1", got "v0"'
    assert problem["retry"] == "fetch the resource, then resend"


def test_version_conflict_keeps_its_detail() -> None:
    """A vector-clock conflict keeps its own detail and members, and the ETag header."""
    bound = request()
    PROFILE.bind(bound)
    conflict = VersionConflict(STORED.to_etag(), VectorClock({"node-a": 1}).compare(STORED), STORED)
    response = error_response(conflict, bound)
    problem = body(response)
    assert response.headers["etag"] == '"node-a=2;node-b=1"'
    assert problem["conflict"] == "stale"
    assert problem["current_vector_clock"] == {"node-a": 2, "node-b": 1}
    assert str(problem["detail"]).startswith("the vector clock sent is stale")


def test_412_of_a_request_with_an_invalid_clock_says_so() -> None:
    """Any 412 of a request whose If-Match was no clock has the seed's detail."""
    bound = request((b"if-match", b"garbage"))
    PROFILE.bind(bound)
    clock_state(bound).invalid = True
    response = error_response(PreconditionFailed(TAG), bound)
    assert body(response)["detail"] == INVALID_CLOCK_DETAIL
    assert response.headers["etag"] == '"v1"'


def test_an_invalid_clock_does_not_reword_other_errors() -> None:
    """The invalid clock's detail is for 412s only: a 404 keeps its own."""
    refused = request()
    clock_state(refused).invalid = True
    problem = body(error_response(ResourceNotFound("session", "s1"), refused))
    assert problem["detail"] == "session s1 not found"


def test_5xx_library_error_shows_nothing_of_its_cause() -> None:
    """A library error standing for a 5xx is a problem with the generic detail."""
    response = error_response(OptimistError("internal state: secret"))
    assert response.status_code == 500
    assert body(response)["detail"] == INTERNAL_DETAIL


def test_service_unavailable_is_a_503_with_retry_after() -> None:
    """RFC 9110 §15.6.4: the database's outage is a 503 that says when to come back."""
    response = error_response(ServiceUnavailable("cannot connect", retry_after=4), request())
    assert (response.status_code, response.headers["retry-after"]) == (503, "4")
    assert response.headers["content-type"] == PROBLEM
    assert body(response)["detail"] == (
        "The database is temporarily unavailable; try again in 4 seconds."
    )


def test_service_unavailable_shows_nothing_of_its_cause() -> None:
    """Neither the reason nor anything that came with it reaches the client."""
    secret = "cannot connect to postgresql://root:s3cret@db.internal:5432/app"
    response = error_response(ServiceUnavailable(secret), request())
    for hidden in ("s3cret", "db.internal", "cannot connect"):
        assert hidden not in bytes(response.body).decode()


def test_a_401_carries_its_errors_challenge() -> None:
    """RFC 9110 §11.6.1: a 401 whose error names a challenge sends it in WWW-Authenticate."""
    error = OptimistError("who are you?")
    error.status, error.challenge = 401, 'Bearer realm="notes"'
    response = error_response(error)
    assert (response.status_code, response.headers["www-authenticate"]) == (
        401,
        'Bearer realm="notes"',
    )


def test_other_errors_carry_no_challenge() -> None:
    """A challenge on an error that is no 401 is not sent."""
    error = ResourceNotFound("notes", "1")
    error.challenge = 'Bearer realm="notes"'
    assert "www-authenticate" not in error_response(error).headers

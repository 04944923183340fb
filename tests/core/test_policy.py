"""Precondition policies: required / optional / ignored per method, 400 vs 428, details."""

from __future__ import annotations

import copy
import doctest
import pickle
from datetime import UTC, datetime
from typing import TypedDict

import pytest

from optimist import policy as policy_module
from optimist import problem
from optimist.errors import PreconditionRequired
from optimist.etag import EntityTag
from optimist.policy import PreconditionPolicy, Requirement
from optimist.preconditions import Malformed, Preconditions

REQUIRED, OPTIONAL, IGNORED = Requirement.REQUIRED, Requirement.OPTIONAL, Requirement.IGNORED
IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
MOMENT = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


class Fields(TypedDict, total=False):
    """Raw precondition field values, as keyword arguments of Preconditions.parse."""

    if_match: str
    if_none_match: str
    if_modified_since: str
    if_unmodified_since: str


def test_module_docstring_example_runs() -> None:
    """The example in policy.py's docstring is a passing doctest."""
    result = doctest.testmod(policy_module, raise_on_error=False, verbose=False)
    assert result.attempted >= 3
    assert result.failed == 0


def test_seed_002_delete_body_exactly() -> None:
    """Seed 002's 400 for a DELETE without If-Match is produced member for member."""
    policy = PreconditionPolicy(
        {"DELETE": REQUIRED},
        missing_status=400,
        missing_detail="If-Match header required for DELETE operations",
        satisfied_by=("If-Match",),
    )
    with pytest.raises(PreconditionRequired) as caught:
        policy.apply("DELETE", Preconditions())
    body = problem.from_error(caught.value).to_dict()
    assert body == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "If-Match header required for DELETE operations",
        "invalid_params": [{"name": "If-Match", "reason": "required"}],
    }
    assert list(body) == ["type", "title", "status", "detail", "invalid_params"]


@pytest.mark.parametrize(
    ("method", "requirement"),
    [("DELETE", REQUIRED), ("delete", REQUIRED), ("PATCH", IGNORED), ("PUT", OPTIONAL)],
    ids=["listed", "case-folded", "listed-mixed-case-key", "default"],
)
def test_requirement_per_method(method: str, requirement: Requirement) -> None:
    """Listed methods get their requirement, in any case; others the default."""
    policy = PreconditionPolicy({"DELETE": REQUIRED, "Patch": IGNORED})
    assert policy.requirement(method) is requirement


def test_default_can_be_changed() -> None:
    """default applies to every method the mapping does not name."""
    policy = PreconditionPolicy({"GET": OPTIONAL}, default=REQUIRED)
    assert policy.requirement("PUT") is REQUIRED
    assert policy.requirement("GET") is OPTIONAL


def test_method_names_are_normalised_once() -> None:
    """The method table is stored upper-cased, and the policy copies and pickles."""
    policy = PreconditionPolicy({"delete": REQUIRED, "Patch": IGNORED})
    assert policy.methods == {"DELETE": REQUIRED, "PATCH": IGNORED}
    assert copy.deepcopy(policy) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy


SENT = Preconditions(if_match=(EntityTag("a"),))


@pytest.mark.parametrize(
    ("requirement", "preconditions", "expected"),
    [
        (OPTIONAL, Preconditions(), Preconditions()),
        (OPTIONAL, SENT, SENT),
        (REQUIRED, SENT, SENT),
        (IGNORED, SENT, Preconditions()),
        (IGNORED, Preconditions(if_match=Malformed("x", "bad")), Preconditions()),
    ],
    ids=[
        "optional-missing-unconditional",
        "optional-sent-evaluated",
        "required-sent-evaluated",
        "ignored-sent-dropped",
        "ignored-malformed-dropped",
    ],
)
def test_apply(
    requirement: Requirement, preconditions: Preconditions, expected: Preconditions
) -> None:
    """apply returns what to evaluate: the fields, or nothing for an ignored method."""
    policy = PreconditionPolicy({"PUT": requirement})
    assert policy.apply("PUT", preconditions) == expected


@pytest.mark.parametrize("status", [400, 428], ids=["seed-400", "rfc-6585-428"])
def test_required_and_missing_raises_with_the_configured_status(status: int) -> None:
    """A missing required precondition raises PreconditionRequired with 400 or 428."""
    policy = PreconditionPolicy({"PUT": REQUIRED}, missing_status=status)
    with pytest.raises(PreconditionRequired) as caught:
        policy.apply("put", Preconditions())
    assert caught.value.status == status
    assert caught.value.method == "PUT"
    assert caught.value.header == "If-Match"


def test_missing_status_defaults_to_428() -> None:
    """Without configuration the answer is RFC 6585's 428 with a how-to-resubmit detail."""
    with pytest.raises(PreconditionRequired) as caught:
        PreconditionPolicy({"PATCH": REQUIRED}).apply("PATCH", Preconditions())
    assert caught.value.status == 428
    assert caught.value.detail == (
        "PATCH requires an If-Match header: fetch the resource, then resend with "
        "If-Match set to its ETag"
    )


@pytest.mark.parametrize("status", [200, 409, 412, 500])
def test_other_missing_statuses_are_refused(status: int) -> None:
    """Only 400 and 428 answer a missing precondition."""
    with pytest.raises(ValueError, match="400 or 428"):
        PreconditionPolicy(missing_status=status)


@pytest.mark.parametrize(
    ("template", "satisfied_by", "detail"),
    [
        ("{header} header required for {method} operations", ("If-Match",), None),
        (
            "send {header} with {method}",
            ("If-Unmodified-Since", "If-Match"),
            "send If-Unmodified-Since with DELETE",
        ),
        ("no placeholders", ("If-Match",), "no placeholders"),
        ("{method}{method}", ("If-Match",), "DELETEDELETE"),
    ],
    ids=["seed-wording", "header-is-first-of-satisfied-by", "plain", "repeated"],
)
def test_detail_template(template: str, satisfied_by: tuple[str, ...], detail: str | None) -> None:
    """missing_detail is formatted with the upper-cased method and the first header."""
    policy = PreconditionPolicy(
        {"DELETE": REQUIRED}, missing_detail=template, satisfied_by=satisfied_by
    )
    with pytest.raises(PreconditionRequired) as caught:
        policy.apply("delete", Preconditions())
    assert caught.value.detail == (detail or "If-Match header required for DELETE operations")
    assert caught.value.header == satisfied_by[0]


@pytest.mark.parametrize(
    "template",
    ["{resource} missing", "{0}", "{", "{method.name}", "{method:d}", "{method!z}"],
    ids=["unknown-name", "positional", "unbalanced", "attribute", "bad-format-spec", "bad-conv"],
)
def test_bad_detail_templates_are_refused_at_construction(template: str) -> None:
    """A template the request path could not format fails when the policy is built."""
    with pytest.raises(ValueError, match="missing_detail"):
        PreconditionPolicy(missing_detail=template)


@pytest.mark.parametrize(
    ("satisfied_by", "fields", "satisfied"),
    [
        (("If-Match", "If-Unmodified-Since"), {"if_match": '"a"'}, True),
        (("If-Match", "If-Unmodified-Since"), {"if_unmodified_since": IMF}, True),
        (("If-Match", "If-Unmodified-Since"), {"if_none_match": "*"}, False),
        (("If-Match", "If-Unmodified-Since"), {"if_modified_since": IMF}, False),
        (("If-Match",), {"if_match": "not a tag"}, True),
        (("If-Match",), {"if_match": ""}, True),
        (("If-Match",), {"if_unmodified_since": IMF}, False),
        (("If-Unmodified-Since",), {"if_unmodified_since": "not a date"}, False),
        (("If-Unmodified-Since",), {"if_unmodified_since": IMF}, True),
        (("If-Match", "If-None-Match"), {"if_none_match": "*"}, True),
        (("If-None-Match",), {"if_none_match": "garbage"}, True),
        (("If-None-Match",), {"if_match": '"a"'}, False),
    ],
    ids=[
        "default-if-match",
        "default-if-unmodified-since",
        "default-not-if-none-match",
        "default-not-if-modified-since",
        "malformed-if-match-counts",
        "empty-if-match-counts",
        "if-match-only-not-date",
        "invalid-date-does-not-count",
        "date-only",
        "create-if-none-match",
        "malformed-if-none-match-counts",
        "if-none-match-only-not-if-match",
    ],
)
def test_satisfied_by(satisfied_by: tuple[str, ...], fields: Fields, satisfied: bool) -> None:
    """A required method is satisfied by any of the named fields, malformed tags included."""
    policy = PreconditionPolicy({"PUT": REQUIRED}, satisfied_by=satisfied_by)
    preconditions = Preconditions.parse(**fields)
    if satisfied:
        assert policy.apply("PUT", preconditions) == preconditions
    else:
        with pytest.raises(PreconditionRequired):
            policy.apply("PUT", preconditions)


@pytest.mark.parametrize(
    ("satisfied_by", "message"),
    [
        ((), "nothing"),
        (("If-Modified-Since",), "If-Modified-Since"),
        (("ETag", "If-Match"), "ETag"),
    ],
    ids=["empty", "read-only-field", "not-a-precondition"],
)
def test_satisfied_by_refuses_fields_that_cannot_protect_a_write(
    satisfied_by: tuple[str, ...], message: str
) -> None:
    """Only If-Match, If-Unmodified-Since and If-None-Match can satisfy a requirement."""
    with pytest.raises(ValueError, match=message):
        PreconditionPolicy(satisfied_by=satisfied_by)


def test_satisfied_by_the_parsed_date() -> None:
    """A valid If-Unmodified-Since satisfies the default policy with its parsed value kept."""
    policy = PreconditionPolicy({"PATCH": REQUIRED})
    applied = policy.apply("PATCH", Preconditions.parse(if_unmodified_since=IMF))
    assert applied.if_unmodified_since == MOMENT

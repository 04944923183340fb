"""Conditional requests (RFC 9110 §13): parse the four precondition fields once, then
evaluate them in the RFC's order against the current state of a resource.

Two ways to evaluate, with one meaning:

* :func:`evaluate` takes a :class:`ResourceState` that was just read and returns an
  :class:`Outcome` (proceed / 304 / 412). Right for GET and HEAD.
* :meth:`Preconditions.write_condition` turns the same rules into a backend-free
  :class:`~optimist.conditions.Condition` that a store evaluates *inside* its write
  (an UPDATE's WHERE clause), so nothing can change between the check and the write.
  For every method that writes (not GET, HEAD, CONNECT, OPTIONS or TRACE) and every
  state, ``condition.holds(state)`` is true exactly when ``evaluate(...)`` says
  ``PROCEED``; the tests hold the two to that.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from optimist import conditions as c
from optimist.conditions import ResourceState
from optimist.errors import InvalidEntityTag
from optimist.etag import ANY, Comparison, TagMatch, matches_any, parse_list
from optimist.httpdate import parse_http_date

__all__ = [
    "Malformed",
    "Outcome",
    "Preconditions",
    "ResourceState",
    "evaluate",
]

_SAFE_READS = frozenset({"GET", "HEAD"})
# RFC 9110 §13.2.1: methods that neither select nor modify a representation.
_UNCONDITIONAL = frozenset({"CONNECT", "OPTIONS", "TRACE"})


class Outcome(enum.Enum):
    """What a request's preconditions decide (RFC 9110 §13.2.2)."""

    PROCEED = "proceed"
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


@dataclass(frozen=True, slots=True)
class Malformed:
    """A precondition field that was sent but does not parse; ``reason`` says why."""

    value: str
    reason: str


#: An If-Match / If-None-Match as received: absent, parsed, or malformed.
TagField: TypeAlias = TagMatch | Malformed | None


def _second(moment: datetime) -> datetime:
    # HTTP-date has one-second resolution: compare modification times at that grain.
    # An aware time keeps its zone (aware times compare across zones): converting one
    # at an end of the range to UTC could leave the range.
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.replace(microsecond=0)


def _tag_field(value: str | None, field: str, allow_bare: bool) -> TagField:
    if value is None:
        return None
    try:
        return parse_list(value, field=field, allow_bare=allow_bare)
    except InvalidEntityTag as error:
        return Malformed(value, error.reason)


def _date_field(value: str | None) -> datetime | None:
    # RFC 9110 §13.1.3, §13.1.4: a recipient MUST ignore an invalid HTTP-date.
    return None if value is None else parse_http_date(value)


@dataclass(frozen=True, slots=True)
class Preconditions:
    """The precondition fields of one request, parsed once at the boundary."""

    if_match: TagField = None
    if_none_match: TagField = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        if_modified_since: str | None = None,
        if_unmodified_since: str | None = None,
        allow_bare: bool = False,
    ) -> Preconditions:
        """Parse raw field values; never raises: a malformed value is kept as :class:`Malformed`."""
        return cls(
            if_match=_tag_field(if_match, "If-Match", allow_bare),
            if_none_match=_tag_field(if_none_match, "If-None-Match", allow_bare),
            if_modified_since=_date_field(if_modified_since),
            if_unmodified_since=_date_field(if_unmodified_since),
        )

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, allow_bare: bool = False) -> Preconditions:
        """Parse from a header mapping whose keys are lower-case (as ASGI and httpx give them)."""
        return cls.parse(
            if_match=headers.get("if-match"),
            if_none_match=headers.get("if-none-match"),
            if_modified_since=headers.get("if-modified-since"),
            if_unmodified_since=headers.get("if-unmodified-since"),
            allow_bare=allow_bare,
        )

    @property
    def is_conditional(self) -> bool:
        """Whether any precondition was sent (malformed ones included)."""
        return (
            self.if_match is not None
            or self.if_none_match is not None
            or self.if_modified_since is not None
            or self.if_unmodified_since is not None
        )

    def write_condition(self, comparison: Comparison = Comparison.STRONG) -> c.Condition:
        """The condition an unsafe request's write must meet, as data a store can compile.

        Mirrors the path of :func:`evaluate` for a method that writes a representation
        (anything but GET, HEAD, and the CONNECT, OPTIONS and TRACE that §13.2.1 leaves
        unconditional), step by step.
        """
        parts: list[c.Condition] = []
        # RFC 9110 §13.2.2 step 1: If-Match.
        if self.if_match is not None:
            parts.append(_if_match_condition(self.if_match, comparison))
        # Step 2: If-Unmodified-Since, only without If-Match.
        elif self.if_unmodified_since is not None:
            parts.append(c.UnmodifiedSince(_second(self.if_unmodified_since)))
        # Step 3: If-None-Match (weak comparison, §13.1.2).
        if self.if_none_match is not None:
            parts.append(_if_none_match_condition(self.if_none_match))
        # Step 4 (If-Modified-Since) applies to GET and HEAD only.
        return c.all_of(parts)


def _if_match_condition(field: TagMatch | Malformed, comparison: Comparison) -> c.Condition:
    if isinstance(field, Malformed):
        return c.NEVER  # a malformed If-Match evaluates false
    if field is ANY:
        return c.EXISTS  # §13.1.1: "*" is true if a current representation exists
    return c.TagIn(field, comparison)


def _if_none_match_condition(field: TagMatch | Malformed) -> c.Condition:
    if isinstance(field, Malformed):
        return c.ALWAYS  # a malformed If-None-Match evaluates true
    if field is ANY:
        return c.ABSENT  # §13.1.2: "*" is false if a current representation exists
    return c.Not(c.TagIn(field, Comparison.WEAK))


def _if_match_holds(
    field: TagMatch | Malformed, state: ResourceState, comparison: Comparison
) -> bool:
    # A list of tags, the usual field, is decided without building its condition.
    if isinstance(field, tuple):
        current = state.etag
        return state.exists and current is not None and matches_any(field, current, comparison)
    return _if_match_condition(field, comparison).holds(state)


def _if_none_match_holds(field: TagMatch | Malformed, state: ResourceState) -> bool:
    if isinstance(field, tuple):
        current = state.etag
        return not (
            state.exists and current is not None and matches_any(field, current, Comparison.WEAK)
        )
    return _if_none_match_condition(field).holds(state)


def evaluate(
    preconditions: Preconditions,
    method: str,
    state: ResourceState,
    *,
    comparison: Comparison = Comparison.STRONG,
) -> Outcome:
    """Evaluate the preconditions for ``method`` against ``state`` (RFC 9110 §13.2.2).

    ``comparison`` is the function If-Match uses: strong per §13.1.1, or weak for a
    resource profile that documents the deviation. If-None-Match is always weak.
    Method names are compared upper-cased, as the integrations receive them.
    """
    method = method.upper()
    # §13.2.1: a server MUST ignore the precondition fields for these methods.
    if method in _UNCONDITIONAL:
        return Outcome.PROCEED
    read = method in _SAFE_READS
    # Step 1: If-Match present → if false, 412.
    if preconditions.if_match is not None:
        if not _if_match_holds(preconditions.if_match, state, comparison):
            return Outcome.PRECONDITION_FAILED
    # Step 2: no If-Match, If-Unmodified-Since present → if false, 412.
    elif preconditions.if_unmodified_since is not None:
        since = c.UnmodifiedSince(_second(preconditions.if_unmodified_since))
        if not since.holds(state):
            return Outcome.PRECONDITION_FAILED
    # Step 3: If-None-Match present → if false, 304 for GET/HEAD, else 412.
    if preconditions.if_none_match is not None:
        if not _if_none_match_holds(preconditions.if_none_match, state):
            return Outcome.NOT_MODIFIED if read else Outcome.PRECONDITION_FAILED
    # Step 4: GET/HEAD, no If-None-Match, If-Modified-Since present → if false, 304.
    # §13.1.3: ignored when there is no modification date to compare with.
    elif (
        read
        and preconditions.if_modified_since is not None
        and state.exists
        and state.last_modified is not None
        and _second(state.last_modified) <= _second(preconditions.if_modified_since)
    ):
        return Outcome.NOT_MODIFIED
    # Step 5: perform the method.
    return Outcome.PROCEED

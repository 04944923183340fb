"""Conditional requests (RFC 9110 §13): parse the four precondition fields once, then
evaluate them in the RFC's order against the current state of a resource.

Two ways to evaluate, with one meaning:

* :func:`evaluate` takes a :class:`ResourceState` that was just read and returns an
  :class:`Outcome` (proceed / 304 / 412). Right for GET and HEAD.
* :meth:`Preconditions.write_condition` turns the same rules into a backend-free
  :class:`~optimist.conditions.Condition` that a store evaluates *inside* its write
  (an UPDATE's WHERE clause), so nothing can change between the check and the write.
  For every unsafe method and every state, ``condition.holds(state)`` is true exactly
  when ``evaluate(...)`` says ``PROCEED``; the tests hold the two to that.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeAlias

from optimist import conditions as c
from optimist.conditions import ResourceState
from optimist.errors import InvalidEntityTag
from optimist.etag import ANY, Comparison, TagMatch, parse_list

__all__ = [
    "Malformed",
    "Outcome",
    "Preconditions",
    "ResourceState",
    "evaluate",
    "http_date",
    "parse_http_date",
]

_SAFE_READS = frozenset({"GET", "HEAD"})


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


def parse_http_date(value: str) -> datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7) as an aware UTC datetime, or None if invalid.

    All three formats of §5.6.7 (IMF-fixdate, rfc850-date, asctime-date) are accepted,
    as a recipient MUST; the standard library's RFC 5322 parser reads them all.
    """
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # asctime-date carries no zone; HTTP-date is always GMT (§5.6.7).
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def http_date(moment: datetime) -> str:
    """Format a datetime as an IMF-fixdate (RFC 9110 §5.6.7), e.g. for Last-Modified."""
    moment = _utc(moment)
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _second(moment: datetime) -> datetime:
    # HTTP-date has one-second resolution: compare modification times at that grain.
    return _utc(moment).replace(microsecond=0)


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

        Mirrors the unsafe-method path of :func:`evaluate`, step by step.
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
    """
    read = method.upper() in _SAFE_READS
    # Step 1: If-Match present → if false, 412.
    if preconditions.if_match is not None:
        if not _if_match_condition(preconditions.if_match, comparison).holds(state):
            return Outcome.PRECONDITION_FAILED
    # Step 2: no If-Match, If-Unmodified-Since present → if false, 412.
    elif preconditions.if_unmodified_since is not None:
        since = c.UnmodifiedSince(_second(preconditions.if_unmodified_since))
        if not since.holds(state):
            return Outcome.PRECONDITION_FAILED
    # Step 3: If-None-Match present → if false, 304 for GET/HEAD, else 412.
    if preconditions.if_none_match is not None:
        if not _if_none_match_condition(preconditions.if_none_match).holds(state):
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

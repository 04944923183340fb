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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeAlias

from optimist import conditions as c
from optimist.conditions import ResourceState
from optimist.errors import InvalidEntityTag
from optimist.etag import ANY, Comparison, TagMatch, matches_any, parse_list

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
# RFC 9110 §13.2.1: methods that neither select nor modify a representation.
_UNCONDITIONAL = frozenset({"CONNECT", "OPTIONS", "TRACE"})
_OWS = " \t"


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


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY = "(?:" + "|".join(_DAY_NAMES) + ")"
_DAY_LONG = "(?:" + "|".join(_DAY_NAMES_LONG) + ")"
_MONTH = "(?P<month>" + "|".join(_MONTHS) + ")"
_TIME = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"

# RFC 9110 §5.6.7: the three formats, case-sensitive, always GMT. Digits are spelled
# [0-9] because \d would also match digits of other scripts.
_IMF_FIXDATE: Final = re.compile(
    f"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"
)
_RFC850_DATE: Final = re.compile(
    f"{_DAY_LONG}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"
)
_ASCTIME_DATE: Final = re.compile(
    f"{_DAY} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})"
)


def parse_http_date(value: str, *, now: datetime | None = None) -> datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7) as an aware UTC datetime, or None if invalid.

    All three formats are accepted, as a recipient MUST: IMF-fixdate
    (``Sun, 06 Nov 1994 08:49:37 GMT``), rfc850-date (``Sunday, 06-Nov-94 08:49:37 GMT``)
    and asctime-date (``Sun Nov  6 08:49:37 1994``). Anything else is invalid, including
    other RFC 5322 dates, zones other than GMT and lists of dates: §13.1.3 and §13.1.4
    tell a recipient to ignore such a field, which the caller does on None. The day
    name is checked against the grammar, not against the date. ``now`` (default: the
    current time) anchors the two-digit year of an rfc850-date.
    """
    text = value.strip(_OWS)
    if match := _IMF_FIXDATE.fullmatch(text) or _ASCTIME_DATE.fullmatch(text):
        year = int(match["year"])
    elif match := _RFC850_DATE.fullmatch(text):
        year = _rfc850_year(int(match["year"]), now or datetime.now(UTC))
    else:
        return None
    try:
        return datetime(
            year,
            _MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError:  # a date the calendar does not have, such as 30 Feb
        return None


def _rfc850_year(two_digits: int, now: datetime) -> int:
    # RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the
    # future is the most recent year in the past with the same last two digits.
    this_year = _utc(now).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def http_date(moment: datetime) -> str:
    """Format a datetime as an IMF-fixdate (RFC 9110 §5.6.7), e.g. for Last-Modified.

    Names come from fixed tables, not ``strftime``, whose ``%a`` and ``%b`` follow the
    process locale.
    """
    moment = _utc(moment)
    return (
        f"{_DAY_NAMES[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


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

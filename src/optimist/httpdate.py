"""HTTP dates (RFC 9110 §5.6.7): read all three formats, write IMF-fixdate.

Last-Modified, If-Modified-Since, If-Unmodified-Since, Date and Retry-After carry
them. Reading never raises: a field that is not an HTTP-date is None, which RFC 9110
§13.1.3 and §13.1.4 tell a recipient to treat as if the field were not sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

__all__ = ["http_date", "parse_http_date", "utc"]

_OWS = " \t"

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
    this_year = utc(now).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def http_date(moment: datetime) -> str:
    """Format a datetime as an IMF-fixdate (RFC 9110 §5.6.7), e.g. for Last-Modified.

    Names come from fixed tables, not ``strftime``, whose ``%a`` and ``%b`` follow the
    process locale.
    """
    moment = utc(moment)
    return (
        f"{_DAY_NAMES[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already, as HTTP dates are."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

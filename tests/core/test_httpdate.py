"""HTTP dates (RFC 9110 §5.6.7): the three formats read, IMF-fixdate written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimist.httpdate import http_date, parse_http_date

# The example date of RFC 9110 §5.6.7 in its three formats.
EXAMPLE = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
RFC850 = "Sunday, 06-Nov-94 08:49:37 GMT"
ASCTIME = "Sun Nov  6 08:49:37 1994"


@pytest.mark.parametrize(
    "value",
    [IMF, RFC850, ASCTIME, "Sun Nov 06 08:49:37 1994", f" {IMF}\t"],
    ids=["imf-fixdate", "rfc850-date", "asctime-date", "asctime-two-digit-day", "ows-around"],
)
def test_parse_http_date_reads_the_three_formats(value: str) -> None:
    """A recipient MUST accept all three formats of §5.6.7."""
    assert parse_http_date(value) == EXAMPLE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "sun, 06 nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        f"{IMF}, {IMF}",
        f"{IMF},",
        "Sun, 30 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, \u0660\u0666 Nov 1994 08:49:37 GMT",
        f"{IMF}\n",
        "1994-11-06T08:49:37Z",
    ],
    ids=[
        "empty",
        "garbage",
        "lower-case",
        "zone-utc",
        "zone-offset",
        "no-day-name",
        "one-digit-day",
        "two-digit-year-imf",
        "no-seconds",
        "long-day-name-in-imf",
        "short-day-name-in-rfc850",
        "asctime-single-space",
        "asctime-with-zone",
        "list-of-dates",
        "trailing-comma",
        "no-such-day",
        "hour-24",
        "minute-60",
        "year-zero",
        "arabic-indic-digits",
        "trailing-newline",
        "iso-8601",
    ],
)
def test_parse_http_date_rejects_everything_else(value: str) -> None:
    """Anything that is not one of the three formats is invalid (§13.1.3, §13.1.4: ignored)."""
    assert parse_http_date(value) is None


@pytest.mark.parametrize(
    ("two_digits", "now_year", "year"),
    [("94", 2025, 1994), ("25", 2025, 2025), ("75", 2025, 2075), ("76", 2025, 1976)],
    ids=["past", "this-year", "fifty-years-ahead", "over-fifty-years-ahead"],
)
def test_rfc850_two_digit_year(two_digits: str, now_year: int, year: int) -> None:
    """§5.6.7: a year more than 50 years ahead is read as the most recent past one."""
    now = datetime(now_year, 6, 1, tzinfo=UTC)
    value = f"Sunday, 06-Nov-{two_digits} 08:49:37 GMT"
    assert parse_http_date(value, now=now) == EXAMPLE.replace(year=year)


def test_rfc850_year_defaults_to_now() -> None:
    """Without ``now`` the current time anchors the two-digit year."""
    now = datetime.now(UTC)
    value = f"Sunday, 06-Nov-{(now.year + 51) % 100:02d} 08:49:37 GMT"
    parsed = parse_http_date(value)
    assert parsed is not None
    assert now.year - 50 <= parsed.year <= now.year


def test_http_date_formats_an_imf_fixdate() -> None:
    """http_date writes the IMF-fixdate, in GMT, dropping the fraction of a second."""
    assert http_date(EXAMPLE.replace(microsecond=999_999)) == IMF
    assert http_date(EXAMPLE.replace(tzinfo=None)) == IMF
    assert http_date(EXAMPLE.astimezone(timezone(timedelta(hours=-5)))) == IMF


@given(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    )
)
def test_http_date_round_trips(moment: datetime) -> None:
    """parse_http_date(http_date(t)) is t at one-second resolution."""
    assert parse_http_date(http_date(moment)) == moment.replace(microsecond=0)

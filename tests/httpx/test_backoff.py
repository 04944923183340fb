"""Backoff and Retry-After: bounded, jittered delays, and RFC 9110 §10.2.3 field values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimist.httpdate import http_date
from optimist.httpx import Backoff, parse_retry_after

_NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (" 12 ", 12.0),
        (http_date(_NOW + timedelta(seconds=90)), 90.0),
        (http_date(_NOW - timedelta(seconds=90)), 0.0),
        ("Wed, 15 Jan 2025 10:30:05 GMT", 5.0),
        ("-1", None),
        ("1.5", None),
        ("٣", None),
        ("soon", None),
        (None, None),
    ],
    ids=["seconds", "zero", "whitespace", "date-ahead", "date-past", "imf-fixdate",
         "negative", "fraction", "arabic-digit", "garbage", "absent"],
)  # fmt: skip
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; anything else is ignored."""
    assert parse_retry_after(value, _NOW) == seconds


def test_backoff_is_capped_and_jittered_within_bounds() -> None:
    """Retry n waits initial * multiplier ** (n - 1) plus jitter, never above the maximum."""
    highest = Backoff(initial=0.1, maximum=1.0, jitter=0.5, uniform=lambda a, b: b)
    lowest = Backoff(initial=0.1, maximum=1.0, jitter=0.5, uniform=lambda a, b: a)
    assert [lowest.delay(n) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    assert [highest.delay(n) for n in (1, 2, 3)] == pytest.approx([0.6, 0.7, 0.9])
    assert highest.delay(10_000) == 1.0


def test_default_backoff_jitters_each_delay() -> None:
    """Without an injected source, delays are spread between the bounds."""
    delays = {Backoff().delay(1) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.02 <= d <= 0.12 for d in delays)


@pytest.mark.parametrize(
    "options",
    [{"initial": -1.0}, {"jitter": -0.1}, {"multiplier": 0.5}],
    ids=["negative-initial", "negative-jitter", "shrinking"],
)
def test_backoff_rejects_nonsense(options: dict[str, Any]) -> None:
    """Negative durations and a shrinking multiplier are refused."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**options)

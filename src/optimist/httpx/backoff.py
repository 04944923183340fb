"""How long to wait before trying again: bounded, jittered exponential backoff and Retry-After.

The approach is stamina's (hynek/stamina): start small, grow exponentially, cap, add
random jitter so that clients which failed together do not retry together, and give
up after a bounded number of attempts. When the server says how long to wait
(``Retry-After``, RFC 9110 §10.2.3) its word replaces the computed backoff.

Nothing here sleeps: :class:`Attempts` returns the delay, and the client's driver
sleeps with the function it was given, so tests record delays instead of waiting.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from optimist.httpdate import parse_http_date

__all__ = ["Attempts", "Backoff", "parse_retry_after"]

# The exponent stops growing long before the cap matters; this keeps ``**`` finite.
_MAX_EXPONENT = 64


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The waiting policy between attempts.

    Retry ``n`` (counting from 1) waits ``min(maximum, initial * multiplier ** (n - 1)
    + uniform(0, jitter))`` seconds. A ``Retry-After`` longer than ``max_retry_after``
    ends the retries instead of stalling the caller that long. ``uniform`` and ``now``
    are injectable for deterministic tests.
    """

    initial: float = 0.02
    maximum: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.1
    max_retry_after: float = 60.0
    # Jitter spreads retries and protects nothing: the standard generator suits it.
    uniform: Callable[[float, float], float] = field(
        default=random.uniform, repr=False, compare=False
    )
    now: Callable[[], datetime] = field(default=_now, repr=False, compare=False)

    def __post_init__(self) -> None:
        if min(self.initial, self.maximum, self.jitter, self.max_retry_after) < 0:
            raise ValueError("backoff durations cannot be negative")
        if self.multiplier < 1:
            raise ValueError("the backoff multiplier must be at least 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        exponent = min(max(retry - 1, 0), _MAX_EXPONENT)
        grown = self.initial * self.multiplier**exponent
        return min(self.maximum, grown + self.uniform(0.0, self.jitter))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """The seconds a ``Retry-After`` field value asks for, or None if absent or invalid.

    RFC 9110 §10.2.3: ``Retry-After = HTTP-date / delay-seconds``. A date in the past
    asks for no wait at all.
    """
    if value is None:
        return None
    value = value.strip()
    # RFC 9110 §10.2.3: delay-seconds = 1*DIGIT (ASCII digits only).
    if value.isascii() and value.isdigit():
        return float(int(value))
    moment = parse_http_date(value)
    if moment is None:
        return None
    return max(0.0, (moment - now).total_seconds())


class Attempts:
    """The attempts of one operation: counts them against ``limit`` and says how long to
    wait before the next, or that there is no next."""

    __slots__ = ("_backoff", "limit", "used")

    def __init__(self, backoff: Backoff, limit: int) -> None:
        if limit < 1:
            raise ValueError("an operation needs at least one attempt")
        self._backoff = backoff
        self.limit = limit
        self.used = 1

    def next_delay(self, response: httpx.Response) -> float | None:
        """Seconds to wait before trying again after ``response``, or None to give up."""
        if self.used >= self.limit:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._backoff.now())
        if retry_after is not None and retry_after > self._backoff.max_retry_after:
            return None
        self.used += 1
        if retry_after is not None:
            return retry_after
        return self._backoff.delay(self.used - 1)

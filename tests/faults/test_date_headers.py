"""Hostile dates in every date-bearing request header, on every route: never a 5xx.

The service reads two request header fields that carry an HTTP-date (RFC 9110 §5.6.7):
If-Modified-Since and If-Unmodified-Since. Hypothesis sends them, one, both or repeated,
with the calendar's extremes (year 1, 9999-12-31 23:59:59, a second before the epoch),
leap seconds, absurd and negative years, zones other than GMT, impossible fields,
garbage and very long values, beside no If-Match, ``*``, the current ETag or another
one, to every operation of the OpenAPI document (and HEAD beside each GET), on a
resource made for the example. Whatever the dates, the answer is below 500.

In process, on the ASGI app (:func:`tests.support.service.running`); bounded to a few
dozen examples per operation.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimist.httpdate import parse_http_date
from optimist.service.app import create_app
from optimist.service.settings import Settings
from tests.support.admin import csrf_token, identity
from tests.support.service import Service, running, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: The request header fields the service reads as HTTP-dates.
DATE_FIELDS: Final = ("If-Modified-Since", "If-Unmodified-Since")

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS: Final = tuple(
    f"{day}day" for day in ("Mon", "Tues", "Wednes", "Thurs", "Fri", "Satur", "Sun")
)
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_EXAMPLE: Final = "Sun, 06 Nov 1994 08:49:37 GMT"

#: One value of each kind this module's docstring names: the table every route gets.
NAMED: Final = (
    "Mon, 01 Jan 0001 00:00:00 GMT",  # the first second datetime has
    "Fri, 31 Dec 9999 23:59:59 GMT",  # the last
    "Wed, 31 Dec 1969 23:59:59 GMT",  # a second before the epoch
    "Wed, 31 Dec 1969 00:00:00 GMT",
    "Sat, 31 Dec 2016 23:59:60 GMT",  # a leap second
    "Fri, 31 Dec 9999 23:59:60 GMT",  # a leap second after the last second
    "Sat, 01 Jan 0000 00:00:00 GMT",  # year 0
    "Sat, 01 Jan 10000 00:00:00 GMT",  # absurd years
    "Sun, 06 Nov 99999999999999999999999999 08:49:37 GMT",
    "Sun, 06 Nov -1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:37 UTC",  # zones other than GMT
    "Sun, 06 Nov 1994 08:49:37 +2359",
    "Friday, 31-Dec-99 23:59:59 GMT",  # rfc850-date, two-digit year
    "Mon Jan  1 00:00:00 0001",  # asctime-date
    f"{_EXAMPLE}, {_EXAMPLE}",  # a list
    "",
    "1e309",  # garbage
    _EXAMPLE * 300,  # very long
)

#: More, that Hypothesis draws from beside its own.
EXTREMES: Final = (
    *NAMED,
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Sat, 30 Jun 2012 23:59:60 GMT",
    "Sun, 06 Nov 1994 08:49:37 +0000",
    "Sun, 06 Nov 1994 08:49:37 -0000",
    "Sun, 06 Nov 1994 08:49:37 PST",
    "Sun, 06 Nov 1994 08:49:37 Z",
    "Sun, 06 Nov 1994 08:49:37 gmt",
    "Sun, 06 Nov 1994 08:49:37",
    "Sun, 31 Feb 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT",
    "Sun, 06 Nov 1994 99:99:99 GMT",
    "Sun, 00 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Monday, 01-Jan-00 00:00:00 GMT",
    "Sunday, 06-Nov-94 23:59:60 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Fri Dec 31 23:59:59 9999",
    "Fri Dec 31 23:59:60 9999",
    "1994-11-06T08:49:37Z",
    "0001-01-01T00:00:00+14:00",
    " ",
    "0",
    "-1",
    "NaN",
    "-9223372036854775809",
    "now",
    "\t" + _EXAMPLE + "\t",
    "9" * 10_000,
)


#: RFC 9110 §5.6.7's three formats as templates: IMF-fixdate, rfc850-date, asctime-date.
FORMATS: Final = {
    "imf": "{day_name}, {day:02d} {month} {year:04d} {clock} {zone}",
    "rfc850": "{long_day_name}, {day:02d}-{month}-{short_year:02d} {clock} GMT",
    "asctime": "{day_name} {month} {day:2d} {clock} {year:04d}",
}


def _date(
    form: str,
    weekday: int,
    day: int,
    month: str,
    year: int,
    clock: tuple[int, int, int],
    zone: str = "GMT",
) -> str:
    """A date in format ``form`` of :data:`FORMATS`, whatever its fields' values."""
    hour, minute, second = clock
    return FORMATS[form].format(
        day_name=_DAYS[weekday],
        long_day_name=_LONG_DAYS[weekday],
        day=day,
        month=month,
        year=year,
        short_year=year % 100,
        clock=f"{hour:02d}:{minute:02d}:{second:02d}",
        zone=zone,
    )


def _written(form: str, moment: datetime) -> str:
    """``moment`` in format ``form``, as a sender would write it."""
    clock = (moment.hour, moment.minute, moment.second)
    month = _MONTHS[moment.month - 1]
    return _date(form, moment.weekday(), moment.day, month, moment.year, clock)


_clock = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
_month = st.sampled_from(_MONTHS) | st.sampled_from(["jan", "JAN", "Foo", "13", ""])
_year = st.integers(0, 10_000) | st.integers(-(10**20), 10**20)
_zone = st.sampled_from(["GMT", "UTC", "+0000", "-0000", "+2359", "-1200", "PST", "Z", ""])
_moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))

#: Any moment datetime can hold, written in each of the three formats.
_valid = st.builds(_written, st.sampled_from(sorted(FORMATS)), _moments)
#: Dates whose every field may be out of range, in the three formats' shapes.
_shaped = st.builds(
    _date,
    st.sampled_from(sorted(FORMATS)),
    st.integers(0, 6),
    st.integers(0, 99),
    _month,
    _year,
    _clock,
    _zone,
)
#: Header-safe text: tab, printable ASCII and Latin-1, as a server would pass it on.
_garbage = st.text(
    st.characters(codec="latin-1", categories=["L", "M", "N", "P", "S", "Zs"]) | st.just("\t"),
    max_size=300,
)
_long = st.integers(1_000, 16_000).map(lambda size: (_EXAMPLE * (size // len(_EXAMPLE) + 1))[:size])
DATES: Final = st.one_of(st.sampled_from(EXTREMES), _valid, _shaped, _garbage, _long)


@dataclass(frozen=True)
class Target:
    """Where an example's request goes: its path, the resource's ETag there, if any."""

    path: str
    etag: str | None = None


@dataclass(frozen=True)
class Operation:
    """How to reach one operation: its target's maker, and a body it accepts."""

    target: Callable[[Service, dict[str, str]], Any]
    body: Callable[[], dict[str, Any] | None] = lambda: None


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _new_user() -> dict[str, Any]:
    return {"email": f"{_unique()}@example.com", "name": "Dated", "role": "viewer"}


def _new_role() -> dict[str, Any]:
    return {"name": f"role-{_unique()}", "permissions": ["users:read"]}


def _new_flag() -> dict[str, Any]:
    return {"key": f"flag-{_unique()}", "enabled": True, "rollout_percentage": 10}


def _new_session() -> dict[str, Any]:
    return {"building_id": str(uuid.uuid4())}


def _fixed(path: str) -> Callable[[Service, dict[str, str]], Any]:
    async def target(_service: Service, _admin: dict[str, str]) -> Target:
        return Target(path)

    return target


def _created(
    collection: str, body: Callable[[], dict[str, Any]], key: Callable[[dict[str, Any]], str]
) -> Callable[[Service, dict[str, str]], Any]:
    """A target made for the example: a new resource in ``collection``, its path and ETag."""

    async def target(service: Service, admin: dict[str, str]) -> Target:
        response = await service.client.post(collection, json=body(), headers=admin)
        assert response.status_code == 201, response.text
        return Target(f"{collection}/{key(response.json())}", response.headers["ETag"])

    return target


_USER = _created("/admin/users", _new_user, lambda body: body["id"])
_ROLE = _created("/admin/roles", _new_role, lambda body: body["id"])
_FLAG = _created("/admin/feature-flags", _new_flag, lambda body: body["key"])
_PROJECT = _created(
    "/projects", lambda: {"name": "dated"}, lambda body: body["result"]["project_id"]
)
_SESSION = _created("/v1/tests/sessions", _new_session, lambda body: body["id"])

#: Every operation of the service's OpenAPI document: (method, path template) → how.
OPERATIONS: Final[dict[tuple[str, str], Operation]] = {
    ("get", "/healthz"): Operation(_fixed("/healthz")),
    ("get", "/readyz"): Operation(_fixed("/readyz")),
    ("get", "/admin/csrf-token"): Operation(_fixed("/admin/csrf-token")),
    ("get", "/admin/users"): Operation(_fixed("/admin/users")),
    ("post", "/admin/users"): Operation(_fixed("/admin/users"), _new_user),
    ("get", "/admin/users/{user_id}"): Operation(_USER),
    ("put", "/admin/users/{user_id}"): Operation(_USER, _new_user),
    ("patch", "/admin/users/{user_id}"): Operation(_USER, lambda: {"name": "Renamed"}),
    ("delete", "/admin/users/{user_id}"): Operation(_USER),
    ("get", "/admin/roles"): Operation(_fixed("/admin/roles")),
    ("post", "/admin/roles"): Operation(_fixed("/admin/roles"), _new_role),
    ("get", "/admin/roles/{role_id}"): Operation(_ROLE),
    ("patch", "/admin/roles/{role_id}"): Operation(_ROLE, lambda: {"permissions": []}),
    ("get", "/admin/feature-flags"): Operation(_fixed("/admin/feature-flags")),
    ("post", "/admin/feature-flags"): Operation(_fixed("/admin/feature-flags"), _new_flag),
    ("get", "/admin/feature-flags/{key}"): Operation(_FLAG),
    ("patch", "/admin/feature-flags/{key}"): Operation(_FLAG, lambda: {"enabled": False}),
    ("get", "/projects"): Operation(_fixed("/projects")),
    ("post", "/projects"): Operation(_fixed("/projects"), lambda: {"name": "dated"}),
    ("get", "/projects/{project_id}"): Operation(_PROJECT),
    ("put", "/projects/{project_id}"): Operation(_PROJECT, lambda: {"name": "redated"}),
    ("delete", "/projects/{project_id}"): Operation(_PROJECT),
    ("get", "/v1/tests/sessions"): Operation(_fixed("/v1/tests/sessions")),
    ("post", "/v1/tests/sessions"): Operation(_fixed("/v1/tests/sessions"), _new_session),
    ("get", "/v1/tests/sessions/{session_id}"): Operation(_SESSION),
    ("put", "/v1/tests/sessions/{session_id}"): Operation(
        _SESSION, lambda: {**_new_session(), "status": "in_progress"}
    ),
    ("patch", "/v1/tests/sessions/{session_id}"): Operation(_SESSION, lambda: {"notes": "n"}),
    ("delete", "/v1/tests/sessions/{session_id}"): Operation(_SESSION),
}

# The document is the application's own; building it needs no database.
_DOCUMENT: Final = create_app(Settings(database_url="sqlite+aiosqlite://", node_id="d")).openapi()
DOCUMENTED: Final = sorted(
    (method, path) for path, item in _DOCUMENT["paths"].items() for method in item
)
#: Each documented operation, and HEAD beside each GET.
REQUESTS: Final = sorted(
    [(method.upper(), path) for method, path in DOCUMENTED]
    + [("HEAD", path) for method, path in DOCUMENTED if method == "get"]
)


def test_every_documented_operation_has_a_way_to_reach_it() -> None:
    """The table of operations covers the OpenAPI document, so no route goes unfuzzed."""
    assert sorted(OPERATIONS) == DOCUMENTED


#: What If-Match holds: nothing, ``*``, the target's current ETag, or tags it never had.
IF_MATCH: Final = ("none", "*", "current", '"0000000000000000"', 'W/"0000000000000000"')


@dataclass
class Dated:
    """The service for these tests, the admin's headers, and a target per operation."""

    service: Service
    admin: dict[str, str]
    #: The resource each operation works on until a DELETE removes it.
    targets: dict[tuple[str, str], Target] = field(default_factory=dict)

    async def send(
        self, method: str, path: str, dates: Mapping[str, Sequence[str]], if_match: str
    ) -> httpx.Response:
        """``method`` on ``path``'s target with the ``dates`` per field and ``if_match``
        (one of :data:`IF_MATCH`); the target follows what the request did to it."""
        key = (method.lower() if method != "HEAD" else "get", path)
        operation = OPERATIONS[key]
        target = self.targets.get(key) or await operation.target(self.service, self.admin)
        headers = [(name.encode(), value.encode()) for name, value in self.admin.items()]
        for name, values in dates.items():
            headers += [(name.encode(), value.encode("latin-1")) for value in values]
        tag = target.etag if if_match == "current" else if_match
        if tag is not None and tag != "none":
            headers.append((b"If-Match", tag.encode()))
        response = await self.service.client.request(
            method, target.path, headers=headers, json=operation.body()
        )
        if method == "DELETE" and response.is_success:
            self.targets.pop(key, None)
        elif response.is_success and "ETag" in response.headers and target.etag is not None:
            self.targets[key] = Target(target.path, response.headers["ETag"])
        else:
            self.targets[key] = target
        return response


@pytest.fixture(scope="module")
async def dated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dated]:
    """The service on a SQLite file of its own, with the demo data."""
    path: Path = tmp_path_factory.mktemp("dated") / "dated.db"
    async with running(settings_for(f"sqlite+aiosqlite:///{path}")) as service:
        token = await csrf_token(service.client)
        yield Dated(service, {**identity(), "X-CSRF-Token": token})


def _failure(response: httpx.Response, dates: Mapping[str, Sequence[str]], if_match: str) -> str:
    shown = {name: [value[:80] for value in values] for name, values in dates.items()}
    return f"{response.status_code} for {shown}, If-Match {if_match}: {response.text[:500]}"


@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=[f"{m} {p}" for m, p in REQUESTS])
async def test_no_named_extreme_date_makes_a_server_error(
    method: str, path: str, dated: Dated
) -> None:
    """Each hand-picked extreme, in each date field alone, with and without the current
    If-Match, is answered below 500."""
    for value in NAMED:
        for name in DATE_FIELDS:
            for if_match in ("none", "current"):
                dates = {name: [value]}
                response = await dated.send(method, path, dates, if_match)
                assert response.status_code < 500, _failure(response, dates, if_match)


# Everything is drawn before the coroutine runs: a draw inside it that overran the
# example's budget would raise Hypothesis' StopTest, a BaseException, through AnyIO's
# runner, which stops the runner.
@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=[f"{m} {p}" for m, p in REQUESTS])
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    modified_since=st.lists(DATES, max_size=2),
    unmodified_since=st.lists(DATES, max_size=2),
    if_match=st.sampled_from(IF_MATCH),
)
async def test_no_date_in_a_request_header_makes_a_server_error(
    method: str,
    path: str,
    dated: Dated,
    modified_since: list[str],
    unmodified_since: list[str],
    if_match: str,
) -> None:
    """Whatever the date fields hold, once, twice or not at all, with or without If-Match,
    the answer is below 500."""
    dates = {"If-Modified-Since": modified_since, "If-Unmodified-Since": unmodified_since}
    response = await dated.send(method, path, dates, if_match)
    assert response.status_code < 500, _failure(response, dates, if_match)


@given(moment=_moments, form=st.sampled_from(["imf", "asctime"]))
@settings(max_examples=50, deadline=None)
def test_the_generated_dates_in_range_are_read_as_dates(moment: datetime, form: str) -> None:
    """The strategies' well-formed dates are HTTP-dates the service reads, not ignores
    (rfc850-date's two-digit year is left out: it names another century at times)."""
    assert parse_http_date(_written(form, moment)) == moment.replace(microsecond=0, tzinfo=UTC)

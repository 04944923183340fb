"""Sending, through both clients: waiting out a busy server, sending again what
transport lost only when that is safe, and the Idempotency-Key of each attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from optimist.errors import IdempotencyKeyInFlight, ResponseError
from optimist.httpdate import http_date
from optimist.httpx import PUT, Backoff, Created, OnConflict
from optimist.httpx.backoff import Attempts
from optimist.httpx.flows import TRANSPORT_ATTEMPTS, Sleep, resendable, send
from optimist.idempotency import parse
from optimist.merge import JSON
from tests.httpx.keyed_api import KeyedServer
from tests.support.fake_api import BASE, Rig, setting

# -- a busy server -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
async def test_busy_server_is_retried_after_the_seconds_it_asks(rig: Rig, status: int) -> None:
    """A 429 or 503 with ``Retry-After: 3`` is retried after exactly 3 seconds."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(httpx.Response(status, headers={"Retry-After": "3"}))
    got = await rig.client().get("/items/a")
    assert got.document["size"] == 1
    assert rig.delays == [3.0]


@pytest.mark.anyio
async def test_retry_after_http_date_is_honoured(rig: Rig) -> None:
    """A Retry-After HTTP-date is waited for until that moment."""
    now = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
    rig.server.store("a", {"size": 1})
    later = http_date(now + timedelta(seconds=7))
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": later}))
    await rig.client(backoff=Backoff(jitter=0.0, now=lambda: now)).get("/items/a")
    assert rig.delays == [7.0]


@pytest.mark.anyio
async def test_retry_after_beyond_the_limit_gives_up(rig: Rig) -> None:
    """A wait longer than ``max_retry_after`` ends the operation instead of stalling it."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": "3600"}))
    with pytest.raises(ResponseError) as raised:
        await rig.client().get("/items/a")
    assert raised.value.status == 503
    assert rig.delays == []


@pytest.mark.anyio
async def test_busy_retries_share_the_attempt_bound(rig: Rig) -> None:
    """A server that stays busy is tried ``max_attempts`` times, then a ResponseError."""
    rig.server.queued.extend(httpx.Response(429) for _ in range(5))
    with pytest.raises(ResponseError) as raised:
        await rig.client(max_attempts=3).get("/items/a")
    assert raised.value.status == 429
    assert len(rig.server.requests) == 3
    assert rig.delays == pytest.approx([0.02, 0.04])


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
async def test_busy_answer_to_an_unconditional_write_is_not_resent(rig: Rig, status: int) -> None:
    """Keys off: an unconditional POST answered 503 (or 429) is not sent again."""
    rig.server.queued.append(httpx.Response(status, headers={"Retry-After": "1"}))
    client = rig.client(unconditional=True, idempotency=False)
    with pytest.raises(ResponseError) as raised:
        await client.create("/items/b", {"n": 1}, method="POST")
    assert raised.value.status == status
    assert (len(rig.server.sent("POST")), rig.delays) == (1, [])


@pytest.mark.anyio
async def test_busy_answer_to_a_conditional_create_is_resent(rig: Rig) -> None:
    """A create-if-absent answered 503 is sent again after Retry-After: it cannot apply twice."""
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": "2"}))
    await rig.client().create("/items/b", {"n": 1})
    assert rig.server.doc("b")["n"] == 1
    assert rig.delays == [2.0]


BUSY_REQUESTS = [
    ("GET", {}, True),
    ("HEAD", {}, True),
    ("PATCH", {"If-Match": '"1"'}, True),
    ("PUT", {"If-None-Match": "*"}, True),
    ("DELETE", {"If-Match": '"1"'}, True),
    ("POST", {"Idempotency-Key": '"k"'}, True),
    ("POST", {}, False),
    ("PATCH", {}, False),
    ("DELETE", {}, False),
]


@pytest.mark.parametrize(
    ("method", "headers", "waits"),
    BUSY_REQUESTS,
    ids=["get", "head", "conditional-patch", "create-if-absent", "conditional-delete",
         "keyed-post", "post", "unconditional-patch", "unconditional-delete"],
)  # fmt: skip
def test_a_503_is_waited_out_only_for_what_may_be_resent(
    method: str, headers: dict[str, str], waits: bool
) -> None:
    """send() pauses for Retry-After before a resendable request, and returns the 503 to
    any other at once (RFC 9110 §15.6.4)."""
    request = httpx.Request(method, BASE, headers=headers)
    flow = send(request, Attempts(Backoff(), 3))
    assert next(flow) is request
    busy = httpx.Response(503, headers={"Retry-After": "5"})
    if waits:
        assert flow.send(busy) == Sleep(5.0)
    else:
        with pytest.raises(StopIteration) as returned:
            flow.send(busy)
        assert returned.value.value is busy


# -- transport failures ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dropped_read_is_sent_again(rig: Rig) -> None:
    """A GET whose connection drops is sent again: reads are safe to repeat."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = ["GET"]
    client = rig.client()
    assert (await client.get("/items/a")).document["n"] == 1
    assert [r.method for r in rig.server.requests] == ["GET", "GET"]


@pytest.mark.anyio
async def test_dropped_conditional_write_is_resent_and_applies_once(rig: Rig) -> None:
    """A conditional write lost after it applied is resent; its 412 resolves to done."""
    rig.server.store("a", {"n": 1, "m": 1})
    rig.server.drop = ["PATCH"]
    client = rig.client()
    await client.update("/items/a", setting(n=2))
    document = (await client.get("/items/a")).document
    assert (document["n"], document["m"]) == (2, 1)
    writes = [r for r in rig.server.requests if r.method == "PATCH"]
    assert all("if-match" in r.headers for r in writes)
    assert len(writes) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_dropped_unconditional_write_is_not_resent(rig: Rig, method: str) -> None:
    """Keys off: an unconditional write lost in transport is sent once, its error raised."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = [method]
    client = rig.client(unconditional=True, idempotency=False)
    write = (
        client.update("/items/a", setting(n=2))
        if method == "PATCH"
        else client.create("/items/b", {"n": 1}, method="POST")
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await write
    writes = rig.server.sent(method)
    assert len(writes) == 1
    assert not {"if-match", "if-none-match"} & set(writes[0].headers)


@pytest.mark.anyio
async def test_transport_resends_are_bounded(rig: Rig) -> None:
    """A request lost in transport every time is sent TRANSPORT_ATTEMPTS times, then fails."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = ["GET"] * TRANSPORT_ATTEMPTS
    with pytest.raises(httpx.RemoteProtocolError):
        await rig.client().get("/items/a")
    assert [r.method for r in rig.server.requests] == ["GET"] * TRANSPORT_ATTEMPTS


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("PATCH", {"If-Match": '"1"'}, True),
        ("PUT", {"If-None-Match": "*"}, True),
        ("DELETE", {"If-Match": '"1"'}, True),
        ("POST", {"Idempotency-Key": '"k"'}, True),
        ("PATCH", {"Idempotency-Key": '"k"'}, True),
        ("POST", {}, False),
        ("PATCH", {}, False),
    ],
    ids=["get", "head", "conditional-patch", "create-if-absent", "conditional-delete",
         "keyed-post", "keyed-patch", "post", "unconditional-patch"],
)  # fmt: skip
def test_only_safe_conditional_or_keyed_requests_are_resendable(
    method: str, headers: dict[str, str], expected: bool
) -> None:
    """Safe methods, conditional writes and keyed writes may be resent; no other write."""
    assert resendable(httpx.Request(method, BASE, headers=headers)) is expected


# -- idempotency keys --------------------------------------------------------------------------

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


async def _every_operation(rig: Rig, *, idempotency: bool = True) -> None:
    rig.server.store("a", {"n": 1})
    client = rig.client(idempotency=idempotency)
    await client.get("/items/a")
    await client.update("/items/a", setting(n=2))
    await client.update("/items/a", setting(n=3), write=PUT)
    await client.create("/items/b", {"n": 1})
    await client.create("/items/c", {"n": 1}, method="POST")
    await client.delete("/items/b")
    await client.items("/items")


@pytest.mark.anyio
async def test_every_write_carries_a_key_and_no_read_does(rig: Rig) -> None:
    """PUT, PATCH, POST and DELETE carry an Idempotency-Key; GET carries none."""
    await _every_operation(rig)
    methods = {r.method for r in rig.server.requests}
    assert methods == {"GET", "PUT", "PATCH", "POST", "DELETE"}
    for request in rig.server.requests:
        key = request.headers.get("Idempotency-Key")
        assert (key is not None) is (request.method in _UNSAFE), request.method


@pytest.mark.anyio
async def test_each_write_has_a_key_of_its_own(rig: Rig) -> None:
    """The keys of different writes differ, and each is one valid sf-string."""
    await _every_operation(rig)
    sent = [key for key in rig.server.idempotency_keys() if key is not None]
    assert len(set(sent)) == len(sent) == 5
    assert all(parse(key) is not None for key in sent)


@pytest.mark.anyio
async def test_keys_off_sends_no_key(rig: Rig) -> None:
    """With ``idempotency=False`` no request carries an Idempotency-Key."""
    await _every_operation(rig, idempotency=False)
    assert set(rig.server.idempotency_keys()) == {None}


def _busy_before_write(rig: Rig, response: httpx.Response) -> Callable[[JSON], JSON]:
    def change(document: JSON) -> JSON:
        rig.server.queued.append(response)  # answers the write, before the server sees it
        return {**document, "n": document["n"] + 1}

    return change


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503], ids=["429", "503"])
async def test_busy_write_is_resent_with_the_same_key(rig: Rig, status: int) -> None:
    """A write answered 429 or 503 is resent after Retry-After with the key it had."""
    rig.server.store("a", {"n": 1})
    busy = httpx.Response(status, headers={"Retry-After": "2"})
    await rig.client().update("/items/a", _busy_before_write(rig, busy))
    first, second = rig.server.idempotency_keys("PATCH")
    assert first is not None
    assert first == second
    assert (rig.delays, rig.server.doc("a")["n"]) == ([2.0], 2)


@pytest.mark.anyio
async def test_dropped_write_is_resent_with_the_same_key(rig: Rig) -> None:
    """A write whose connection drops is resent with the key it had."""
    rig.server.store("a", {"n": 1})
    rig.server.drop = ["PATCH"]
    await rig.client().update("/items/a", setting(n=2))
    first, second = rig.server.idempotency_keys("PATCH")
    assert first is not None
    assert first == second


@pytest.mark.anyio
async def test_dropped_unconditional_write_with_a_key_is_resent_and_applies_once(
    rig: Rig,
) -> None:
    """Keys on: an unconditional POST lost after it applied is resent and replayed."""
    rig.server = KeyedServer()
    rig.server.drop = ["POST"]
    created = await rig.client(unconditional=True).create("/items/b", {"n": 1}, method="POST")
    assert isinstance(created, Created)
    first, second = rig.server.idempotency_keys("POST")
    assert first is not None
    assert first == second
    assert created.replayed
    assert rig.server.doc("b")["version"] == 1  # one write, the first copy's


@pytest.mark.anyio
async def test_busy_answer_to_an_unconditional_keyed_write_is_resent(rig: Rig) -> None:
    """Keys on: an unconditional POST answered 503 is resent after Retry-After."""
    rig.server.queued.append(httpx.Response(503, headers={"Retry-After": "1"}))
    await rig.client(unconditional=True).create("/items/b", {"n": 1}, method="POST")
    assert (len(rig.server.sent("POST")), rig.delays) == (2, [1.0])
    assert rig.server.doc("b")["n"] == 1


@pytest.mark.anyio
async def test_key_in_flight_is_waited_out_and_resent_with_the_same_key(rig: Rig) -> None:
    """The 409 of a key still in flight is resent after Retry-After, with that key."""
    rig.server = KeyedServer()
    rig.server.store("a", {"n": 1})
    rig.server.in_flight = 2
    await rig.client().update("/items/a", {"n": 2}, on_conflict=OnConflict.REAPPLY)
    keys = rig.server.idempotency_keys("PATCH")
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert rig.server.statuses[1:] == [409, 409, 200]
    assert rig.delays == [1.0, 1.0]


@pytest.mark.anyio
async def test_key_in_flight_beyond_the_attempts_raises(rig: Rig) -> None:
    """A key still in flight when the attempts run out raises IdempotencyKeyInFlight."""
    rig.server = KeyedServer()
    rig.server.store("a", {"n": 1})
    rig.server.in_flight = 10
    with pytest.raises(IdempotencyKeyInFlight) as raised:
        await rig.client(max_attempts=3).update("/items/a", {"n": 2})
    assert f'"{raised.value.key}"' == rig.server.idempotency_keys("PATCH")[0]
    assert len(rig.server.sent("PATCH")) == 3

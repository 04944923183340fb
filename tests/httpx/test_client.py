"""The drivers themselves: who closes the httpx client, the attempt bound they take, and
their Idempotency-Key option and arguments."""

from __future__ import annotations

import httpx
import pytest

from optimist.errors import InvalidIdempotencyKey
from optimist.httpx import AsyncClient, Client, Created


def test_client_closes_the_httpx_client_it_made() -> None:
    """A Client without an httpx client makes one and closes it on exit; a given one stays open."""
    given = httpx.Client()
    with Client() as made, Client(given):
        pass
    assert made.http.is_closed
    assert not given.is_closed
    given.close()


@pytest.mark.anyio
async def test_async_client_closes_the_httpx_client_it_made() -> None:
    """An AsyncClient without an httpx client makes one and closes it on exit."""
    given = httpx.AsyncClient()
    async with AsyncClient() as made, AsyncClient(given):
        pass
    assert made.http.is_closed
    assert not given.is_closed
    await given.aclose()


def test_a_client_needs_at_least_one_attempt() -> None:
    """``max_attempts`` below 1 is refused when the client is made."""
    with httpx.Client() as http, pytest.raises(ValueError, match="max_attempts"):
        Client(http, max_attempts=0)


def _recording(sent: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"n": 1}, headers={"ETag": '"v1"'})

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://api.test")


def test_keys_are_on_by_default() -> None:
    """A Client made without ``idempotency`` sends an Idempotency-Key with its writes."""
    sent: list[httpx.Request] = []
    with _recording(sent) as http:
        created = Client(http).create("/items/a", {"n": 1})
    assert isinstance(created, Created)
    assert "Idempotency-Key" in sent[0].headers


def test_callers_key_is_sent_with_keys_off() -> None:
    """A call's ``idempotency_key`` is sent even when the client makes no keys itself."""
    sent: list[httpx.Request] = []
    with _recording(sent) as http:
        Client(http, idempotency=False).create("/items/a", {"n": 1}, idempotency_key="a-1")
    assert sent[0].headers["Idempotency-Key"] == '"a-1"'


@pytest.mark.parametrize("key", ["", "é", "x" * 256], ids=["empty", "not-ascii", "too-long"])
def test_an_invalid_callers_key_is_refused_before_sending(key: str) -> None:
    """A key that is no valid Idempotency-Key raises InvalidIdempotencyKey; nothing is sent."""
    sent: list[httpx.Request] = []
    with _recording(sent) as http, pytest.raises(InvalidIdempotencyKey):
        Client(http).create("/items/a", {"n": 1}, idempotency_key=key)
    assert sent == []

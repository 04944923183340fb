"""The drivers themselves: who closes the httpx client, and the attempt bound they take."""

from __future__ import annotations

import httpx
import pytest

from optimist.httpx import AsyncClient, Client


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

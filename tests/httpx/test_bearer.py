"""A bearer token on every request of a flow: BearerToken as an Api's credentials."""

from __future__ import annotations

import itertools
from dataclasses import replace

import httpx
import pytest

from optimist.httpx import BearerToken
from optimist.merge import JSON
from tests.support.fake_api import ITEMS, Rig

pytestmark = pytest.mark.anyio


async def test_every_request_of_a_retried_update_carries_the_token(rig: Rig) -> None:
    """The read, the 412, the refetch and the retried write all carry the bearer token."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})  # lands between our GET and our write
        return {**document, "size": 2}

    api = replace(ITEMS, auth=BearerToken("t0k.en"))
    await rig.client(api=api).update("/items/a", mine)
    assert rig.server.statuses == [200, 412, 200, 200]
    assert [r.headers.get("Authorization") for r in rig.server.requests] == ["Bearer t0k.en"] * 4


async def test_a_token_function_is_asked_for_each_request(rig: Rig) -> None:
    """A function gives the token of each request, so that a refreshed one is used."""
    rig.server.store("a", {"size": 1})
    tokens = (f"t{n}" for n in itertools.count())
    api = replace(ITEMS, auth=BearerToken(lambda: next(tokens)))
    await rig.client(api=api).update("/items/a", lambda document: {**document, "size": 2})
    assert [r.headers["Authorization"] for r in rig.server.requests] == ["Bearer t0", "Bearer t1"]


@pytest.mark.parametrize(
    "token", ["", "two words", "line\r\nX-Admin: 1"], ids=["empty", "space", "crlf"]
)
def test_a_token_that_is_not_one_word_is_refused(token: str) -> None:
    """A token that would be empty or split the field is refused before anything is sent."""
    request = httpx.Request("GET", "http://api.test/items/a")
    with pytest.raises(ValueError, match="one non-empty word"):
        next(BearerToken(token).auth_flow(request))


def test_the_token_is_not_in_the_repr() -> None:
    """A token is a credential: the repr does not show it."""
    assert "secret" not in repr(BearerToken("secret"))

"""The adapter seam: JsonApi's configuration, and an adapter for an enveloped API built
on JsonApi's own methods.
"""

from __future__ import annotations

from typing import Any

import pytest

from optimist.httpx import JsonApi, Page, Versioned
from tests.support.fake_api import Enveloped, FakeServer, Rig


def test_writable_drops_the_members_the_server_owns() -> None:
    """What the client writes back keeps its own members and none of the server's."""
    api = JsonApi(server_owned=frozenset({"id", "updated_at"}))
    assert api.writable({"id": "n1", "text": "t", "updated_at": "now"}) == {"text": "t"}


def test_page_items_come_from_the_configured_member() -> None:
    """``items_member`` names the member of a page body that holds its items."""
    api = JsonApi(items_member="items")
    assert api.page({"items": [1, 2], "next_cursor": "c2"}) == Page((1, 2), "c2")


@pytest.mark.parametrize(
    "body",
    [{"data": [1]}, {"data": [1], "next_cursor": None}, {"data": [1], "next_cursor": ""}],
    ids=["absent", "null", "empty"],
)
def test_a_page_without_a_next_cursor_is_the_last(body: dict[str, Any]) -> None:
    """An absent, null or empty ``next_cursor`` ends the list."""
    assert JsonApi().page(body) == Page((1,), None)


@pytest.mark.parametrize(
    "body",
    [{"data": {"a": 1}}, {"data": [], "next_cursor": 7}],
    ids=["items-not-a-list", "cursor-not-a-string"],
)
def test_a_malformed_page_is_refused(body: dict[str, Any]) -> None:
    """Items that are not a list, or a cursor that is not a string, raise TypeError."""
    with pytest.raises(TypeError):
        JsonApi().page(body)


@pytest.mark.anyio
async def test_an_adapter_unwraps_an_enveloped_document(rig: Rig) -> None:
    """An adapter whose ``document`` unwraps ``{"result": ...}`` gives the document inside."""
    rig.server = FakeServer(envelope=True)
    tag = rig.server.store("a", {"name": "x"})
    got = await rig.client(api=Enveloped()).get("/items/a")
    assert got == Versioned({"name": "x", "id": "a", "version": 1}, tag)


@pytest.mark.anyio
async def test_an_adapter_reads_enveloped_pages_through_json_api(rig: Rig) -> None:
    """An adapter handing the inside of its envelope to ``JsonApi.page`` lists every item."""
    rig.server = FakeServer(envelope=True)
    for key in "abc":
        rig.server.store(key, {})
    items = await rig.client(api=Enveloped()).items("/items")
    assert [item["id"] for item in items] == ["a", "b", "c"]

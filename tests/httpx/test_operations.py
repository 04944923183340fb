"""The one-request flows, through both clients: reads that revalidate, create-if-absent,
conditional delete, cursor-paginated lists, and the Idempotency-Key of a create or delete.
"""

from __future__ import annotations

import httpx
import pytest

from optimist.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    PreconditionFailed,
    ResourceExists,
    ResourceNotFound,
    ResponseError,
)
from optimist.httpx import Created, Exists, Page, Versioned
from tests.httpx.keyed_api import KeyedServer
from tests.support.fake_api import BASE, Rig, problem

# -- reading -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_returns_the_document_and_its_etag(rig: Rig) -> None:
    """A GET gives the document and the entity tag it was served with."""
    tag = rig.server.store("a", {"name": "x"})
    got = await rig.client().get("/items/a")
    assert got == Versioned({"name": "x", "id": "a", "version": 1}, tag)


@pytest.mark.anyio
async def test_second_get_revalidates_and_serves_304_from_cache(rig: Rig) -> None:
    """A repeated GET sends If-None-Match and takes the document from the cache on 304."""
    tag = rig.server.store("a", {"name": "x"})
    client = rig.client()
    first = await client.get("/items/a")
    second = await client.get("/items/a")
    assert second == first
    assert rig.server.sent("GET")[1].headers["If-None-Match"] == str(tag)
    assert rig.server.statuses == [200, 304]


@pytest.mark.anyio
async def test_changed_document_is_fetched_again(rig: Rig) -> None:
    """When the tag no longer matches, the server's new document replaces the cached one."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    await client.get("/items/a")
    tag = rig.server.store("a", {"name": "y"})
    got = await client.get("/items/a")
    assert (got.document["name"], got.etag) == ("y", tag)
    assert rig.server.statuses == [200, 200]


# -- create-if-absent and conditional delete ---------------------------------------------------


@pytest.mark.anyio
async def test_create_if_absent_creates(rig: Rig) -> None:
    """``If-None-Match: *`` on a free key creates, and gives the tag and location."""
    outcome = await rig.client().create("/items/new", {"name": "x"})
    assert rig.server.sent("PUT")[0].headers["If-None-Match"] == "*"
    assert outcome == Created(rig.server.doc("new"), rig.server.docs["new"][1], f"{BASE}/items/new")


@pytest.mark.anyio
async def test_create_if_absent_reports_an_existing_resource(rig: Rig) -> None:
    """On a taken key the server answers 412 and the outcome is Exists, nothing overwritten."""
    tag = rig.server.store("a", {"name": "first"})
    outcome = await rig.client().create("/items/a", {"name": "second"})
    assert outcome == Exists(tag)
    assert rig.server.doc("a")["name"] == "first"


@pytest.mark.anyio
async def test_create_on_a_server_without_preconditions_raises_resource_exists(rig: Rig) -> None:
    """A server answering 409 to a taken key gives ResourceExists."""
    rig.server.queued.append(problem(409, "taken"))
    with pytest.raises(ResourceExists):
        await rig.client().create("/items/a", {"name": "x"}, method="POST")


@pytest.mark.anyio
async def test_delete_sends_the_etag_given(rig: Rig) -> None:
    """A delete with an ETag deletes the resource if it is still at that version."""
    tag = rig.server.store("a", {"name": "x"})
    await rig.client().delete("/items/a", etag=tag)
    assert "a" not in rig.server.docs
    assert rig.server.sent("DELETE")[0].headers["If-Match"] == str(tag)


@pytest.mark.anyio
async def test_delete_of_a_changed_resource_raises_precondition_failed(rig: Rig) -> None:
    """A delete with a stale ETag is refused and the resource stays."""
    old = rig.server.store("a", {"name": "x"})
    new = rig.server.store("a", {"name": "y"})
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client().delete("/items/a", etag=str(old))
    assert raised.value.current_etag == new
    assert "a" in rig.server.docs


@pytest.mark.anyio
async def test_delete_without_an_etag_reads_the_current_one(rig: Rig) -> None:
    """Without an ETag the client reads the current one first and deletes conditionally."""
    tag = rig.server.store("a", {"name": "x"})
    await rig.client().delete("/items/a")
    assert [r.method for r in rig.server.requests] == ["GET", "DELETE"]
    assert rig.server.requests[1].headers["If-Match"] == str(tag)


@pytest.mark.anyio
async def test_delete_forgets_the_cached_document(rig: Rig) -> None:
    """After a delete, a GET is not answered from the cache."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    await client.delete("/items/a")
    with pytest.raises(ResourceNotFound):
        await client.get("/items/a")
    assert "If-None-Match" not in rig.server.requests[-1].headers


# -- idempotency keys --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_whose_answer_was_lost_is_created_not_exists(rig: Rig) -> None:
    """A create applied and then lost is resent with its key: Created, replayed, not Exists."""
    rig.server = KeyedServer()
    rig.server.drop = ["PUT"]
    outcome = await rig.client().create("/items/new", {"name": "x"})
    assert outcome == Created(rig.server.doc("new"), rig.server.docs["new"][1],
                              f"{BASE}/items/new", replayed=True)  # fmt: skip
    assert rig.server.doc("new")["version"] == 1


@pytest.mark.anyio
async def test_callers_key_makes_a_create_once_across_clients(rig: Rig) -> None:
    """The same create under the same key from a second client (a restart) is replayed."""
    rig.server = KeyedServer()
    first = await rig.client().create("/items/n", {"name": "x"}, idempotency_key="order-1")
    again = await rig.client().create("/items/n", {"name": "x"}, idempotency_key="order-1")
    assert isinstance(first, Created)
    assert again == Created(first.document, first.etag, first.location, replayed=True)
    assert rig.server.idempotency_keys("PUT") == ['"order-1"', '"order-1"']


@pytest.mark.anyio
async def test_callers_key_for_another_create_raises_reused(rig: Rig) -> None:
    """A key the server saw with another body is refused (422): IdempotencyKeyReused."""
    rig.server = KeyedServer()
    client = rig.client()
    await client.create("/items/n", {"name": "x"}, idempotency_key="order-1")
    with pytest.raises(IdempotencyKeyReused) as raised:
        await client.create("/items/n", {"name": "y"}, idempotency_key="order-1")
    assert (raised.value.key, raised.value.differences) == ("order-1", ("body",))
    assert rig.server.doc("n")["name"] == "x"


@pytest.mark.anyio
async def test_callers_key_makes_a_delete_once_across_clients(rig: Rig) -> None:
    """A delete sent again under its key gets its stored 204, not a 412 or 404."""
    rig.server = KeyedServer()
    tag = rig.server.store("a", {"name": "x"})
    await rig.client().delete("/items/a", etag=tag, idempotency_key="rm-a")
    await rig.client().delete("/items/a", etag=tag, idempotency_key="rm-a")
    assert rig.server.statuses == [204, 204]
    assert rig.server.idempotency_keys("DELETE") == ['"rm-a"', '"rm-a"']


@pytest.mark.anyio
async def test_create_whose_key_stays_in_flight_is_not_resource_exists(rig: Rig) -> None:
    """A 409 for a key in flight after the attempts is IdempotencyKeyInFlight, not
    ResourceExists."""
    rig.server = KeyedServer()
    rig.server.in_flight = 100
    with pytest.raises(IdempotencyKeyInFlight):
        await rig.client(max_attempts=2).create("/items/n", {"name": "x"})
    assert "n" not in rig.server.docs


# -- pagination --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_items_iterates_across_pages(rig: Rig) -> None:
    """Every item of a paginated list is returned once, in order, across pages."""
    for key in "abcde":
        rig.server.store(key, {})
    items = await rig.client().items("/items", params={"limit": 2})
    assert [item["id"] for item in items] == list("abcde")
    cursors = [r.url.params.get("cursor") for r in rig.server.requests]
    assert cursors == [None, "b", "d"]
    assert all(r.url.params["limit"] == "2" for r in rig.server.requests)


@pytest.mark.anyio
async def test_pages_end_on_an_empty_list(rig: Rig) -> None:
    """An empty list is one empty page."""
    assert await rig.client().pages("/items") == [Page((), None)]


@pytest.mark.anyio
async def test_a_cursor_that_does_not_advance_is_an_error(rig: Rig) -> None:
    """A server handing back the cursor it was given would loop forever: ResponseError."""
    rig.server.queued.extend(
        [httpx.Response(200, json={"data": [1], "next_cursor": "c1"}),
         httpx.Response(200, json={"data": [2], "next_cursor": "c1"})]
    )  # fmt: skip
    with pytest.raises(ResponseError):
        await rig.client().items("/items")


@pytest.mark.anyio
async def test_a_body_that_is_not_a_page_is_an_error(rig: Rig) -> None:
    """A list answer without the page members raises ResponseError, not KeyError."""
    rig.server.queued.append(httpx.Response(200, json={"items": []}))
    with pytest.raises(ResponseError):
        await rig.client().items("/items")

"""A listing's page from its signed cursor (optimist.sqlalchemy.listing), on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optimist.cursor import Cursor, CursorCodec
from optimist.errors import ExpiredToken, ForeignToken, MalformedToken, TamperedToken
from optimist.sqlalchemy import Listing, create, list_page
from optimist.tokens import TokenSigner
from tests.support.stores import Store, open_store

pytestmark = pytest.mark.anyio

QUERY = "GET /items"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh ``items`` table on each backend."""
    async with open_store(database_url) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cursors(clock: Clock) -> CursorCodec:
    return CursorCodec(TokenSigner(["k"], clock=clock), max_age=timedelta(hours=1))


async def fill(store: Store, count: int, prefix: str = "i", tenant: int = 1) -> list[str]:
    keys = [f"{prefix}{n}" for n in range(count)]
    for key in keys:
        await create(store.engine, store.items, {"id": key, "tenant": tenant})
    return keys


async def listed(store: Store, cursors: CursorCodec, cursor: str | None, **options: Any) -> Listing:
    arguments: dict[str, Any] = {"query": QUERY, "limit": 2, **options}
    return await list_page(store.engine, store.items, cursors, cursor=cursor, **arguments)


def ids(listing: Listing) -> list[str]:
    return [record["id"] for record in listing.records]


async def traverse(store: Store, cursors: CursorCodec, **options: Any) -> list[str]:
    """Every id of a traversal that follows next_cursor to the end."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        listing = await listed(store, cursors, cursor, **options)
        seen += ids(listing)
        if listing.next_cursor is None:
            return seen
        cursor = listing.next_cursor


async def test_a_traversal_lists_every_row_once_in_order(
    store: Store, cursors: CursorCodec
) -> None:
    """Following next_cursor from no cursor serves every row once, then None."""
    keys = await fill(store, 5)
    assert await traverse(store, cursors) == keys


async def test_a_traversal_keeps_its_first_page_s_snapshot(
    store: Store, cursors: CursorCodec
) -> None:
    """A row created after the first page is not in the pages that follow."""
    keys = await fill(store, 3)
    first = await listed(store, cursors, None)
    await create(store.engine, store.items, {"id": "late"})
    rest = await listed(store, cursors, first.next_cursor, limit=10)
    assert ids(first) + ids(rest) == keys
    assert rest.next_cursor is None


async def test_the_snapshot_time_is_the_codec_s_clock(
    store: Store, cursors: CursorCodec, clock: Clock
) -> None:
    """The first page's snapshot is stamped by the codec's clock, not the host's."""
    await fill(store, 5)
    first = await listed(store, cursors, None)
    assert first.next_cursor is not None
    assert cursors.decode(first.next_cursor, query=QUERY).snapshot_at == START
    clock.now += timedelta(minutes=5)
    second = await listed(store, cursors, first.next_cursor)
    assert second.next_cursor is not None
    assert cursors.decode(second.next_cursor, query=QUERY).snapshot_at == START


async def test_a_cursor_of_another_listing_is_foreign(store: Store, cursors: CursorCodec) -> None:
    """A genuine cursor issued for another query is refused (400)."""
    await fill(store, 3)
    other = await listed(store, cursors, None, query="GET /others")
    assert other.next_cursor is not None
    with pytest.raises(ForeignToken) as raised:
        await listed(store, cursors, other.next_cursor)
    assert raised.value.field == "cursor"


async def test_a_tampered_cursor_is_refused(store: Store, cursors: CursorCodec) -> None:
    """A cursor signed with a key the codec does not hold is refused (400)."""
    forger = CursorCodec(TokenSigner(["guessed"]))
    forged = forger.encode(Cursor((0,), 100, START), query=QUERY)
    with pytest.raises(TamperedToken):
        await listed(store, cursors, forged)


async def test_a_cursor_that_is_no_token_is_malformed(store: Store, cursors: CursorCodec) -> None:
    """Garbage where a cursor belongs is refused (400)."""
    with pytest.raises(MalformedToken):
        await listed(store, cursors, "not-a-cursor")


@pytest.mark.parametrize("position", [("x",), (1, 2), (True,), (), (1.5,), (None,)], ids=repr)
async def test_a_position_that_is_not_one_integer_is_malformed(
    store: Store, cursors: CursorCodec, position: tuple[Any, ...]
) -> None:
    """A genuine cursor of this listing whose position is not one integer is refused (400)."""
    token = cursors.encode(Cursor(position, 1, START), query=QUERY)
    with pytest.raises(MalformedToken) as raised:
        await listed(store, cursors, token)
    assert raised.value.reason == "not a position in this listing"


async def test_an_expired_snapshot_is_gone(
    store: Store, cursors: CursorCodec, clock: Clock
) -> None:
    """A cursor whose snapshot is older than the codec's max_age is ExpiredToken (410)."""
    await fill(store, 3)
    first = await listed(store, cursors, None)
    clock.now += timedelta(hours=1, seconds=1)
    with pytest.raises(ExpiredToken) as raised:
        await listed(store, cursors, first.next_cursor)
    assert raised.value.status == 410


async def test_a_scoped_listing_sees_only_its_tenant(store: Store, cursors: CursorCodec) -> None:
    """With a scope, every page holds that tenant's rows only."""
    mine = await fill(store, 3, prefix="m", tenant=1)
    await fill(store, 3, prefix="t", tenant=2)
    assert await traverse(store, cursors, scope={"tenant": 1}, query="GET /items?t=1") == mine


async def test_a_tenant_s_cursor_is_foreign_to_another_tenant(
    store: Store, cursors: CursorCodec
) -> None:
    """A scope in the query binds the cursor to it: another tenant's listing refuses it."""
    await fill(store, 3, prefix="m", tenant=1)
    mine = await listed(store, cursors, None, scope={"tenant": 1}, query="GET /items?t=1")
    with pytest.raises(ForeignToken):
        await listed(store, cursors, mine.next_cursor, scope={"tenant": 2}, query="GET /items?t=2")


async def test_a_descending_listing_lists_newest_first(store: Store, cursors: CursorCodec) -> None:
    """descending runs from the newest row at the snapshot down to the oldest."""
    keys = await fill(store, 5)
    assert await traverse(store, cursors, descending=True) == keys[::-1]


async def test_filters_narrow_every_page(store: Store, cursors: CursorCodec) -> None:
    """Filters apply to the first page and to every page its cursor leads to."""
    keys = await fill(store, 6)
    table = store.items.table
    odd = [table.c.id.in_(keys[1::2])]
    assert await traverse(store, cursors, filters=odd, query="GET /items?odd") == keys[1::2]

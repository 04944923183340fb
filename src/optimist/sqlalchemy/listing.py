"""A listing endpoint's page: from the request's cursor to the records and the next cursor.

A list route of an HTTP API takes ``limit`` and an opaque ``cursor`` (the previous
page's ``next_cursor``, none for the first page) and answers the page's items and the
cursor of the page after it. :func:`list_page` is that whole step over a versioned
table: it decodes the cursor, reads the page (:func:`~optimist.sqlalchemy.pages.page`)
and signs the next cursor with the same snapshot, so that every page of one traversal
reads the snapshot its first page fixed (SPEC §1, "Pagination is consistent").

A cursor is bound to ``query``: a string naming the listing and everything that
decides which rows it holds (the route, the tenant, the filters; never the page size).
A cursor the client made up or altered, one of another listing, and one whose snapshot
is too old are refused with the codec's errors, each naming the field ``cursor``:

=================================================  ==========================  =======
the cursor                                         error                       status
=================================================  ==========================  =======
not a token, or not a cursor                       :class:`MalformedToken`     400
signed with no key of the codec's                  :class:`TamperedToken`      400
issued for another ``query``                       :class:`ForeignToken`       400
genuine, but its position is not one integer       :class:`MalformedToken`     400
its snapshot older than the codec's ``max_age``    :class:`ExpiredToken`       410
=================================================  ==========================  =======

A page's position is the ``created_seq`` of its last row, so a genuine cursor whose
position is anything else was made for another kind of listing with the same keys.
The first page's snapshot time is the codec's clock (its signer's), the clock that
later decides whether the snapshot has expired, so a clock a test injects governs
both.

``bind`` may be a streaming replica of ``primary``: pages are read there, except a
page whose cursor's snapshot the replica has not replayed yet, which is read from
``primary`` (:mod:`optimist.sqlalchemy.pages` says why that loses and repeats nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement

from optimist.cursor import Cursor, CursorCodec
from optimist.errors import MalformedToken
from optimist.sqlalchemy._rows import Scope
from optimist.sqlalchemy.engine import Bind
from optimist.sqlalchemy.pages import page
from optimist.sqlalchemy.versioned import Record, Versioned

__all__ = ["Listing", "list_page"]


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a listing: its records, and the cursor of the next (None after the last)."""

    records: tuple[Record, ...]
    next_cursor: str | None


async def list_page(
    bind: Bind,
    versioned: Versioned,
    cursors: CursorCodec,
    *,
    query: str,
    limit: int,
    cursor: str | None,
    scope: Scope | None = None,
    filters: Sequence[ColumnElement[bool]] = (),
    descending: bool = False,
    primary: Bind | None = None,
) -> Listing:
    """The page of ``versioned`` that ``cursor`` points to, and the cursor after it.

    ``cursor`` None starts a traversal. ``query`` is what the cursors are bound to;
    ``limit``, ``scope``, ``filters`` and ``descending`` are
    :func:`~optimist.sqlalchemy.pages.page`'s, and must be the same on every page of a
    traversal (put whatever decides them into ``query``); so is ``primary``, given when
    ``bind`` is a replica of it. Raises the errors of this
    module's docstring for a cursor that is not one of this listing's.
    """
    after: int | None = None
    watermark: int | None = None
    if cursor is None:
        snapshot_at = cursors.signer.now()
    else:
        decoded = cursors.decode(cursor, query=query)
        match decoded.position:
            case (int() as position,) if not isinstance(position, bool):
                after = position
            case _:
                raise MalformedToken("cursor", cursor, "not a position in this listing")
        watermark, snapshot_at = decoded.watermark, decoded.snapshot_at
    found = await page(
        bind,
        versioned,
        limit=limit,
        after=after,
        watermark=watermark,
        scope=scope,
        filters=filters,
        descending=descending,
        primary=primary,
    )
    if found.next_position is None:
        return Listing(found.records, None)
    following = Cursor((found.next_position,), found.watermark, snapshot_at)
    return Listing(found.records, cursors.encode(following, query=query))

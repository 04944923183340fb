"""What the client's operations return: frozen values, one per outcome.

An operation that can end in more than one expected way returns one of several
types (``create`` gives :class:`Created` or :class:`Exists`) for the caller to match
on; failures are raised as errors from :mod:`optimist.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from optimist.etag import EntityTag
from optimist.merge import JSON

__all__ = ["Change", "Created", "Exists", "OnConflict", "Page", "Updated", "Versioned"]

#: What ``update`` applies: a function from the current document to the new one, or a
#: JSON Merge Patch (RFC 7396) as a mapping.
Change: TypeAlias = Callable[[JSON], JSON] | Mapping[str, JSON]


class OnConflict(enum.Enum):
    """What ``update`` does with its change when the server's document moved on (412)."""

    #: Merge three-way: keep both sides' changes, raise MergeConflict where they collide.
    #: Right for changes that *set* values.
    MERGE = "merge"
    #: Call the change again on the current document. Right for changes computed from
    #: what they read (a counter's increment), which a merge would take for a duplicate.
    REAPPLY = "reapply"


@dataclass(frozen=True, slots=True)
class Versioned:
    """A document and the entity tag it was served with (None if the server sent none)."""

    document: JSON
    etag: EntityTag | None


@dataclass(frozen=True, slots=True)
class Updated:
    """An update that went through.

    ``document`` is the server's answer to the write (the document written when the
    answer has no body); ``attempts`` counts the writes sent, 0 when the change left
    the document as it was and nothing needed writing (a copy of a write sent again
    under its Idempotency-Key is the same attempt). ``replayed`` is true when the
    answer was the server's stored answer to an earlier copy of the write (its
    ``Idempotent-Replayed`` field): the write was applied once, by that copy, and the
    document and tag are those it left, which another writer may have changed since.
    """

    document: JSON
    etag: EntityTag | None
    attempts: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Created:
    """A create-if-absent that created: the server's document, its tag and location;
    ``replayed`` as for :class:`Updated` (the answer to an earlier copy of the create)."""

    document: JSON
    etag: EntityTag | None
    location: str | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    """A create-if-absent that found the resource already there (RFC 9110 §13.1.2)."""

    current_etag: EntityTag | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a cursor-paginated list; ``next_cursor`` is None on the last page."""

    items: tuple[JSON, ...]
    next_cursor: str | None

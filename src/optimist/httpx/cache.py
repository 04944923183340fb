"""A local entity-tag cache: the last document seen per URL, to revalidate with If-None-Match.

A read of a URL held here sends ``If-None-Match: <tag>``; a 304 answer (RFC 9110
§15.4.5) means the held document is still current, and the body is not transferred
again. Documents are kept as JSON text and decoded on each hit, so a caller that
modifies a document it was given cannot corrupt what the cache holds.

One cache belongs to one identity: a server may answer the same URL differently for
two tenants, so clients with different credentials must not share a cache.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from optimist.etag import EntityTag
from optimist.httpx.outcomes import Versioned
from optimist.merge import JSON

__all__ = ["ETagCache"]


class ETagCache:
    """The last ``max_entries`` documents read or written, by URL, least recently used
    first out. ``ETagCache(0)`` keeps nothing and so turns revalidation off."""

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 0:
            raise ValueError("max_entries cannot be negative")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[EntityTag, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str) -> Versioned | None:
        """The document held for ``url`` with its tag, or None."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            self._entries.move_to_end(url)
        etag, text = entry
        return Versioned(json.loads(text), etag)

    def put(self, url: str, document: JSON, etag: EntityTag | None) -> None:
        """Hold ``document`` as the representation of ``url`` tagged ``etag``.

        Without a tag there is nothing to revalidate with, so an old entry is dropped.
        """
        if etag is None or self.max_entries == 0:
            self.discard(url)
            return
        text = json.dumps(document, separators=(",", ":"))
        with self._lock:
            self._entries[url] = (etag, text)
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, url: str) -> None:
        """Forget ``url`` (after a delete, or a write whose answer had no document)."""
        with self._lock:
            self._entries.pop(url, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

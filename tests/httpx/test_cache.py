"""The entity-tag cache: least recently used out, documents a caller cannot corrupt, and
a size of zero that turns revalidation off.
"""

from __future__ import annotations

import pytest

from optimist.etag import EntityTag
from optimist.httpx import ETagCache, Versioned
from tests.support.fake_api import Rig


def test_cache_forgets_the_least_recently_used() -> None:
    """A full cache drops the entry used longest ago."""
    cache = ETagCache(2)
    tag = EntityTag("t")
    cache.put("a", 1, tag)
    cache.put("b", 2, tag)
    assert cache.get("a") is not None
    cache.put("c", 3, tag)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (
        Versioned(1, tag),
        None,
        Versioned(3, tag),
    )


@pytest.mark.anyio
async def test_cached_document_cannot_be_corrupted_by_the_caller(rig: Rig) -> None:
    """Modifying a document the client returned does not change what a 304 serves."""
    rig.server.store("a", {"name": "x"})
    client = rig.client()
    (await client.get("/items/a")).document["name"] = "scribbled"
    assert (await client.get("/items/a")).document["name"] == "x"


@pytest.mark.anyio
async def test_cache_of_size_zero_never_revalidates(rig: Rig) -> None:
    """``ETagCache(0)`` turns conditional GETs off."""
    rig.server.store("a", {"name": "x"})
    client = rig.client(cache=ETagCache(0))
    await client.get("/items/a")
    await client.get("/items/a")
    assert all("If-None-Match" not in r.headers for r in rig.server.requests)

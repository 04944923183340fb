"""The update flow, through both clients: conditional writes, merging or reapplying on
412, the bounds that end it, and the Idempotency-Key of each write.
"""

from __future__ import annotations

import json
import threading

import anyio
import httpx
import pytest

from optimist.errors import IdempotencyKeyReused, InvalidInput, MergeConflict, PreconditionFailed
from optimist.etag import Comparison, EntityTag
from optimist.httpx import PUT, PUT_CHANGES, Backoff, OnConflict, Updated
from optimist.merge import JSON
from tests.httpx.keyed_api import KeyedServer
from tests.support.fake_api import FakeServer, Rig, problem, setting

# -- writing -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_update_writes_a_merge_patch_with_if_match(rig: Rig) -> None:
    """An update PATCHes only what changed, with If-Match set to the tag it read."""
    tag = rig.server.store("a", {"name": "x", "size": 1})
    updated = await rig.client().update("/items/a", setting(size=2))
    (patch,) = rig.server.sent("PATCH")
    assert patch.headers["If-Match"] == str(tag)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.content) == {"size": 2}
    assert updated.document == rig.server.doc("a")
    assert updated.etag == rig.server.docs["a"][1]
    assert updated.attempts == 1


@pytest.mark.anyio
async def test_update_accepts_a_merge_patch(rig: Rig) -> None:
    """A mapping is applied as a JSON Merge Patch: null removes a member."""
    rig.server.store("a", {"name": "x", "note": "old"})
    await rig.client().update("/items/a", {"name": "y", "note": None})
    assert rig.server.doc("a") == {"name": "y", "id": "a", "version": 2}


@pytest.mark.anyio
async def test_update_that_changes_nothing_sends_nothing(rig: Rig) -> None:
    """A change that leaves the document as it was needs no write."""
    rig.server.store("a", {"name": "x"})
    updated = await rig.client().update("/items/a", setting(name="x"))
    assert updated.attempts == 0
    assert rig.server.sent("PATCH") == []


@pytest.mark.anyio
async def test_update_can_put_the_whole_document(rig: Rig) -> None:
    """With ``write=PUT`` the whole document is sent, without server-owned members."""
    rig.server.store("a", {"name": "x", "size": 1})
    await rig.client().update("/items/a", setting(size=2), write=PUT)
    (put,) = rig.server.sent("PUT")
    assert json.loads(put.content) == {"name": "x", "size": 2}
    assert put.headers["Content-Type"] == "application/json"


@pytest.mark.anyio
async def test_update_can_put_only_the_changed_members(rig: Rig) -> None:
    """With ``write=PUT_CHANGES`` a PUT carries the members that differ, null for one removed."""
    rig.server = FakeServer(partial_put=True)
    rig.server.store("a", {"name": "x", "size": 1, "note": "old"})
    await rig.client().update("/items/a", {"size": 2, "note": None}, write=PUT_CHANGES)
    (put,) = rig.server.sent("PUT")
    assert json.loads(put.content) == {"size": 2, "note": None}
    assert rig.server.doc("a") == {"name": "x", "size": 2, "id": "a", "version": 2}


@pytest.mark.anyio
async def test_change_function_cannot_modify_what_was_read(rig: Rig) -> None:
    """A change that mutates its argument in place still merges against the true base."""
    rig.server.store("a", {"name": "x", "size": 1})

    def grow(document: JSON) -> JSON:
        document["size"] += 1
        if document["size"] == 2:  # the first call only
            rig.server.store("a", {"name": "theirs"})
        return document

    await rig.client().update("/items/a", grow)
    assert rig.server.doc("a")["size"] == 2
    assert rig.server.doc("a")["name"] == "theirs"


@pytest.mark.anyio
async def test_update_without_an_etag_refuses_to_write_blind(rig: Rig) -> None:
    """A document served without an ETag cannot be updated safely: nothing is written."""
    rig.server.queued.append(httpx.Response(200, json={"size": 1}))
    with pytest.raises(InvalidInput):
        await rig.client().update("/items/a", setting(size=2))
    assert rig.server.sent("PATCH") == []


@pytest.mark.anyio
async def test_write_answered_without_a_body_gives_what_was_sent(rig: Rig) -> None:
    """A 204 to a write is a success; the document is the one written, the tag the new one."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.queued.append(httpx.Response(204, headers={"ETag": '"v9"'}))
        return {**document, "size": 2}

    updated = await rig.client().update("/items/a", mine)
    assert updated == Updated({"size": 2, "id": "a", "version": 1}, EntityTag("v9"), 1)


# -- on 412 ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_412_refetches_merges_and_retries(rig: Rig) -> None:
    """Another client's write to another field is kept, and so is ours."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})  # lands between our GET and our write
        return {**document, "size": 2}

    updated = await rig.client().update("/items/a", mine)
    assert rig.server.statuses == [200, 412, 200, 200]
    assert rig.server.doc("a") == {"name": "theirs", "size": 2, "id": "a", "version": 3}
    assert updated.document == rig.server.doc("a")
    assert updated.attempts == 2


@pytest.mark.anyio
async def test_412_body_is_not_taken_for_the_document(rig: Rig) -> None:
    """After a 412 the document is fetched again with a GET, never read from the problem."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        tag = rig.server.store("a", {"other": 1})
        rig.server.queued.append(
            problem(412, "changed", {"ETag": str(tag)}, current_etag=str(tag), name="bogus")
        )
        return {**document, "size": 5}

    await rig.client().update("/items/a", mine)
    assert [r.method for r in rig.server.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert rig.server.doc("a") == {"name": "x", "size": 5, "other": 1, "id": "a", "version": 3}


@pytest.mark.anyio
async def test_same_field_conflict_raises_merge_conflict_with_both_values(rig: Rig) -> None:
    """Both sides changing one field differently raise MergeConflict holding both values."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})
        return {**document, "name": "mine"}

    with pytest.raises(MergeConflict) as raised:
        await rig.client().update("/items/a", mine)
    conflict = raised.value
    assert conflict.paths == (("name",),)
    assert (conflict.base["name"], conflict.theirs["name"], conflict.mine["name"]) == (
        "x",
        "theirs",
        "mine",
    )
    assert rig.server.doc("a")["name"] == "theirs"


@pytest.mark.anyio
async def test_reapply_recomputes_the_change_on_the_current_document(rig: Rig) -> None:
    """With OnConflict.REAPPLY an increment that lost the race is computed again."""
    rig.server.store("a", {"count": 0})
    calls = 0

    def increment(document: JSON) -> JSON:
        nonlocal calls
        calls += 1
        if calls == 1:
            rig.server.store("a", {"count": 1})  # someone else incremented meanwhile
        return {**document, "count": document["count"] + 1}

    await rig.client().update("/items/a", increment, on_conflict=OnConflict.REAPPLY)
    assert rig.server.doc("a")["count"] == 2
    assert calls == 2


@pytest.mark.anyio
async def test_attempts_are_bounded(rig: Rig) -> None:
    """A resource that changes before every write ends in PreconditionFailed after the bound."""
    rig.server.store("a", {"size": 1})
    rig.server.on_write = lambda: rig.server.store("a", {"n": 0})
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client(max_attempts=4).update("/items/a", setting(size=2))
    assert len(rig.server.sent("PATCH")) == 4
    assert raised.value.current_etag == rig.server.docs["a"][1]


@pytest.mark.anyio
async def test_backoff_grows_between_attempts(rig: Rig) -> None:
    """The waits between conflicting attempts grow exponentially."""
    rig.server.store("a", {"size": 1})
    rig.server.on_write = lambda: rig.server.store("a", {"n": 0})
    with pytest.raises(PreconditionFailed):
        await rig.client(max_attempts=4).update("/items/a", setting(size=2))
    assert rig.delays == pytest.approx([0.02, 0.04, 0.08])


@pytest.mark.anyio
async def test_retry_after_on_412_replaces_the_backoff(rig: Rig) -> None:
    """A 412 that says Retry-After is refetched after that wait, not the computed one."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        tag = str(rig.server.store("a", {"other": 1}))
        rig.server.queued.append(
            problem(412, "changed", {"ETag": tag, "Retry-After": "2"}, current_etag=tag)
        )
        return {**document, "size": 2}

    await rig.client().update("/items/a", mine)
    assert rig.delays == [2.0]
    assert rig.server.doc("a")["size"] == 2


@pytest.mark.anyio
async def test_server_refusing_the_etag_it_serves_fails_at_once(rig: Rig) -> None:
    """A weak tag under strong comparison can never match: no pointless retries."""
    rig.server = FakeServer(weak=True, comparison=Comparison.STRONG)
    rig.server.store("a", {"size": 1})
    with pytest.raises(PreconditionFailed):
        await rig.client().update("/items/a", setting(size=2))
    assert len(rig.server.sent("PATCH")) == 1
    assert rig.delays == []


@pytest.mark.anyio
async def test_412_without_a_new_etag_and_the_same_document_fails_at_once(rig: Rig) -> None:
    """A 412 after which the server still serves the tag we sent cannot be retried away."""
    rig.server.store("a", {"size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.queued.append(httpx.Response(412))
        return {**document, "size": 2}

    with pytest.raises(PreconditionFailed):
        await rig.client().update("/items/a", mine)
    assert [r.method for r in rig.server.requests] == ["GET", "PATCH", "GET"]


@pytest.mark.anyio
async def test_weak_tags_work_where_the_server_compares_weakly(rig: Rig) -> None:
    """The admin profile's weak tags are sent back as they came (W/"...")."""
    rig.server = FakeServer(weak=True, comparison=Comparison.WEAK)
    tag = rig.server.store("a", {"size": 1})
    await rig.client().update("/items/a", setting(size=2))
    assert rig.server.sent("PATCH")[0].headers["If-Match"] == f'W/"{tag.opaque}"'
    assert rig.server.doc("a")["size"] == 2


# -- idempotency keys --------------------------------------------------------------------------


def _increment(document: JSON) -> JSON:
    return {**document, "count": document["count"] + 1}


@pytest.mark.anyio
async def test_write_after_a_412_takes_a_new_key(rig: Rig) -> None:
    """The write after a 412 and a merge is a new attempt: a new key, a new If-Match."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})
        return {**document, "size": 2}

    await rig.client().update("/items/a", mine)
    first, second = rig.server.sent("PATCH")
    assert first.headers["If-Match"] != second.headers["If-Match"]
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]


@pytest.mark.anyio
async def test_lost_answer_is_resent_and_replayed_never_reapplied(rig: Rig) -> None:
    """A write applied and then lost is resent with its key; the replay ends the update
    and the increment is applied once, with no refetch."""
    rig.server = KeyedServer()
    rig.server.store("a", {"count": 0})
    rig.server.drop = ["PATCH"]  # the server applies it, then the connection drops
    updated = await rig.client().update("/items/a", _increment, on_conflict=OnConflict.REAPPLY)
    assert rig.server.doc("a")["count"] == 1
    assert [r.method for r in rig.server.requests] == ["GET", "PATCH", "PATCH"]
    assert len(set(rig.server.idempotency_keys("PATCH"))) == 1
    assert (updated.replayed, updated.attempts, updated.etag) == (True, 1, rig.server.docs["a"][1])


@pytest.mark.anyio
async def test_keys_off_a_lost_increment_is_reapplied(rig: Rig) -> None:
    """Keys off: the resend of a lost write meets 412 and the increment is applied twice,
    the loss keys prevent."""
    rig.server = KeyedServer()
    rig.server.store("a", {"count": 0})
    rig.server.drop = ["PATCH"]
    client = rig.client(idempotency=False)
    updated = await client.update("/items/a", _increment, on_conflict=OnConflict.REAPPLY)
    assert rig.server.doc("a")["count"] == 2
    assert not updated.replayed


@pytest.mark.anyio
async def test_callers_key_goes_on_the_first_write_only(rig: Rig) -> None:
    """``idempotency_key`` is the key of the first write; the write after a 412 has its own."""
    rig.server.store("a", {"name": "x", "size": 1})

    def mine(document: JSON) -> JSON:
        rig.server.store("a", {"name": "theirs"})
        return {**document, "size": 2}

    await rig.client().update("/items/a", mine, idempotency_key="job-7 step 1")
    first, second = rig.server.idempotency_keys("PATCH")
    assert first == '"job-7 step 1"'
    assert second not in {None, first}


@pytest.mark.anyio
async def test_callers_key_after_a_restart_is_never_applied_twice(rig: Rig) -> None:
    """An update run again under its key, after its first write landed unanswered, is
    refused as a reuse (the document moved on) instead of incrementing again."""
    rig.server = KeyedServer()
    rig.server.store("a", {"count": 0})
    rig.server.drop = ["PATCH"] * 3  # the first run never hears back
    options = {"on_conflict": OnConflict.REAPPLY, "idempotency_key": "k1"}
    with pytest.raises(httpx.TransportError):
        await rig.client().update("/items/a", _increment, **options)
    with pytest.raises(IdempotencyKeyReused) as raised:
        await rig.client().update("/items/a", _increment, **options)
    assert raised.value.key == "k1"
    assert "If-Match" in raised.value.differences
    assert rig.server.doc("a")["count"] == 1


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_clients_changing_different_fields_lose_nothing(rig: Rig) -> None:
    """Eight clients each incrementing its own field ten times: every increment is kept."""
    writers, rounds = 8, 10
    rig.server.store("shared", {})
    backoff = Backoff(initial=0.001, maximum=0.01, jitter=0.002)

    async def work(field_name: str) -> None:
        client = rig.client(backoff=backoff, max_attempts=200, real_sleep=True)
        for _ in range(rounds):
            await client.update(
                "/items/shared", lambda d: {**d, field_name: d.get(field_name, 0) + 1}
            )

    if rig.mode == "sync":
        threads = [threading.Thread(target=anyio.run, args=(work, f"f{n}")) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        async with anyio.create_task_group() as group:
            for n in range(writers):
                group.start_soon(work, f"f{n}")
    document = rig.server.doc("shared")
    assert {f"f{n}": document.get(f"f{n}") for n in range(writers)} == {
        f"f{n}": rounds for n in range(writers)
    }
    assert 412 in rig.server.statuses  # the clients really raced

"""The update flow: read, change, write with If-Match; on 412 refetch, merge and retry.

An update never loses anyone's change. It reads the document and its tag, applies the
caller's change, and writes only what the change made differ, conditionally on the
tag it read (RFC 9110 §13.1.1). When the server refuses (412) because another writer
got in first, it waits, reads the new version, and either merges three-way (keeping
both sides' changes) or applies the change again to the new version, then writes
again, within the operation's attempts.

The body of each write is shaped by the :class:`~optimist.httpx.Write` in use: a
merge patch of the changes, the changed members, or the whole document.

Each write is one attempt with its own Idempotency-Key when the client sends keys
(:mod:`optimist.httpx.keys`): its copies (a resend after a transport error, a 429 or a
503) carry the key, and a server that honours keys answers a copy of a write it
applied with the stored answer, never a 412; so a write whose answer was lost is not
refetched and applied again. The write after a 412 is a new request (new If-Match,
new body) with a new key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import httpx

from optimist.errors import PreconditionFailed
from optimist.httpx import keys, responses
from optimist.httpx.apis import Api, Body, Write
from optimist.httpx.flows import Context, Flow, Sleep, send
from optimist.httpx.operations import read
from optimist.httpx.outcomes import Change, OnConflict, Updated
from optimist.idempotency import IdempotencyKey
from optimist.merge import JSON, apply_merge_patch, create_merge_patch, json_equal, merge

__all__ = ["update"]


def _apply(change: Change, document: JSON) -> JSON:
    if isinstance(change, Mapping):
        return apply_merge_patch(document, change)
    # The change may modify what it is given; it must not modify what we read.
    return change(copy.deepcopy(document))


def _write_body(api: Api, write: Write, theirs: JSON, mine: JSON) -> JSON | None:
    """What to send to turn ``theirs`` into ``mine``, or None when nothing would change."""
    ours, current = api.writable(mine), api.writable(theirs)
    if write.body is Body.CHANGES:
        patch = create_merge_patch(current, ours)
        return None if isinstance(patch, Mapping) and not patch else patch
    if write.body is Body.MEMBERS and isinstance(current, Mapping) and isinstance(ours, Mapping):
        members: dict[str, JSON] = {
            name: value
            for name, value in ours.items()
            if name not in current or not json_equal(current[name], value)
        }
        members.update({name: None for name in current if name not in ours})
        return members or None
    return None if json_equal(current, ours) else ours


def update(
    context: Context,
    url: httpx.URL | str,
    change: Change,
    *,
    write: Write,
    on_conflict: OnConflict,
    max_attempts: int,
    key: IdempotencyKey | None = None,
) -> Flow[Updated]:
    """Read, change, write with If-Match; on 412 refetch, merge (or reapply) and retry.

    ``key`` is the Idempotency-Key of the first write (None: a new one when the client
    sends keys); every later write, after a 412, is a new attempt with a new key.
    """
    attempts = context.attempts(max_attempts)
    current = yield from read(context, url, attempts)
    mine = _apply(change, current.document)
    writes = 0
    while True:
        body = _write_body(context.api, write, current.document, mine)
        if body is None:
            return Updated(current.document, current.etag, writes)
        etag = responses.required_etag(current, url)
        request = context.write_request(
            write.method,
            url,
            json=body,
            # RFC 9110 §13.1.1: apply the write only to the version it was computed from.
            headers={"If-Match": str(etag), "Content-Type": write.content_type},
            key=key if writes == 0 else None,
        )
        writes += 1
        response = yield from send(request, attempts)
        target = str(request.url)
        if response.is_success:
            return _written(context, target, response, mine, writes)
        if response.status_code != 412:
            raise responses.failure(response)
        # RFC 9110 §15.5.13: the resource changed since we read it (or the tag we sent
        # can never match); the 412's body is a problem, not the document.
        reported = responses.current_etag(response)
        if reported == etag:
            raise PreconditionFailed(reported, f"{target} refuses the ETag it serves: {etag}")
        delay = attempts.next_delay(response)
        if delay is None:
            raise PreconditionFailed(
                reported, f"{target} kept changing: gave up after {writes} conditional writes"
            )
        yield Sleep(delay)
        theirs = yield from read(context, url, attempts)
        if theirs.etag == etag:
            raise PreconditionFailed(theirs.etag, f"{target} refuses the ETag it serves: {etag}")
        if on_conflict is OnConflict.MERGE:
            mine = merge(current.document, theirs.document, mine)
        else:
            mine = _apply(change, theirs.document)
        current = theirs


def _written(
    context: Context, key: str, response: httpx.Response, sent: JSON, writes: int
) -> Updated:
    etag = responses.etag(response)
    replayed = keys.replayed(response)
    try:
        document = context.api.document(response.json())
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
        # The write happened; an answer without the document (204, or a bare status
        # body) must not turn it into a failure. What we sent is what was written.
        context.cache.discard(key)
        return Updated(sent, etag, writes, replayed)
    context.cache.put(key, document, etag)
    return Updated(document, etag, writes, replayed)

"""The fake API of tests/support/fake_api.py, honouring Idempotency-Key as
draft-ietf-httpapi-idempotency-key-header asks, on :mod:`optimist.idempotency`'s decisions.

A write's key is recorded in flight, then with the answer when that answer is one a
server keeps (:func:`~optimist.idempotency.storable`), in the same lock as the write's
outcome; a copy of the write (same method, target, preconditions and body) gets the
stored answer again, marked ``Idempotent-Replayed``; the key with another request is the
422 of :class:`~optimist.errors.IdempotencyKeyReused`, and a copy that arrives while the
first is in flight the 409 of :class:`~optimist.errors.IdempotencyKeyInFlight`, as the
service's problem details (:func:`optimist.problem.from_error`) write them.

``in_flight`` makes that many keyed writes meet the 409 (with ``Retry-After: 1``) as if
an earlier copy were still being processed.
"""

from __future__ import annotations

from typing import Any

import httpx

from optimist.idempotency import (
    REPLAYED_HEADER,
    REPLAYED_VALUE,
    Completed,
    Conflict,
    Fingerprint,
    IdempotencyKey,
    InFlight,
    Mismatch,
    Proceed,
    Record,
    Replay,
    StoredResponse,
    decide,
    parse,
    storable,
)
from optimist.problem import from_error
from tests.support.fake_api import FakeServer

__all__ = ["KeyedServer"]

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class KeyedServer(FakeServer):
    """A :class:`FakeServer` that honours Idempotency-Key on its writes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.records: dict[str, Record] = {}
        self.in_flight = 0

    def _respond(self, request: httpx.Request) -> httpx.Response:
        key = parse(request.headers.get_list("Idempotency-Key"))
        if key is None or request.method not in _UNSAFE:
            return self._handle(request)
        return self._keyed(request, key)

    def _keyed(self, request: httpx.Request, key: IdempotencyKey) -> httpx.Response:
        fingerprint = Fingerprint.of(
            request.method,
            request.url.raw_path.decode("ascii"),
            body=request.content,
            media_type=request.headers.get("Content-Type"),
            if_match=request.headers.get_list("If-Match") or None,
            if_none_match=request.headers.get_list("If-None-Match") or None,
        )
        with self.lock:
            decision = decide(self.records.get(key.value), fingerprint)
            if self.in_flight and not isinstance(decision, Mismatch):
                self.in_flight -= 1
                decision = Conflict()
            if isinstance(decision, Proceed):
                self.records[key.value] = InFlight(fingerprint)
        if isinstance(decision, Replay):
            stored = decision.response
            headers = [*stored.headers, (REPLAYED_HEADER, REPLAYED_VALUE)]
            return httpx.Response(stored.status, headers=headers, content=stored.body)
        if isinstance(decision, Conflict | Mismatch):
            error = decision.error(key)
            retry = {"Retry-After": "1"} if isinstance(decision, Conflict) else {}
            return httpx.Response(
                error.status,
                json=from_error(error).to_dict(),
                headers={**retry, "Content-Type": "application/problem+json"},
            )
        response = self._handle(request)
        with self.lock:
            if storable(response.status_code):
                captured = StoredResponse.capture(
                    response.status_code, response.headers.multi_items(), response.content
                )
                self.records[key.value] = Completed(fingerprint, captured)
            else:
                del self.records[key.value]  # the request may be corrected and sent again
        return response

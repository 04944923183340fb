"""Idempotency keys on the client: fresh and valid keys, stamping, reading the answers;
and the law the keys exist for, over any run of lost answers, busy answers and conflicts.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimist.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    OptimistError,
    ResourceExists,
)
from optimist.httpx import OnConflict
from optimist.httpx.flows import TRANSPORT_ATTEMPTS
from optimist.httpx.keys import error, in_flight, key_of, new_key, replayed, stamp
from optimist.idempotency import IdempotencyKey, parse
from optimist.merge import JSON
from optimist.problem import from_error
from tests.httpx.keyed_api import KeyedServer
from tests.support.fake_api import BASE, Rig

KEY = IdempotencyKey("k-1")
DOCS = "https://api.example/docs/idempotency"

# -- keys --------------------------------------------------------------------------------------


@given(st.integers(min_value=2, max_value=64))
def test_new_keys_are_unique_and_valid_sf_strings(count: int) -> None:
    """Every key new_key() makes differs from the others and parses back as itself."""
    made = [new_key() for _ in range(count)]
    assert len({key.value for key in made}) == count
    assert all(parse(key.serialize()) == key for key in made)


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=255))
def test_a_stamped_key_reads_back_as_itself(value: str) -> None:
    """Any valid key, quotes and backslashes included, is sent as an sf-string that
    parses back to it."""
    request = httpx.Request("POST", BASE)
    stamp(request, IdempotencyKey(value))
    assert key_of(request) == IdempotencyKey(value)
    assert parse(request.headers["Idempotency-Key"]) == IdempotencyKey(value)


def test_a_request_without_a_key_has_none() -> None:
    """key_of() is None for a request that carries no Idempotency-Key."""
    assert key_of(httpx.Request("POST", BASE)) is None


# -- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Idempotent-Replayed": "true"}, True), ({"Idempotent-Replayed": "True"}, True),
     ({"Idempotent-Replayed": "false"}, False), ({}, False)],
    ids=["true", "case-insensitive", "false", "absent"],
)  # fmt: skip
def test_replayed_reads_the_replay_marker(headers: dict[str, str], expected: bool) -> None:
    """A response is a replay when its Idempotent-Replayed field says true."""
    assert replayed(httpx.Response(200, headers=headers)) is expected


def _answer(
    status_error: OptimistError, *, keyed: bool = True, method: str = "POST"
) -> httpx.Response:
    request = httpx.Request(method, BASE)
    if keyed:
        stamp(request, KEY)
    body = from_error(status_error).to_dict()
    return httpx.Response(status_error.status, json=body, request=request)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_answer(IdempotencyKeyInFlight("k-1")), True),
        (_answer(IdempotencyKeyInFlight("k-1"), keyed=False), False),
        (_answer(ResourceExists("item", "a")), False),
        (_answer(IdempotencyKeyReused("k-1", ["body"])), False),
    ],
    ids=["key-in-flight", "request-without-key", "resource-exists", "key-reused"],
)
def test_in_flight_is_the_409_naming_the_key(answer: httpx.Response, expected: bool) -> None:
    """Only a 409 problem naming the key of a keyed request is waited out."""
    assert in_flight(answer) is expected


def test_a_reused_key_is_idempotency_key_reused() -> None:
    """A 422 naming the key is IdempotencyKeyReused, with the parts that differ."""
    found = error(_answer(IdempotencyKeyReused("k-1", ["If-Match", "body"], DOCS)))
    assert isinstance(found, IdempotencyKeyReused)
    assert (found.key, found.differences, found.documentation) == (
        "k-1",
        ("If-Match", "body"),
        DOCS,
    )


def test_a_key_in_flight_is_idempotency_key_in_flight() -> None:
    """A 409 naming the key, when the waits are over, is IdempotencyKeyInFlight."""
    found = error(_answer(IdempotencyKeyInFlight("k-1")))
    assert isinstance(found, IdempotencyKeyInFlight)
    assert (found.key, found.documentation) == ("k-1", None)


def test_a_required_key_is_idempotency_key_required() -> None:
    """A 400 naming the field as required, to a request without a key, is
    IdempotencyKeyRequired."""
    found = error(_answer(IdempotencyKeyRequired("POST", "/items"), keyed=False))
    assert isinstance(found, IdempotencyKeyRequired)
    assert found.method == "POST"


def test_a_422_about_something_else_is_not_about_the_key() -> None:
    """A 422 that names no key (a body the server refuses) keeps its own meaning."""
    request = httpx.Request("POST", BASE)
    stamp(request, KEY)
    answer = httpx.Response(422, json={"status": 422, "detail": "bad"}, request=request)
    assert error(answer) is None


# -- the law -----------------------------------------------------------------------------------

#: What happens to one copy of a write: applied and answered, applied and the answer lost,
#: answered 503 before the server saw it, or preceded by another client's write (a 412).
EVENTS = st.lists(st.sampled_from(["ok", "lost", "busy", "conflict"]), max_size=10).filter(
    lambda events: ",".join(["lost"] * TRANSPORT_ATTEMPTS) not in ",".join(events)
)


class ScriptedServer(KeyedServer):
    """A keyed server whose PATCHes meet the ``script``'s events, one per copy."""

    def __init__(self, script: list[str]) -> None:
        super().__init__()
        self.script = list(script)
        self.others = 0
        #: If-Match, body and key of each PATCH as it arrived (a copy is the same object).
        self.copies: list[tuple[str, bytes, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            headers = request.headers
            self.copies.append((headers["If-Match"], request.content, headers["Idempotency-Key"]))
        if request.method == "PATCH" and self.script:
            event = self.script.pop(0)
            if event == "lost":
                self.drop.append("PATCH")
            elif event == "busy":
                self.queued.append(httpx.Response(503, headers={"Retry-After": "0"}))
            elif event == "conflict":
                self.others += 1
                self.store("a", {"other": self.others})
        return super().__call__(request)


def _increment(document: JSON) -> JSON:
    return {**document, "count": document["count"] + 1}


@pytest.mark.parametrize("mode", ["sync", "async"])
@settings(max_examples=60, deadline=None)
@given(script=EVENTS)
def test_any_run_applies_the_change_exactly_once(mode: str, script: list[str]) -> None:
    """Whatever answers are lost, busy or in conflict, an increment is applied once, and
    two writes share a key exactly when they are copies of one attempt."""
    server = ScriptedServer(script)
    server.store("a", {"count": 0})
    client = Rig(mode, server=server).client(max_attempts=50)
    anyio.run(lambda: client.update("/items/a", _increment, on_conflict=OnConflict.REAPPLY))
    assert server.doc("a")["count"] == 1
    for if_match, body, key in server.copies:
        for other_if_match, other_body, other_key in server.copies:
            assert (key == other_key) is ((if_match, body) == (other_if_match, other_body))

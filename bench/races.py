"""Many writers on one row: the optimist client under contention, and the lost-update race.

* :func:`contention`: ``clients`` optimist clients (:class:`optimist.httpx.AsyncClient`)
  increment one counter for a fixed time, each ``update`` reading, writing with
  If-Match and, on 412, rereading and reapplying. Successful writes per second,
  retries per success and how evenly the successes fall (Jain's index, min and max).
* :func:`lost_updates`: 16 plain httpx clients × 25 increments, each a GET then a
  PATCH with the served ETag as If-Match, retried on 412. Every server acknowledged
  some increments; *lost* is how many of them the final counter does not hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from optimist.errors import OptimistError
from optimist.httpx import AsyncClient, JsonApi, OnConflict
from optimist.merge import JSON

from bench.servers import Running
from bench.subjects import Subject

__all__ = ["Contention", "Race", "contention", "lost_updates"]

_RACE_TIMEOUT: Final = 180.0
_MAX_TRIES: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class _EnvelopeApi(JsonApi):
    """A JSON API whose documents come wrapped in one member (seed 003's ``result``)."""

    envelope: str = "result"

    def document(self, body: JSON) -> JSON:
        if not isinstance(body, Mapping):
            raise TypeError("the body is not an object")
        return body[self.envelope]


def _api(subject: Subject) -> JsonApi:
    owned = frozenset({"id"})
    if subject.response_envelope is None:
        return JsonApi(server_owned=owned)
    return _EnvelopeApi(server_owned=owned, envelope=subject.response_envelope)


async def _counter(running: Running, key: int) -> int:
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        response = await client.get(running.subject.item(key))
    response.raise_for_status()
    return running.subject.counter(response.json())


@dataclass(frozen=True, slots=True)
class Contention:
    """What ``clients`` conflict-aware clients achieved on one row in ``seconds``."""

    clients: int
    seconds: float
    successes: tuple[int, ...]
    writes: int
    gave_up: int
    errors: tuple[str, ...]
    lost: int

    @property
    def per_second(self) -> float:
        return sum(self.successes) / self.seconds

    @property
    def retries_per_success(self) -> float:
        done = sum(self.successes)
        return (self.writes - done) / done if done else float("nan")

    @property
    def jain(self) -> float:
        """Jain's fairness index of the successes: 1 when equal, 1/n when one client won all."""
        total = sum(self.successes)
        squares = sum(count * count for count in self.successes)
        return total * total / (len(self.successes) * squares) if squares else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "successes": list(self.successes),
            "writes": self.writes,
            "gave_up": self.gave_up,
            "errors": list(self.errors),
            "lost": self.lost,
            "per_second": self.per_second,
            "retries_per_success": self.retries_per_success,
            "jain": self.jain,
            "min": min(self.successes),
            "max": max(self.successes),
        }


def _increment(document: JSON) -> JSON:
    assert isinstance(document, Mapping)
    counter = document["counter"]
    assert isinstance(counter, int)
    return {**document, "counter": counter + 1}


async def contention(running: Running, key: int, *, clients: int, seconds: float) -> Contention:
    """``clients`` optimist clients incrementing item ``key`` for ``seconds``."""
    subject = running.subject
    path = subject.item(key)
    before = await _counter(running, key)
    successes = [0] * clients
    writes = gave_up = 0
    errors: list[str] = []
    started = time.monotonic()
    deadline = started + seconds

    async def one(index: int) -> None:
        nonlocal writes, gave_up
        http = httpx.AsyncClient(base_url=running.url, timeout=30)
        async with AsyncClient(http, api=_api(subject)) as client, http:
            while time.monotonic() < deadline:
                try:
                    updated = await client.update(path, _increment, on_conflict=OnConflict.REAPPLY)
                except OptimistError as error:
                    # The attempts ran out (PreconditionFailed), or a server error.
                    gave_up += 1
                    errors.append(type(error).__name__)
                    continue
                successes[index] += 1
                writes += updated.attempts

    await asyncio.gather(*(one(index) for index in range(clients)))
    elapsed = time.monotonic() - started
    after = await _counter(running, key)
    return Contention(
        clients=clients,
        seconds=elapsed,
        successes=tuple(successes),
        writes=writes,
        gave_up=gave_up,
        errors=tuple(sorted(set(errors))),
        lost=sum(successes) - (after - before),
    )


@dataclass
class Race:
    """What the lost-update race's clients saw, and what the row holds afterwards."""

    clients: int
    increments: int
    acknowledged: int = 0
    retries: int = 0
    final_delta: int = 0
    unexpected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    finished: bool = True

    @property
    def lost(self) -> int:
        return self.acknowledged - self.final_delta

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "increments": self.increments,
            "acknowledged": self.acknowledged,
            "final_delta": self.final_delta,
            "lost": self.lost,
            "retries": self.retries,
            "unexpected": self.unexpected,
            "seconds": self.seconds,
            "finished": self.finished,
        }


async def lost_updates(
    running: Running, key: int, *, clients: int = 16, increments: int = 25
) -> Race:
    """``clients`` × ``increments`` read-modify-write increments of item ``key``."""
    subject = running.subject
    path = subject.item(key)
    race = Race(clients, increments)
    before = await _counter(running, key)

    def unexpected(what: str, response: httpx.Response) -> None:
        name = f"{what} {response.status_code}"
        race.unexpected[name] = race.unexpected.get(name, 0) + 1

    async def one() -> None:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
            for _ in range(increments):
                for _attempt in range(_MAX_TRIES):
                    read = await client.get(path)
                    if read.status_code != 200:
                        unexpected("GET", read)
                        continue
                    value = subject.counter(read.json())
                    write = await client.patch(
                        path,
                        content=subject.write_body(value + 1),
                        headers={"If-Match": read.headers["ETag"], **_JSON_TYPE},
                    )
                    if write.status_code == 200:
                        race.acknowledged += 1
                        break
                    if write.status_code == 412:
                        race.retries += 1
                    else:
                        unexpected("PATCH", write)

    started = time.monotonic()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(clients))), timeout=_RACE_TIMEOUT
        )
    except TimeoutError:
        race.finished = False
    race.seconds = time.monotonic() - started
    race.final_delta = await _counter(running, key) - before
    return race


_JSON_TYPE: Final = {"Content-Type": "application/json"}

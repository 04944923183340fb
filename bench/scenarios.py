"""The load scenarios, measured with wrk against one running subject.

Each scenario first sends one request of its kind with httpx and checks the answer
(a 304 that is a 304, a stale If-Match that is a 412, a keyed PATCH sent twice that is
applied once and replayed, a deep page that starts 100 000 items in), then measures
with wrk. The If-Match scenarios start from the current ETag of each of their rows,
read from the subject itself just before each run: the subjects of a backend write the
same rows, one after another, so tags read at any earlier point (another round, another
subject's turn) may have been replaced since.

The keyed scenario is the If-Match one with a new Idempotency-Key on every request, so
that each PATCH claims a key and keeps its answer; divided by the If-Match scenario of
the same subject, it is what a key costs. A key is never sent twice (a run's keys
begin with a token made for that run), and a run that meets a replay is refused.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from bench.database import HOT_ROWS
from bench.load import Load, write_etags, wrk
from bench.servers import Running
from bench.subjects import PAGE_SIZE

__all__ = [
    "IF_MATCH_SCENARIOS",
    "ITEM_SCENARIOS",
    "KEYED",
    "PAGE_SCENARIOS",
    "SCENARIOS",
    "Measure",
    "ScenarioFailed",
    "measure",
    "warm_up",
]

#: Scenario names and what the report calls them.
SCENARIOS: Final[Mapping[str, str]] = {
    "get": "GET one item (200)",
    "revalidate": "GET with a matching If-None-Match (304)",
    "patch": "PATCH without If-Match, 1 000 rows",
    "patch_if_match": "PATCH with the current If-Match, 1 000 rows",
    "patch_if_match_keyed": "PATCH with the current If-Match and a new Idempotency-Key, 1 000 rows",
    "page_first": f"list: page 1 ({PAGE_SIZE} items)",
    "page_deep": f"list: the page 100 000 items deep ({PAGE_SIZE} items)",
}
#: The scenario whose every request carries a new Idempotency-Key (subjects with
#: ``idempotency_keys`` only).
KEYED: Final = "patch_if_match_keyed"
ITEM_SCENARIOS: Final = ("get", "revalidate", "patch", "patch_if_match", KEYED)
PAGE_SCENARIOS: Final = ("page_first", "page_deep")
#: The scenarios that write each row with its current ETag, read just before the run.
IF_MATCH_SCENARIOS: Final = ("patch_if_match", KEYED)
_WRITTEN_COUNTER: Final = 7
_JSON: Final = {"Content-Type": "application/json"}
_KEY: Final = "Idempotency-Key"
_REPLAYED: Final = "Idempotent-Replayed"


class ScenarioFailed(RuntimeError):
    """A subject answered a scenario's check request wrongly."""


@dataclass(frozen=True, slots=True)
class Measure:
    """How long and how hard to load, where the deep page is, where scratch files go."""

    seconds: float
    connections: int
    depth: int
    rows: int
    workdir: Path


async def _etags(running: Running, keys: range) -> dict[int, str]:
    subject = running.subject
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=running.url, limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(16)

        async def one(key: int) -> tuple[int, str]:
            async with gate:
                response = await client.get(subject.item(key))
            if response.status_code != 200 or "ETag" not in response.headers:
                raise ScenarioFailed(f"GET {subject.item(key)}: {response.status_code}")
            return key, response.headers["ETag"]

        return dict(await asyncio.gather(*(one(key) for key in keys)))


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise ScenarioFailed(
            f"{what}: expected {status}, got {response.status_code}: {response.text[:300]}"
        )


def _new_key(prefix: str) -> str:
    """An Idempotency-Key (an sf-string) no request has carried before."""
    return f'"{prefix}-{secrets.token_hex(8)}"'


async def _check_keyed(client: httpx.AsyncClient, item: str, body: str) -> None:
    """A keyed conditional PATCH sent twice: the second gets the first's answer, marked
    as a replay, and the row is written once."""
    tag = (await client.get(item)).headers["ETag"]
    headers = {**_JSON, "If-Match": tag, _KEY: _new_key("check")}
    first = await client.patch(item, content=body, headers=headers)
    _expect(first, 200, "PATCH with the current If-Match and a new Idempotency-Key")
    if _REPLAYED in first.headers:
        raise ScenarioFailed("the first answer to a new Idempotency-Key is marked as a replay")
    # Applied again, this resend would meet its stale If-Match: a 412, not the first 200.
    again = await client.patch(item, content=body, headers=headers)
    _expect(again, 200, "the same PATCH with the same Idempotency-Key")
    replayed = (again.headers.get(_REPLAYED), again.headers.get("ETag"), again.content)
    if replayed != ("true", first.headers.get("ETag"), first.content):
        raise ScenarioFailed(
            f"the resend is not the first answer replayed: {_REPLAYED} "
            f"{replayed[0]!r}, ETag {replayed[1]!r} after {first.headers.get('ETag')!r}"
        )
    now = (await client.get(item)).headers.get("ETag")
    if now != first.headers.get("ETag"):
        raise ScenarioFailed(f"the resend wrote the row again: its ETag is now {now!r}")


async def _check_item(running: Running, scenario: str) -> None:
    subject = running.subject
    item = subject.item(1)
    body = subject.write_body(_WRITTEN_COUNTER)
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        if scenario == "get":
            _expect(await client.get(item), 200, "GET")
        elif scenario == "revalidate":
            tag = (await client.get(item)).headers["ETag"]
            _expect(await client.get(item, headers={"If-None-Match": tag}), 304, "revalidate")
        elif scenario == "patch":
            _expect(await client.patch(item, content=body, headers=_JSON), 200, "PATCH")
        elif scenario == KEYED:
            await _check_keyed(client, item, body)
        else:
            tag = (await client.get(item)).headers["ETag"]
            first = await client.patch(item, content=body, headers={**_JSON, "If-Match": tag})
            _expect(first, 200, "PATCH with the current If-Match")
            again = await client.patch(item, content=body, headers={**_JSON, "If-Match": tag})
            _expect(again, 412, "PATCH with a stale If-Match")


async def _check_page(running: Running, path: str, first: int) -> None:
    subject = running.subject
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        response = await client.get(path)
    _expect(response, 200, path)
    listed = subject.listed(response.json())
    start = int(listed[0]["id"]) if listed else None
    if len(listed) != PAGE_SIZE or start != first:
        raise ScenarioFailed(f"{path}: {len(listed)} items from {start}, not from {first}")


async def measure(running: Running, scenario: str, settings: Measure) -> Load:
    """Check, then load ``running`` with ``scenario`` for ``settings.seconds``."""
    subject = running.subject
    prefix = subject.item_prefix
    body = subject.write_body(_WRITTEN_COUNTER)
    rows = str(HOT_ROWS)
    if scenario in PAGE_SCENARIOS:
        if subject.deep_page is None:
            raise ScenarioFailed(f"{subject.name} has no list")
        if scenario == "page_first":
            path, first = subject.first_page, 1
        else:
            path, first = subject.deep_page(settings.depth, settings.rows), settings.depth + 1
        await _check_page(running, path, first)
        arguments = ["path", path, "0", "1"]
    else:
        await _check_item(running, scenario)
        if scenario == "get":
            arguments = ["get", prefix, "1", "1"]
        elif scenario == "revalidate":
            tag = (await _etags(running, range(1, 2)))[1]
            arguments = ["revalidate", prefix, "1", "1", "", tag]
        elif scenario == "patch":
            arguments = ["patch", prefix, "1", rows, body]
        else:
            # Read now, after every earlier writer (this subject's check above included).
            tags = await _etags(running, range(1, HOT_ROWS + 1))
            table = write_etags(settings.workdir / f"etags-{subject.name}.lua", tags)
            arguments = [scenario, prefix, "1", rows, body, str(table)]
            if scenario == KEYED:
                arguments.append(secrets.token_hex(8))  # this run's keys begin with it
    load = wrk(running.url, arguments, seconds=settings.seconds, connections=settings.connections)
    running.check()
    if load.replayed:
        raise ScenarioFailed(f"{load.replayed} answers were replays: a key was sent twice")
    return load


def warm_up(running: Running, seconds: float, connections: int) -> None:
    """Load ``running`` with GETs and PATCHes for a while, and forget the figures."""
    subject = running.subject
    body = subject.write_body(_WRITTEN_COUNTER)
    for arguments in (
        ["get", subject.item_prefix, "1", "1"],
        ["patch", subject.item_prefix, "1", str(HOT_ROWS), body],
    ):
        wrk(running.url, arguments, seconds=seconds, connections=connections)

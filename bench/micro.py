"""Microbenchmarks of the framework-free core: parse + evaluate, and clock compare; and
of the JSON encoder the hot responses use.

Each figure is the best of several timeit repeats, in microseconds per operation, and
each has a baseline measured in the same run: werkzeug's ETag parsing and matching,
which every Flask application uses, and a plain-dict clock comparison. The encoders'
figures (:func:`encoders`) put Starlette's ``JSONResponse`` (the standard library's
``json``), which the apps and the service answer with, beside orjson, on an item and on
a page of 20 items as the benchmark's apps send them.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from werkzeug.http import parse_etags

from optimist.conditions import ResourceState
from optimist.etag import EntityTag
from optimist.preconditions import Preconditions, evaluate
from optimist.vclock import VectorClock

__all__ = ["Figure", "encoders", "run"]

TARGET_MICROSECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured operation and its baseline, in microseconds per operation."""

    name: str
    optimist_us: float
    baseline: str
    baseline_us: float

    @property
    def ratio(self) -> float:
        """How many times faster optimist is than the baseline (>1 is faster)."""
        return self.baseline_us / self.optimist_us


def _per_op(function: Callable[[], object], repeat: int = 7) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def _if_match(count: int) -> tuple[str, EntityTag]:
    tags = [f'"{index:016x}"' for index in range(count)]
    return ", ".join(tags), EntityTag(f"{count - 1:016x}")


def _parse_and_evaluate(count: int) -> Figure:
    header, current = _if_match(count)
    state = ResourceState(exists=True, etag=current)

    def ours() -> object:
        return evaluate(Preconditions.parse(if_match=header), "PATCH", state)

    def werkzeug() -> object:
        return parse_etags(header).contains(current.opaque)

    return Figure(
        f"parse + evaluate If-Match of {count} tag{'s' if count > 1 else ''}",
        _per_op(ours),
        "werkzeug parse_etags + contains",
        _per_op(werkzeug),
    )


def _clock_compare(nodes: int) -> Figure:
    base = {f"node-{index}": index + 1 for index in range(nodes)}
    mine = VectorClock(base)
    theirs = mine.increment("node-3")
    other = dict(theirs)

    def ours() -> object:
        return mine.compare(theirs)

    def plain() -> object:
        keys = base.keys() | other.keys()
        less = any(base.get(k, 0) < other.get(k, 0) for k in keys)
        more = any(base.get(k, 0) > other.get(k, 0) for k in keys)
        return (less, more)

    name = f"compare two {nodes}-node vector clocks"
    return Figure(name, _per_op(ours), "two dicts", _per_op(plain))


def run() -> list[Figure]:
    """Measure every microbenchmark once."""
    return [_parse_and_evaluate(1), _parse_and_evaluate(10), _clock_compare(10)]


def _encoding(name: str, document: object) -> Figure:
    # The bench extra's, imported here: the tests import this module without it.
    import orjson  # noqa: PLC0415

    def current() -> object:
        return JSONResponse(document)

    def faster() -> object:
        return orjson.dumps(document)

    return Figure(name, _per_op(current), "orjson.dumps", _per_op(faster))


def encoders() -> list[Figure]:
    """The JSON encoders on the apps' hot responses: one item, and a page of 20."""
    item = {"id": 123456, "counter": 42, "text": "the text of item 123456"}
    page = {"data": [{**item, "id": key} for key in range(20)], "next_cursor": "c" * 120}
    return [
        _encoding("encode one item as a JSON response", item),
        _encoding("encode a page of 20 items as a JSON response", page),
    ]

"""Vector clocks: a frozen value type, the causal order between two of them, and the
two encodings a client may send back (canonical JSON and a quoted entity-tag).

A :class:`VectorClock` maps node names to counters. A node that is missing counts 0 and a
zero counter is never stored, so equal clocks have exactly one representation, one JSON
text and one entity-tag. Everything from the outside (a body member, an ETag, an If-Match)
is parsed once into a clock; after that, code compares clocks with :meth:`VectorClock.compare`
and acts on the :class:`Ordering`, never on strings.

Hostile input stays cheap: texts are bounded before they are parsed, a clock holds at most
:data:`MAX_NODES` nodes, node names are short and drawn from the URL-unreserved characters
(so they need no escaping inside a tag), and counters stay within the integers every JSON
implementation reads exactly. Every failure raises
:class:`~optimist.errors.InvalidVectorClock`.

The entity-tag encoding is ``"node-a=3;node-b=5"``: nodes sorted, counters in decimal
without leading zeros, the empty clock being ``""``. Only that canonical form is accepted.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NoReturn

from optimist import etag
from optimist._text import shorten
from optimist.errors import InvalidEntityTag, InvalidVectorClock

__all__ = [
    "MAX_COUNTER",
    "MAX_NODES",
    "MAX_TEXT_LENGTH",
    "Ordering",
    "VectorClock",
]

#: The most nodes one clock may hold.
MAX_NODES: Final = 64
#: The largest counter: the largest integer an IEEE double (a JavaScript number) holds exactly.
MAX_COUNTER: Final = 2**53 - 1
#: The longest JSON text or header value parsed; the canonical forms of the largest
#: clock take about 5 400 characters, which leaves room for a client's whitespace.
MAX_TEXT_LENGTH: Final = 8192

_NODE: Final = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_COUNTER: Final = re.compile(r"[1-9][0-9]{0,15}")
_OWS: Final = " \t"


class Ordering(enum.Enum):
    """How one clock relates to another in causal (happened-before) order."""

    #: Every counter is at most the other's and one is smaller: the other saw all of it.
    BEFORE = "before"
    #: The mirror of BEFORE: this clock saw everything the other did, and more.
    AFTER = "after"
    #: The same counters.
    EQUAL = "equal"
    #: Each has a counter the other lacks: neither saw all of the other's writes.
    CONCURRENT = "concurrent"


class _Rejected(Exception):
    """Why a clock was rejected; the public entry points add the field and the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _shown(text: str, limit: int = 32) -> str:
    """A node name as it may appear in a reason, shortened if hostile."""
    return repr(shorten(text, limit))


def _checked_node(node: object) -> str:
    if not isinstance(node, str) or _NODE.fullmatch(node) is None:
        shown = _shown(node) if isinstance(node, str) else type(node).__name__
        raise _Rejected(f"node name {shown} must be 1 to 64 of A-Z a-z 0-9 . _ ~ -")
    return node


def _checked(pairs: Iterable[tuple[object, object]]) -> dict[str, int]:
    """The canonical counters (sorted, zeros dropped) of a mapping's items, or _Rejected."""
    counters: dict[str, int] = {}
    for count, (node, counter) in enumerate(pairs, start=1):
        if count > MAX_NODES:
            raise _Rejected(f"more than {MAX_NODES} nodes")
        name = _checked_node(node)
        # bool is an int in Python but never a counter in JSON.
        if isinstance(counter, bool) or not isinstance(counter, int):
            raise _Rejected(f"the counter of node {_shown(name)} must be an integer")
        if not 0 <= counter <= MAX_COUNTER:
            raise _Rejected(f"the counter of node {_shown(name)} must be 0 to {MAX_COUNTER}")
        if counter:
            counters[name] = int(counter)
    return dict(sorted(counters.items()))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a repeated member name is ambiguous, so it is refused."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Rejected("a JSON object member appears twice")
    return result


class VectorClock(Mapping[str, int]):
    """An immutable, hashable vector clock: a read-only mapping of node name to counter.

    ``VectorClock({"a": 1})`` validates its argument like any parser does. Equality holds
    between clocks only (``VectorClock() != {}``), so a clock is never mistaken for a plain
    dict of the same items.
    """

    __slots__ = ("_counters", "_hash")

    _counters: dict[str, int]
    _hash: int

    def __init__(self, counters: Mapping[str, int] | None = None) -> None:
        try:
            checked = _checked(counters.items()) if counters else {}
        except _Rejected as rejected:
            raise InvalidVectorClock("vector_clock", repr(counters), rejected.reason) from None
        self._set(checked)

    def _set(self, counters: dict[str, int]) -> None:
        object.__setattr__(self, "_counters", counters)
        object.__setattr__(self, "_hash", hash(tuple(counters.items())))

    @classmethod
    def _of(cls, counters: dict[str, int]) -> VectorClock:
        """A clock from counters already canonical (sorted, no zeros) and within bounds."""
        clock = object.__new__(cls)
        clock._set(counters)
        return clock

    # -- read-only mapping -------------------------------------------------------------

    def __getitem__(self, node: str) -> int:
        return self._counters[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counters)

    def __len__(self) -> int:
        return len(self._counters)

    def __contains__(self, node: object) -> bool:
        return node in self._counters

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VectorClock):
            return self._counters == other._counters
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"VectorClock({self._counters!r})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"VectorClock is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"VectorClock is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[VectorClock], tuple[dict[str, int]]]:
        return (VectorClock, (dict(self._counters),))

    # -- the algebra -------------------------------------------------------------------

    def increment(self, node: str) -> VectorClock:
        """The clock after one more write on ``node``."""
        try:
            name = _checked_node(node)
        except _Rejected as rejected:
            raise InvalidVectorClock("node", str(node), rejected.reason) from None
        current = self._counters.get(name, 0)
        if current >= MAX_COUNTER:
            raise InvalidVectorClock("node", name, f"the counter would exceed {MAX_COUNTER}")
        if not current and len(self._counters) >= MAX_NODES:
            raise InvalidVectorClock("node", name, f"a clock holds at most {MAX_NODES} nodes")
        counters = dict(self._counters)
        counters[name] = current + 1
        return VectorClock._of(dict(sorted(counters.items())))

    def merge(self, other: VectorClock) -> VectorClock:
        """The least clock that both ``self`` and ``other`` happened before (pointwise max)."""
        nodes = sorted(self._counters.keys() | other._counters.keys())
        if len(nodes) > MAX_NODES:
            raise InvalidVectorClock(
                "vector_clock", repr(other), f"the merge would hold more than {MAX_NODES} nodes"
            )
        mine, theirs = self._counters, other._counters
        return VectorClock._of({n: max(mine.get(n, 0), theirs.get(n, 0)) for n in nodes})

    def compare(self, other: VectorClock) -> Ordering:
        """Where ``self`` stands relative to ``other``: BEFORE means ``self`` happened first."""
        mine, theirs = self._counters, other._counters
        behind = ahead = False
        for node in mine.keys() | theirs.keys():
            a, b = mine.get(node, 0), theirs.get(node, 0)
            behind = behind or a < b
            ahead = ahead or a > b
        if behind and ahead:
            return Ordering.CONCURRENT
        if behind:
            return Ordering.BEFORE
        if ahead:
            return Ordering.AFTER
        return Ordering.EQUAL

    # -- JSON --------------------------------------------------------------------------

    def to_json(self) -> str:
        """The canonical JSON text: sorted members, no whitespace, e.g. ``{"a":1,"b":2}``."""
        return json.dumps(self._counters, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, *, field: str = "vector_clock") -> VectorClock:
        """Parse a JSON object of node name → counter (any valid JSON spelling of one)."""
        if isinstance(text, bytes | bytearray):
            shown = bytes(text[:MAX_TEXT_LENGTH]).decode("utf-8", "replace")
            if len(text) > MAX_TEXT_LENGTH:
                _fail(field, shown, f"longer than {MAX_TEXT_LENGTH} bytes")
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                _fail(field, shown, "not UTF-8")
        if not isinstance(text, str):
            _fail(field, repr(text), "expected JSON text")
        if len(text) > MAX_TEXT_LENGTH:
            _fail(field, text, f"longer than {MAX_TEXT_LENGTH} characters")
        try:
            document = json.loads(
                text, object_pairs_hook=_reject_duplicates, parse_constant=_no_constant
            )
        except _Rejected as rejected:
            _fail(field, text, rejected.reason)
        except RecursionError:
            _fail(field, text, "JSON nested too deeply")
        except ValueError as error:  # JSONDecodeError, or an integer too long to convert
            _fail(field, text, f"not JSON: {error}")
        if not isinstance(document, dict):
            _fail(field, text, "expected a JSON object of node name to counter")
        try:
            return cls._of(_checked(document.items()))
        except _Rejected as rejected:
            _fail(field, text, rejected.reason)

    # -- entity tags -------------------------------------------------------------------

    def to_etag(self) -> etag.EntityTag:
        """The strong entity-tag ``"a=1;b=2"`` (sorted nodes; the empty clock is ``""``)."""
        return etag.EntityTag(";".join(f"{node}={n}" for node, n in self._counters.items()))

    @classmethod
    def from_etag(cls, tag: etag.EntityTag, *, field: str = "ETag") -> VectorClock:
        """The clock a tag made by :meth:`to_etag` encodes; weak or non-canonical tags fail."""
        return cls._from_tag(tag, field, str(tag))

    @classmethod
    def from_header(cls, value: str, *, field: str = "If-Match") -> VectorClock:
        """The clock in an If-Match field value: the quoted tag, or the clock as raw JSON.

        Seed 000's clients send the clock's JSON itself; an ETag copied from a response
        is the quoted tag. ``*`` and lists are preconditions, not clocks: the caller
        decides those before asking for a clock, and they fail here.
        """
        if not isinstance(value, str):
            _fail(field, repr(value), "expected a header value")
        if len(value) > MAX_TEXT_LENGTH:
            _fail(field, value, f"longer than {MAX_TEXT_LENGTH} characters")
        if value.lstrip(_OWS).startswith("{"):
            return cls.from_json(value, field=field)
        try:
            tag = etag.parse(value, field=field)
        except InvalidEntityTag as error:
            _fail(field, value, error.reason)
        return cls._from_tag(tag, field, value)

    @classmethod
    def _from_tag(cls, tag: etag.EntityTag, field: str, value: str) -> VectorClock:
        # RFC 9110 §13.1.1: If-Match compares strongly, so a weak tag never matches a clock.
        if tag.weak:
            _fail(field, value, "a vector clock is a strong entity-tag, not a weak one")
        opaque = tag.opaque
        if not opaque:
            return cls._of({})
        if len(opaque) > MAX_TEXT_LENGTH:
            _fail(field, value, f"longer than {MAX_TEXT_LENGTH} characters")
        members = opaque.split(";")
        if len(members) > MAX_NODES:
            _fail(field, value, f"more than {MAX_NODES} nodes")
        counters: dict[str, int] = {}
        previous = ""
        for member in members:
            node, equals, digits = member.partition("=")
            try:
                _checked_node(node)
            except _Rejected as rejected:
                _fail(field, value, rejected.reason)
            if not equals or _COUNTER.fullmatch(digits) is None:
                _fail(field, value, f"node {_shown(node)} needs =<counter>, a positive decimal")
            counter = int(digits)
            if counter > MAX_COUNTER:
                _fail(field, value, f"the counter of node {_shown(node)} exceeds {MAX_COUNTER}")
            # One tag per clock: members strictly ascending, so no repeats and one order.
            if node <= previous:
                _fail(field, value, "nodes must be listed once each, in ascending order")
            previous = node
            counters[node] = counter
        return cls._of(counters)


def _no_constant(name: str) -> NoReturn:
    """json hook: NaN and Infinity are not JSON (RFC 8259 §6)."""
    raise _Rejected(f"{name} is not a JSON number")


def _fail(field: str, value: str, reason: str) -> NoReturn:
    raise InvalidVectorClock(field, value, reason) from None

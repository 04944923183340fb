"""Entity tags (RFC 9110 §8.8.3): one frozen value type, a parser, and the comparisons.

A header value is parsed once, at the boundary, into :class:`EntityTag` values (or the
wildcard :data:`ANY`); everything after that compares values, never header strings.

Grammar (RFC 9110 §8.8.3, §13.1.1, §5.6.1)::

    If-Match      = "*" / #entity-tag
    entity-tag    = [ weak ] opaque-tag
    weak          = %s"W/"
    opaque-tag    = DQUOTE *etagc DQUOTE
    etagc         = %x21 / %x23-7E / obs-text          ; obs-text = %x80-FF
    #element      = [ element ] *( OWS "," OWS [ element ] )   ; empty elements allowed

Some clients send a tag back without its quotes (seed 003 copies the body's bare
``etag`` into If-Match). :func:`parse_list` accepts such a bare token only when asked
with ``allow_bare=True``; it is read as a strong tag with that opaque value. A bare
token is a run of etagc other than ``,`` that starts with neither ``W/`` nor ``*``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from optimist.errors import InvalidEntityTag

__all__ = [
    "ANY",
    "MAX_TAGS",
    "Comparison",
    "EntityTag",
    "TagMatch",
    "Wildcard",
    "format_list",
    "matches_any",
    "parse",
    "parse_list",
]


def _is_etagc(ch: str) -> bool:
    code = ord(ch)
    # RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text (obs-text = %x80-FF, §5.5)
    return code == 0x21 or 0x23 <= code <= 0x7E or 0x80 <= code <= 0xFF


_OWS: Final = " \t"

#: The most entity-tags a list may hold. The RFC sets no bound; this one keeps hostile
#: input cheap (and within every database's limit on statement parameters) while no
#: client that sends back the tags it was given comes near it.
MAX_TAGS: Final = 1000

# The same grammar as regular expressions: a fast path for the common, valid case.
# Only when it fails does the scanner below run again, to say where and why.
_ETAGC: Final = r"[\x21\x23-\x7e\x80-\xff]"
_OPAQUE_RE: Final = re.compile(f"{_ETAGC}*")
_TAG: Final = rf'(W/)?"({_ETAGC}*)"'
_BARE: Final = r"(?!W/|\*)([\x21\x23-\x2b\x2d-\x7e\x80-\xff]+)"
_ANY_RE: Final = re.compile(r"[ \t]*\*[ \t]*")
_LIST_RE: Final = re.compile(rf"[ \t,]*{_TAG}(?:[ \t]*,[ \t,]*{_TAG})*[ \t,]*")
_TAG_RE: Final = re.compile(_TAG)
_ONE_RE: Final = re.compile(rf"[ \t]*{_TAG}[ \t]*")
_BARE_LIST_RE: Final = re.compile(
    rf"[ \t,]*(?:{_TAG}|{_BARE})(?:[ \t]*,[ \t,]*(?:{_TAG}|{_BARE}))*[ \t,]*"
)
_BARE_TAG_RE: Final = re.compile(rf"{_TAG}|{_BARE}")


class Comparison(enum.Enum):
    """How two entity tags are compared (RFC 9110 §8.8.3.2)."""

    #: Both strong and the same opaque-tag: what If-Match uses.
    STRONG = "strong"
    #: The same opaque-tag, weakness ignored: what If-None-Match uses.
    WEAK = "weak"


@dataclass(frozen=True, slots=True)
class EntityTag:
    """An entity tag: an ``opaque`` value (without quotes) and whether it is ``weak``."""

    opaque: str
    weak: bool = False

    def __post_init__(self) -> None:
        if _OPAQUE_RE.fullmatch(self.opaque) is None:
            index, ch = next((i, c) for i, c in enumerate(self.opaque) if not _is_etagc(c))
            raise InvalidEntityTag("ETag", self.opaque, f"character {ch!r} is not etagc", index)

    def __str__(self) -> str:
        return f'W/"{self.opaque}"' if self.weak else f'"{self.opaque}"'

    def strong_match(self, other: EntityTag) -> bool:
        """RFC 9110 §8.8.3.2: equal only if neither is weak and the opaque-tags match."""
        return not self.weak and not other.weak and self.opaque == other.opaque

    def weak_match(self, other: EntityTag) -> bool:
        """RFC 9110 §8.8.3.2: equal if the opaque-tags match, whatever the weakness."""
        return self.opaque == other.opaque

    def matches(self, other: EntityTag, comparison: Comparison) -> bool:
        """Compare with ``other`` using the given comparison function."""
        if comparison is Comparison.STRONG:
            return self.strong_match(other)
        return self.weak_match(other)

    def as_weak(self) -> EntityTag:
        """The weak tag with the same opaque value."""
        return self if self.weak else EntityTag(self.opaque, weak=True)

    @classmethod
    def _parsed(cls, opaque: str, weak: bool) -> EntityTag:
        """A tag whose opaque value the list grammar's expression has already checked."""
        tag = object.__new__(cls)
        object.__setattr__(tag, "opaque", opaque)
        object.__setattr__(tag, "weak", weak)
        return tag


def matches_any(tags: tuple[EntityTag, ...], current: EntityTag, comparison: Comparison) -> bool:
    """Whether any of ``tags`` matches ``current`` under ``comparison`` (RFC 9110 §8.8.3.2)."""
    if comparison is Comparison.STRONG:
        return not current.weak and any(
            not tag.weak and tag.opaque == current.opaque for tag in tags
        )
    return any(tag.opaque == current.opaque for tag in tags)


class Wildcard(enum.Enum):
    """The ``*`` member of If-Match and If-None-Match (RFC 9110 §13.1.1, §13.1.2)."""

    ANY = "*"

    def __str__(self) -> str:
        return "*"


#: ``*``: matches any current representation.
ANY: Final = Wildcard.ANY

#: A parsed If-Match / If-None-Match field value.
TagMatch: TypeAlias = Literal[Wildcard.ANY] | tuple[EntityTag, ...]


class _Scanner:
    """Cursor over one field value; raises :class:`InvalidEntityTag` with a position."""

    __slots__ = ("field", "pos", "text")

    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.pos = 0

    def fail(self, reason: str) -> InvalidEntityTag:
        return InvalidEntityTag(self.field, self.text, reason, self.pos)

    def skip_ows(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _OWS:
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def entity_tag(self, allow_bare: bool) -> EntityTag:
        text, start = self.text, self.pos
        weak = text.startswith("W/", start)
        if weak:
            self.pos += 2
        if self.peek() != '"':
            if allow_bare and not weak:
                return self.bare_token()
            raise self.fail("expected '\"' to open an opaque-tag")
        end = text.find('"', self.pos + 1)
        if end < 0:
            raise self.fail("unterminated opaque-tag")  # reported at its opening quote
        self.pos += 1
        opaque = text[self.pos : end]
        for offset, ch in enumerate(opaque):
            if not _is_etagc(ch):
                self.pos += offset
                raise self.fail(f"character {ch!r} is not allowed in an opaque-tag")
        self.pos = end + 1
        return EntityTag(opaque, weak=weak)

    def bare_token(self) -> EntityTag:
        text, start = self.text, self.pos
        if text.startswith("*", start):
            # A bare "*" would read as the wildcard to one recipient and a tag to another.
            raise self.fail("a bare entity-tag cannot start with '*'")
        pos = start
        # OWS is not etagc; "," is, but here it separates list members.
        while pos < len(text) and text[pos] != "," and _is_etagc(text[pos]):
            pos += 1
        if pos == start:
            raise self.fail("expected an entity-tag")
        self.pos = pos
        return EntityTag(text[start:pos])


def parse_list(value: str, *, field: str = "If-Match", allow_bare: bool = False) -> TagMatch:
    """Parse an If-Match / If-None-Match field value into ``ANY`` or a tuple of tags.

    Raises :class:`InvalidEntityTag` (with the position) on anything the grammar in
    this module's docstring does not produce. A value with no element at all (empty,
    or only commas and whitespace) is the empty tuple: RFC 9110 writes ``#entity-tag``,
    which admits zero members (RFC 7232 had ``1#entity-tag``), and an empty list
    matches nothing, so such an If-Match is false and such an If-None-Match true.
    """
    # The usual value, one quoted tag, first: one expression decides it.
    one = _ONE_RE.fullmatch(value)
    if one is not None:
        return (EntityTag._parsed(one[2], one[1] is not None),)
    if _ANY_RE.fullmatch(value):
        return ANY
    tags: TagMatch
    if allow_bare and _BARE_LIST_RE.fullmatch(value):
        tags = tuple(
            EntityTag._parsed(bare, False) if bare else EntityTag._parsed(opaque, weak == "W/")
            for weak, opaque, bare in _BARE_TAG_RE.findall(value)
        )
    elif not allow_bare and _LIST_RE.fullmatch(value):
        tags = tuple(
            EntityTag._parsed(opaque, weak == "W/") for weak, opaque in _TAG_RE.findall(value)
        )
    else:
        # Not valid: the scanner finds the first error and its position.
        tags = _scan_list(value, field, allow_bare)
    if tags is not ANY and len(tags) > MAX_TAGS:
        raise InvalidEntityTag(field, value, f"more than {MAX_TAGS} entity-tags", 0)
    return tags


def _scan_list(value: str, field: str, allow_bare: bool) -> TagMatch:
    """parse_list without the fast path: the reference the regular expressions follow."""
    scanner = _Scanner(value, field)
    scanner.skip_ows()
    if scanner.peek() == "*":
        scanner.pos += 1
        scanner.skip_ows()
        if not scanner.at_end():
            raise scanner.fail('"*" cannot be combined with other members')
        return ANY
    tags: list[EntityTag] = []
    while True:
        scanner.skip_ows()
        if scanner.at_end():
            break
        if scanner.peek() == ",":
            # RFC 9110 §5.6.1.2: a recipient MUST accept empty list elements.
            scanner.pos += 1
            continue
        tags.append(scanner.entity_tag(allow_bare))
        scanner.skip_ows()
        if scanner.at_end():
            break
        if scanner.peek() != ",":
            raise scanner.fail("expected ',' between entity-tags")
        scanner.pos += 1
    return tuple(tags)


def parse(value: str, *, field: str = "ETag", allow_bare: bool = False) -> EntityTag:
    """Parse a single entity-tag, such as an ETag field value (RFC 9110 §8.8.3)."""
    scanner = _Scanner(value, field)
    scanner.skip_ows()
    tag = scanner.entity_tag(allow_bare)
    scanner.skip_ows()
    if not scanner.at_end():
        raise scanner.fail("unexpected text after the entity-tag")
    return tag


def format_list(match: TagMatch | Iterable[EntityTag]) -> str:
    """Format ``ANY`` or tags as an If-Match / If-None-Match field value."""
    if match is ANY:
        return "*"
    return ", ".join(str(tag) for tag in match)

"""Write conditions as data: the bridge from HTTP preconditions to an atomic write.

A :class:`Condition` is a small, frozen, backend-free predicate over the *stored* state
of one resource. :meth:`optimist.preconditions.Preconditions.write_condition` builds
one from a request; a store compiles it into the write itself, for example::

    TagIn((EntityTag("a"), EntityTag("b")))   →  UPDATE … WHERE pk = :pk AND etag IN ('a', 'b')
    ABSENT                                    →  INSERT … ON CONFLICT DO NOTHING
    UnmodifiedSince(t)                        →  … AND updated_at < t + 1 second

so the check and the write are one statement. Every condition also evaluates in
memory with :meth:`Condition.holds`, which is what a store without a query language
does, and what the tests use to hold a compiled condition to its meaning.

The algebra: :data:`ALWAYS`, :data:`NEVER`, :data:`EXISTS`, :data:`ABSENT`,
:class:`TagIn`, :class:`UnmodifiedSince`, :class:`Not` and :class:`AllOf`. Stores match
on these classes (``match condition: case TagIn(tags=…): …``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import MINYEAR, UTC, datetime, timedelta

from optimist.etag import Comparison, EntityTag, matches_any

__all__ = [
    "ABSENT",
    "ALWAYS",
    "EXISTS",
    "NEVER",
    "AllOf",
    "Always",
    "Condition",
    "Exists",
    "Never",
    "Not",
    "ResourceState",
    "TagIn",
    "UnmodifiedSince",
    "all_of",
]


# The first moment an aware datetime can hold: a bound no stored time is below.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ResourceState:
    """What a condition is evaluated against: the target resource as stored, right now."""

    exists: bool
    etag: EntityTag | None = None
    last_modified: datetime | None = None

    @classmethod
    def missing(cls) -> ResourceState:
        """The state of a resource that does not exist."""
        return cls(exists=False)


class Condition:
    """Base of the condition algebra; subclasses are frozen dataclasses."""

    __slots__ = ()

    def holds(self, state: ResourceState) -> bool:
        """Whether the condition is true of ``state``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Always(Condition):
    """True: an unconditional write, or a malformed If-None-Match (RFC 9110 §13.1.2)."""

    def holds(self, state: ResourceState) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Never(Condition):
    """False: a malformed If-Match (RFC 9110 §13.1.1 admits no match)."""

    def holds(self, state: ResourceState) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Exists(Condition):
    """A current representation exists (``If-Match: *``)."""

    def holds(self, state: ResourceState) -> bool:
        return state.exists


@dataclass(frozen=True, slots=True)
class Absent(Condition):
    """No current representation exists (``If-None-Match: *``): create only if absent."""

    def holds(self, state: ResourceState) -> bool:
        return not state.exists


@dataclass(frozen=True, slots=True)
class TagIn(Condition):
    """The stored entity tag matches one of ``tags`` under ``comparison``."""

    tags: tuple[EntityTag, ...]
    comparison: Comparison = Comparison.STRONG

    def holds(self, state: ResourceState) -> bool:
        current = state.etag
        if not state.exists or current is None:
            return False
        return matches_any(self.tags, current, self.comparison)

    def candidates(self, stored_weak: bool) -> frozenset[str]:
        """The opaque values a stored tag of the given weakness must have to match.

        A store that keeps only the opaque value (and knows whether its tags are weak)
        compiles this condition to ``opaque IN candidates``. Under strong comparison a
        weak tag matches nothing (RFC 9110 §8.8.3.2), so the set may be empty.
        """
        if self.comparison is Comparison.STRONG:
            if stored_weak:
                return frozenset()
            return frozenset(tag.opaque for tag in self.tags if not tag.weak)
        return frozenset(tag.opaque for tag in self.tags)


@dataclass(frozen=True, slots=True)
class UnmodifiedSince(Condition):
    """The stored modification time, at one-second resolution, is at or before ``at``.

    RFC 9110 §13.1.4: the field is ignored when the resource has no modification date.
    """

    at: datetime

    def __post_init__(self) -> None:
        # A naive time is read as UTC, as ResourceState's are, so comparisons never mix
        # naive and aware datetimes.
        if self.at.tzinfo is None:
            object.__setattr__(self, "at", self.at.replace(tzinfo=UTC))

    @property
    def before(self) -> datetime | None:
        """The exclusive UTC bound a full-precision stored time must stay below, or None.

        At one-second resolution ``floor(modified) <= at`` is ``modified < at + 1s``, so a
        store compares its timestamp column once, index-friendly. At the ends of what a
        datetime holds the bound stays exact: None when it lies past the last
        representable time (``at`` in the last second of year 9999), where every stored
        time meets the condition; the first representable time when ``at`` lies before
        it, where none does.
        """
        second = self.at.replace(microsecond=0)
        try:
            return second.astimezone(UTC) + timedelta(seconds=1)
        except OverflowError:
            # Only a bound at an end of the range overflows, in UTC or one second on.
            return _EARLIEST if second.year == MINYEAR else None

    def holds(self, state: ResourceState) -> bool:
        if not state.exists or state.last_modified is None:
            return True
        modified = state.last_modified
        modified = modified.replace(tzinfo=UTC) if modified.tzinfo is None else modified
        return modified.replace(microsecond=0) <= self.at


@dataclass(frozen=True, slots=True)
class Not(Condition):
    """The negation of ``condition`` (``If-None-Match`` with a list of tags)."""

    condition: Condition

    def holds(self, state: ResourceState) -> bool:
        return not self.condition.holds(state)


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    """All of ``conditions`` hold (a request with several preconditions)."""

    conditions: tuple[Condition, ...]

    def holds(self, state: ResourceState) -> bool:
        return all(part.holds(state) for part in self.conditions)


ALWAYS = Always()
NEVER = Never()
EXISTS = Exists()
ABSENT = Absent()


def all_of(conditions: Iterable[Condition]) -> Condition:
    """The conjunction of ``conditions``, simplified: no parts → ALWAYS, one → itself."""
    parts: list[Condition] = []
    for part in conditions:
        if isinstance(part, Never):
            return NEVER
        if isinstance(part, AllOf):
            parts.extend(part.conditions)
        elif not isinstance(part, Always):
            parts.append(part)
    if not parts:
        return ALWAYS
    if len(parts) == 1:
        return parts[0]
    return AllOf(tuple(parts))

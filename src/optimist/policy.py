"""Precondition policies: which methods of a route must, may or must not be conditional.

A lost update needs a write that did not say which version it meant to change, so a
route can *require* a precondition (RFC 6585 §3, 428 Precondition Required) or, as
seed 002 does for DELETE, answer 400 with a fixed body. ``optional`` leaves the
choice to the client; ``ignored`` drops the fields before evaluation (a route whose
resource has no meaningful version).

Seed 002's strict DELETE, with its 400 body's detail::

    >>> policy = PreconditionPolicy(
    ...     {"DELETE": Requirement.REQUIRED},
    ...     missing_status=400,
    ...     missing_detail="{header} header required for {method} operations",
    ... )
    >>> policy.apply("DELETE", Preconditions())
    Traceback (most recent call last):
      ...
    optimist.errors.PreconditionRequired: If-Match header required for DELETE operations
    >>> policy.apply("PATCH", Preconditions()) == Preconditions()
    True
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from optimist.errors import PreconditionRequired
from optimist.preconditions import Preconditions

__all__ = ["PreconditionPolicy", "Requirement"]


class Requirement(enum.Enum):
    """How a route treats the preconditions of one method."""

    #: Missing → 428 (or the policy's status); present → evaluated.
    REQUIRED = "required"
    #: Missing → the write is unconditional; present → evaluated.
    OPTIONAL = "optional"
    #: Never evaluated, even when sent.
    IGNORED = "ignored"


_WRITE_HEADERS = ("If-Match", "If-Unmodified-Since")


@dataclass(frozen=True, slots=True)
class PreconditionPolicy:
    """Per-method requirements for one route.

    ``satisfied_by`` names the fields that make a write conditional for this route;
    by default If-Match or If-Unmodified-Since (the two that protect an update).
    A malformed If-Match or If-None-Match counts as sent: it then fails evaluation
    with 412, which tells the client more than 428 would. An invalid
    If-Unmodified-Since date does not: RFC 9110 §13.1.4 has it ignored, which would
    leave the write unconditional. ``missing_detail`` may use ``{method}`` and
    ``{header}``; any other placeholder is refused when the policy is built.
    """

    methods: Mapping[str, Requirement] = field(default_factory=dict)
    default: Requirement = Requirement.OPTIONAL
    missing_status: int = 428
    missing_detail: str | None = None
    satisfied_by: tuple[str, ...] = _WRITE_HEADERS

    def __post_init__(self) -> None:
        if self.missing_status not in (400, 428):
            raise ValueError("a missing precondition is answered with 400 or 428")
        if self.missing_detail is not None:
            try:
                self.missing_detail.format(method="DELETE", header="If-Match")
            except (AttributeError, IndexError, KeyError, ValueError) as error:
                # Fail when the route is configured, not as a 500 on the first request.
                raise ValueError(
                    f"missing_detail may use only {{method}} and {{header}}: {error!r}"
                ) from error
        unknown = set(self.satisfied_by) - set(_WRITE_HEADERS) - {"If-None-Match"}
        if unknown or not self.satisfied_by:
            raise ValueError(f"cannot be satisfied by {sorted(unknown) or 'nothing'}")
        # Normalise method names once, so lookups need no case folding.
        object.__setattr__(self, "methods", {m.upper(): r for m, r in self.methods.items()})

    def requirement(self, method: str) -> Requirement:
        """The requirement for ``method``."""
        return self.methods.get(method.upper(), self.default)

    def apply(self, method: str, preconditions: Preconditions) -> Preconditions:
        """The preconditions to evaluate for ``method``, or :class:`PreconditionRequired`."""
        requirement = self.requirement(method)
        if requirement is Requirement.IGNORED:
            return Preconditions()
        if requirement is Requirement.REQUIRED and not self._satisfied(preconditions):
            header = self.satisfied_by[0]
            detail = (
                self.missing_detail.format(method=method.upper(), header=header)
                if self.missing_detail
                else None
            )
            raise PreconditionRequired(method.upper(), header, self.missing_status, detail)
        return preconditions

    def _satisfied(self, preconditions: Preconditions) -> bool:
        sent = {
            "If-Match": preconditions.if_match is not None,
            "If-Unmodified-Since": preconditions.if_unmodified_since is not None,
            "If-None-Match": preconditions.if_none_match is not None,
        }
        return any(sent[name] for name in self.satisfied_by)

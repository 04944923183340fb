"""A request's preconditions, parsed once and bound to the API's profile.

The four precondition fields are parsed once into a :class:`ConditionalRequest`
(:meth:`ConditionalProfile.bind`). Parsing never fails; the route decides *when* the
preconditions count, so that RFC 9110 §13.2.1's precedence falls out of the order of
its code: identity (401/403), existence (404) and body validation (422) first, then
:meth:`ConditionalRequest.write_condition` or :meth:`ConditionalRequest.evaluate`
(400/428, then 412/304), then the business rules that depend on the current state.

The bound request stays in the ASGI scope, so that a 412 raised anywhere while the
request is handled (a store's, say) reads like the route's own
(:func:`~optimist.starlette.error_response`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import Response

from optimist.conditions import Condition, ResourceState
from optimist.errors import NotModified, OptimistError, PreconditionFailed, VersionConflict
from optimist.etag import Comparison, EntityTag
from optimist.policy import PreconditionPolicy
from optimist.preconditions import Outcome, Preconditions, evaluate
from optimist.problem import Problem, from_error
from optimist.starlette._fields import (
    NOT_MODIFIED_FIELDS,
    joined,
    precondition_lines,
    set_etag,
    single,
)

__all__ = [
    "ConditionalProfile",
    "ConditionalRequest",
    "FailedDetail",
    "bound_request",
    "read_preconditions",
]

#: ``failed_detail(current_etag, if_match_as_sent)`` → the detail of a 412.
FailedDetail = Callable[[EntityTag | None, str | None], str]

_BOUND: Final = "optimist.conditional"  # scope key of the request's ConditionalRequest
_UNCONDITIONAL: Final = Preconditions()
_SAFE: Final = frozenset({"GET", "HEAD"})


def _carried(response: Response) -> dict[str, str]:
    """The :data:`~optimist.starlette.NOT_MODIFIED_FIELDS` ``response`` carries."""
    return {
        name: value
        for name in NOT_MODIFIED_FIELDS
        if (value := response.headers.get(name)) is not None
    }


def _parse(lines: Mapping[bytes, list[str]], allow_bare: bool) -> Preconditions:
    if not lines:  # most requests carry no precondition: nothing to parse
        return _UNCONDITIONAL
    return Preconditions.parse(
        if_match=joined(lines, b"if-match"),
        if_none_match=joined(lines, b"if-none-match"),
        if_modified_since=single(lines, b"if-modified-since"),
        if_unmodified_since=single(lines, b"if-unmodified-since"),
        allow_bare=allow_bare,
    )


def read_preconditions(headers: Headers, *, allow_bare: bool = False) -> Preconditions:
    """The four precondition fields of a request, parsed once; never raises."""
    return _parse(precondition_lines(headers), allow_bare)


def bound_request(request: HTTPConnection) -> ConditionalRequest | None:
    """The :class:`ConditionalRequest` a profile bound to ``request``, if one did."""
    bound = request.scope.get(_BOUND)
    return bound if isinstance(bound, ConditionalRequest) else None


@dataclass(frozen=True, slots=True)
class ConditionalProfile:
    """How one API treats preconditions: which are required, how If-Match compares, and
    how its 412 reads.

    ``comparison`` is If-Match's comparison (strong per RFC 9110 §13.1.1; weak for a
    profile that documents the deviation). ``allow_bare`` accepts an unquoted tag.
    ``failed_detail`` (a string, or a function of the current tag and the If-Match as
    sent) and ``failed_extensions`` shape every plain 412 of a request bound to this
    profile, including one a store raises. The 400/428 detail is the policy's.
    """

    policy: PreconditionPolicy = field(default_factory=PreconditionPolicy)
    comparison: Comparison = Comparison.STRONG
    allow_bare: bool = False
    failed_detail: str | FailedDetail | None = None
    failed_extensions: Mapping[str, Any] = field(default_factory=dict)

    def bind(self, request: HTTPConnection) -> ConditionalRequest:
        """Parse the request's preconditions and remember them for its error responses."""
        lines = precondition_lines(request.headers)
        bound = ConditionalRequest(
            profile=self,
            method=request.scope.get("method", "GET"),
            received=_parse(lines, self.allow_bare),
            if_match=joined(lines, b"if-match"),
        )
        request.scope[_BOUND] = bound
        return bound


@dataclass(frozen=True, slots=True)
class ConditionalRequest:
    """One request's preconditions under a profile; the policy applies when first used.

    ``received`` holds the fields as parsed, before the policy; ``if_match`` the
    If-Match as sent (lines joined), for messages.
    """

    profile: ConditionalProfile
    method: str
    received: Preconditions
    if_match: str | None

    def enforce(self) -> Preconditions:
        """The preconditions to honour; raises PreconditionRequired (400/428) if missing."""
        return self.profile.policy.apply(self.method, self.received)

    def write_condition(self) -> Condition:
        """The condition a store must check inside its write (after :meth:`enforce`)."""
        return self.enforce().write_condition(self.profile.comparison)

    @property
    def revalidating(self) -> bool:
        """Whether the request is a GET or HEAD that may be answered 304: it carries
        If-None-Match or If-Modified-Since (RFC 9110 §13.2.2, steps 3 and 4)."""
        received = self.received
        return self.method in _SAFE and (
            received.if_none_match is not None or received.if_modified_since is not None
        )

    def evaluate(self, state: ResourceState, response: Response | None = None) -> None:
        """Decide the preconditions against ``state`` just read (RFC 9110 §13.2.2).

        Raises NotModified (304, GET/HEAD) or PreconditionFailed (412). Otherwise, and
        given a ``response``, sets its ETag and Last-Modified from ``state``. A 304
        repeats the :data:`~optimist.starlette.NOT_MODIFIED_FIELDS` the route set on
        ``response`` before.
        """
        if self._decide(state, response) is Outcome.NOT_MODIFIED:
            raise NotModified(state.etag, {} if response is None else _carried(response))

    def revalidate(self, state: ResourceState, response: Response | None = None) -> Response | None:
        """:meth:`evaluate`, with a 304 returned rather than raised: the response to send,
        or None to go on and send the representation.

        A revalidation answered 304 is the common case of a client with a cache; the
        route returns it as it stands, without an exception and a handler in between.
        Raises PreconditionFailed (412).
        """
        if self._decide(state, response) is not Outcome.NOT_MODIFIED:
            return None
        # RFC 9110 §15.4.5: the ETag, and the fields a 200 would have carried that a
        # cache updates from; no representation metadata besides.
        answer = Response(status_code=304, headers=None if response is None else _carried(response))
        if state.etag is not None:
            set_etag(answer, state.etag)
        return answer

    def _decide(self, state: ResourceState, response: Response | None) -> Outcome:
        """The outcome against ``state``; a 412 raised, a representation's validators set
        on ``response``."""
        outcome = evaluate(self.enforce(), self.method, state, comparison=self.profile.comparison)
        if outcome is Outcome.PRECONDITION_FAILED:
            raise PreconditionFailed(state.etag, self._failed_detail(state.etag))
        if outcome is Outcome.PROCEED and response is not None and state.etag is not None:
            set_etag(response, state.etag, last_modified=state.last_modified)
        return outcome

    def problem(self, error: OptimistError) -> Problem:
        """The problem details of ``error`` raised while this request was handled."""
        problem = from_error(error)
        # A vector-clock conflict says stale or concurrent: its own detail is the point.
        if isinstance(error, PreconditionFailed) and not isinstance(error, VersionConflict):
            detail = self._failed_detail(error.current_etag)
            if detail is not None:
                problem = replace(problem, detail=detail)
            if self.profile.failed_extensions:
                problem = problem.with_extensions(**self.profile.failed_extensions)
        return problem

    def _failed_detail(self, current_etag: EntityTag | None) -> str | None:
        described = self.profile.failed_detail
        if described is None or isinstance(described, str):
            return described
        return described(current_etag, self.if_match)

"""Problem details for HTTP APIs (RFC 9457): one builder for every error body.

:class:`Problem` is a frozen value; :meth:`Problem.to_dict` gives the JSON object with
the standard members first (``type``, ``title``, ``status``, ``detail``, ``instance``,
the order of the seed documents' bodies and RFC 9457's examples), then
``invalid_params`` and the other extension members (snake_case, RFC 9457 §3.2).
:func:`from_error` maps any :class:`OptimistError` to its problem, so integrations need
no table of their own. :func:`shorten` bounds the client input a detail repeats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from optimist import errors
from optimist._text import shorten

__all__ = ["MEDIA_TYPE", "InvalidParam", "Problem", "from_error", "shorten"]

#: RFC 9457 §6.1.
MEDIA_TYPE: Final = "application/problem+json"

# RFC 9110 §15 renamed these; Python's HTTPStatus has the new phrases only from 3.13,
# and a title must not change with the interpreter that serves it.
_RFC_9110_PHRASES: Final = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


@dataclass(frozen=True, slots=True)
class InvalidParam:
    """One entry of the ``invalid_params`` extension: which input, and what was wrong."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem details object (RFC 9457 §3)."""

    status: int
    detail: str | None = None
    title: str | None = None
    type: str = "about:blank"
    instance: str | None = None
    invalid_params: Sequence[InvalidParam] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status code")
        clash = {"type", "title", "status", "detail", "instance", "invalid_params"} & set(
            self.extensions
        )
        if clash:
            raise ValueError(f"extensions must not redefine {sorted(clash)}")

    @property
    def resolved_title(self) -> str:
        """The title, defaulting to the status phrase as RFC 9457 §4.2.1 asks for about:blank."""
        if self.title is not None:
            return self.title
        if self.status in _RFC_9110_PHRASES:
            return _RFC_9110_PHRASES[self.status]
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: standard members first, then extensions."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.resolved_title,
            "status": self.status,
        }
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        if self.invalid_params:
            body["invalid_params"] = [param.to_dict() for param in self.invalid_params]
        body.update(self.extensions)
        return body

    def with_extensions(self, **members: Any) -> Problem:
        """A copy with more extension members."""
        return Problem(
            status=self.status,
            detail=self.detail,
            title=self.title,
            type=self.type,
            instance=self.instance,
            invalid_params=self.invalid_params,
            extensions={**self.extensions, **members},
        )


def from_error(error: errors.OptimistError) -> Problem:
    """The problem details for a library error, with its fields as extension members."""
    if isinstance(error, errors.VersionConflict):
        return Problem(
            status=error.status,
            detail=error.detail,
            extensions={
                "conflict": error.conflict,
                "current_etag": _tag(error.current_etag),
                "current_vector_clock": dict(error.current_clock),
            },
        )
    if isinstance(error, errors.PreconditionFailed):
        return Problem(
            status=error.status,
            detail=error.detail,
            extensions={"current_etag": _tag(error.current_etag)},
        )
    if isinstance(error, errors.PreconditionRequired):
        return Problem(
            status=error.status,
            detail=error.detail,
            invalid_params=(InvalidParam(error.header, "required"),),
        )
    if isinstance(error, errors.IdempotencyError):
        return _idempotency(error)
    if isinstance(error, errors.CorruptRecord):
        # A fault of the server: what could not be read, and why, is the operator's.
        return Problem(status=error.status, detail="A stored record could not be read.")
    if isinstance(error, errors.InvalidInput):
        return Problem(
            status=error.status,
            detail=error.detail,
            invalid_params=(InvalidParam(error.field, error.reason),),
        )
    if isinstance(error, errors.ServiceUnavailable):
        # RFC 9110 §15.6.4: what is unavailable and when to come back (the Retry-After
        # field carries the same seconds); the reason is the operator's, not the client's.
        wait = error.retry_after
        return Problem(
            status=error.status,
            detail=f"The {error.dependency} is temporarily unavailable; try again in "
            f"{wait} second{'' if wait == 1 else 's'}.",
            extensions={"retry_after": wait},
        )
    if isinstance(error, errors.MergeConflict):
        return Problem(
            status=error.status,
            detail=error.detail,
            extensions={"conflicting_paths": ["/".join(path) for path in error.paths]},
        )
    return Problem(status=error.status, detail=error.detail)


def _idempotency(error: errors.IdempotencyError) -> Problem:
    # draft-ietf-httpapi-idempotency-key-header, "Error Handling": the body links the
    # API's documentation; as the problem's type, it may carry the draft's title. With
    # about:blank the title stays the status phrase (RFC 9457 §4.2.1).
    linked = error.documentation is not None
    problem = Problem(
        status=error.status,
        detail=error.detail,
        title=error.title if linked else None,
        type=error.documentation or "about:blank",
    )
    if isinstance(error, errors.IdempotencyKeyRequired):
        return Problem(
            status=problem.status,
            detail=problem.detail,
            title=problem.title,
            type=problem.type,
            invalid_params=(InvalidParam("Idempotency-Key", "required"),),
        )
    if isinstance(error, errors.IdempotencyKeyReused):
        return problem.with_extensions(
            idempotency_key=shorten(error.key), differences=list(error.differences)
        )
    if isinstance(error, errors.IdempotencyKeyInFlight):
        return problem.with_extensions(idempotency_key=shorten(error.key))
    return problem


def _tag(tag: object) -> str | None:
    return None if tag is None else str(tag)

"""The precondition dependency: a route's :class:`~optimist.starlette.ConditionalRequest`.

FastAPI solves a route's dependencies *before* it validates the body, so
:func:`conditional` only parses: the policy (400/428) applies when the route calls
:meth:`~optimist.starlette.ConditionalRequest.write_condition` or ``evaluate``, after
the body was validated, and an invalid body with a missing If-Match is a 422.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from types import FunctionType
from typing import Any, Final

from fastapi import Request
from fastapi.dependencies.models import Dependant

from optimist.etag import Comparison
from optimist.policy import PreconditionPolicy
from optimist.starlette import ConditionalProfile, ConditionalRequest, FailedDetail

__all__ = ["conditional"]

#: The dependencies :func:`conditional` made, for the OpenAPI document to recognise.
_DEPENDENCIES: Final[weakref.WeakSet[Callable[..., Any]]] = weakref.WeakSet()


def conditional(
    policy: PreconditionPolicy | None = None,
    *,
    comparison: Comparison = Comparison.STRONG,
    allow_bare: bool = False,
    failed_detail: str | FailedDetail | None = None,
    failed_extensions: Mapping[str, Any] | None = None,
) -> Callable[..., Awaitable[ConditionalRequest]]:
    """A dependency giving the route its :class:`~optimist.starlette.ConditionalRequest`.

    It parses and never raises; see :class:`~optimist.starlette.ConditionalProfile` for
    the arguments. :func:`~optimist.fastapi.document_problems` (which
    :func:`~optimist.fastapi.install_problem_handlers` calls) lists the four precondition
    headers in the OpenAPI of every operation that depends on it.
    """
    profile = ConditionalProfile(
        policy or PreconditionPolicy(),
        comparison,
        allow_bare,
        failed_detail,
        dict(failed_extensions or {}),
    )

    # Only the request: FastAPI would parse and validate a Header parameter on every
    # request, and bind reads the fields anyway, list fields joined across lines
    # (RFC 9110 §5.3). document_problems documents them.
    async def preconditions(request: Request) -> ConditionalRequest:
        return profile.bind(request)

    _DEPENDENCIES.add(preconditions)
    return preconditions


def _depends_on_conditional(dependant: Dependant) -> bool:
    """Whether ``dependant`` depends on a :func:`conditional` dependency, at any depth."""
    # Only a function can be one of ours; another callable may not even be hashable.
    return any(
        (isinstance(sub.call, FunctionType) and sub.call in _DEPENDENCIES)
        or _depends_on_conditional(sub)
        for sub in dependant.dependencies
    )

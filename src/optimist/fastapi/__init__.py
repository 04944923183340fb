"""FastAPI integration: the precondition dependency, a route class that keeps RFC 9110
§13.2.1's precedence, HEAD for GET routes, problem+json for validation errors, and the
OpenAPI declarations. It builds on :mod:`optimist.starlette`'s public names.

* :mod:`~optimist.fastapi.dependencies`: :func:`conditional`, the dependency that
  parses a route's preconditions (the policy applies when the route uses them).
* :mod:`~optimist.fastapi.precedence`: :func:`lookup`, a dependency that remembers how
  to find the route's resource, and :class:`PrecedenceRoute`, which looks it up only
  when a refusal that ranks below 404 is about to be answered.
* :mod:`~optimist.fastapi.head`: :class:`HeadMiddleware` (``app.add_middleware``), so
  that GET routes answer HEAD (fastapi/fastapi#1773).
* :mod:`~optimist.fastapi.handlers`: :func:`install_problem_handlers`, every error as
  problem details, FastAPI's validation errors as 422 with ``invalid_params``.
* :mod:`~optimist.fastapi.idempotency`: :func:`idempotency`, the dependency that claims
  a request's Idempotency-Key in its write's transaction, and :func:`install_idempotency`,
  which answers resends with their first answer and documents the header.
* :mod:`~optimist.fastapi.openapi`: :func:`problem_responses`,
  :func:`representation_responses`, :func:`required_header` and
  :func:`document_problems`: the problems, precondition headers, ETags, Locations and
  the links from a representation to its conditional writes in ``/openapi.json``;
  :func:`operations_depending_on`, the operations that solve a given dependency, and
  :func:`every_route`, the routes of included routers with their full paths.
"""

from optimist.fastapi.dependencies import conditional
from optimist.fastapi.handlers import install_problem_handlers
from optimist.fastapi.head import HeadMiddleware
from optimist.fastapi.idempotency import idempotency, install_idempotency
from optimist.fastapi.openapi import (
    InvalidParameter,
    ProblemDetails,
    document_problems,
    every_route,
    operations_depending_on,
    problem_responses,
    representation_responses,
    required_header,
)
from optimist.fastapi.precedence import PrecedenceRoute, lookup

__all__ = [
    "HeadMiddleware",
    "InvalidParameter",
    "PrecedenceRoute",
    "ProblemDetails",
    "conditional",
    "document_problems",
    "every_route",
    "idempotency",
    "install_idempotency",
    "install_problem_handlers",
    "lookup",
    "operations_depending_on",
    "problem_responses",
    "representation_responses",
    "required_header",
]

"""Starlette integration: read preconditions once, answer every error as problem details,
keep RFC 9110 §13.2.1's precedence, and seed 000's vector-clock middleware as pure ASGI.

* :mod:`~optimist.starlette.binding`: a request's four precondition fields parsed once
  into a :class:`ConditionalRequest` under the API's :class:`ConditionalProfile`, which
  the route evaluates, or turns into a store's write condition, when the order of
  checks says so.
* :mod:`~optimist.starlette.responses`: problem+json responses (:func:`error_response`
  for a library error, worded by the bound profile), 304s and the validators.
* :mod:`~optimist.starlette.handlers`: :func:`install_problem_handlers`, which answers
  library errors, ``HTTPException`` (405 with every allowed method) and anything
  unexpected as problem details, and installs the default caching policy.
* :mod:`~optimist.starlette.caching`: :class:`CachingPolicy` and its
  :class:`CachingMiddleware` (:func:`install_caching`): ``Cache-Control``, ``Vary`` on
  the identity fields and ``Date`` on every response, so that no shared cache serves one
  client's representation to another, nor an old one after a write.
* :mod:`~optimist.starlette.clocks`: :class:`VectorClockMiddleware`, and the one typed
  :class:`ClockState` through which it and the app exchange the clocks of a request.
* :mod:`~optimist.starlette.idempotency`: :class:`Idempotency`, an application's
  Idempotency-Key rules; per request an :class:`IdempotentWrite` whose answer is kept
  in the write's transaction, and a resend's :class:`Replayed` first answer.
* :mod:`~optimist.starlette.precedence`: :func:`missing_first`, under which a refusal
  that ranks below 404 looks the resource up first, and only then.
* :mod:`~optimist.starlette.peers`: :func:`check_peer` and its dependency
  :func:`peer_guard`, which refuse with :class:`UntrustedPeer` (401, with a
  ``WWW-Authenticate`` challenge) identity fields from a peer outside the
  :class:`~optimist.peers.TrustedPeers`.
* :mod:`~optimist.starlette.bearer`: :func:`authenticate` and its dependency
  :func:`bearer_guard`, which take a request's caller from its bearer token through any
  :class:`~optimist.bearer.TokenVerifier`, and refuse with
  :class:`~optimist.errors.InvalidCredentials` (401 with a ``Bearer`` challenge).
* ``_fields``: the header fields read and written (precondition lines, ``Allow``,
  ETag and Last-Modified), one helper each; :func:`allowed_methods` and
  :func:`allow_field` are public for ``optimist.fastapi``'s HEAD support.
"""

from optimist.starlette._fields import allow_field, allowed_methods
from optimist.starlette.bearer import authenticate, bearer_guard
from optimist.starlette.binding import (
    ConditionalProfile,
    ConditionalRequest,
    FailedDetail,
    bound_request,
    read_preconditions,
)
from optimist.starlette.caching import (
    NO_CACHE,
    NO_STORE,
    PRIVATE_NO_CACHE,
    CachingMiddleware,
    CachingPolicy,
    install_caching,
)
from optimist.starlette.clocks import (
    INVALID_CLOCK_DETAIL,
    ClockState,
    VectorClockMiddleware,
    client_clock,
    clock_state,
)
from optimist.starlette.handlers import http_error_response, install_problem_handlers
from optimist.starlette.idempotency import (
    SAFE_METHODS,
    Claim,
    Idempotency,
    IdempotentWrite,
    KeyScope,
    KeyStore,
    Replayed,
    ScopeOf,
    fingerprint,
    replay_response,
)
from optimist.starlette.peers import GATEWAY_CHALLENGE, UntrustedPeer, check_peer, peer_guard
from optimist.starlette.precedence import (
    Lookup,
    Tagged,
    missing_first,
    remember_lookup,
    remembered_lookup,
    yields_to_lookup,
)
from optimist.starlette.responses import (
    INTERNAL_DETAIL,
    NOT_MODIFIED_FIELDS,
    ProblemResponse,
    error_response,
    not_modified,
    problem_response,
    set_etag,
)

__all__ = [
    "GATEWAY_CHALLENGE",
    "INTERNAL_DETAIL",
    "INVALID_CLOCK_DETAIL",
    "NOT_MODIFIED_FIELDS",
    "NO_CACHE",
    "NO_STORE",
    "PRIVATE_NO_CACHE",
    "SAFE_METHODS",
    "CachingMiddleware",
    "CachingPolicy",
    "Claim",
    "ClockState",
    "ConditionalProfile",
    "ConditionalRequest",
    "FailedDetail",
    "Idempotency",
    "IdempotentWrite",
    "KeyScope",
    "KeyStore",
    "Lookup",
    "ProblemResponse",
    "Replayed",
    "ScopeOf",
    "Tagged",
    "UntrustedPeer",
    "VectorClockMiddleware",
    "allow_field",
    "allowed_methods",
    "authenticate",
    "bearer_guard",
    "bound_request",
    "check_peer",
    "client_clock",
    "clock_state",
    "error_response",
    "fingerprint",
    "http_error_response",
    "install_caching",
    "install_problem_handlers",
    "missing_first",
    "not_modified",
    "peer_guard",
    "problem_response",
    "read_preconditions",
    "remember_lookup",
    "remembered_lookup",
    "replay_response",
    "set_etag",
    "yields_to_lookup",
]

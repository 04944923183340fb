"""Idempotency keys on the client's side: one key per attempt, and what the answers say.

draft-ietf-httpapi-idempotency-key-header lets a client send a write again without the
risk of a second effect: the server keeps the answer to the first request with a key
and sends it again, marked by :data:`~optimist.idempotency.REPLAYED_HEADER`, to any
resend with the same key. So:

* a key belongs to one *attempt*: one request, with its preconditions and body. Every
  copy of that request (after a transport error, a 429, a 503, the 409 of a key still
  in flight) carries the same key; a new attempt (a write again after a 412, a merge
  and a new If-Match) is a different request and takes a new key (:func:`new_key`),
  since the same key with another If-Match is a reuse the server refuses (422);
* :func:`stamp` puts a key on a request as the field's sf-string (RFC 9651 §3.3.3);
* :func:`replayed`, :func:`in_flight` and :func:`error` read the answers: a replay is
  a success like the first; a 409 for a key in flight is waited out like a 503; a 422
  for a reused key is the caller's mistake and becomes
  :class:`~optimist.errors.IdempotencyKeyReused`.

The server's problems (:mod:`optimist.problem`) name the key in an ``idempotency_key``
member; a 409 or 422 without that member is about something else (a resource that
exists, a body the server refuses) and keeps its own meaning.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import httpx

from optimist.errors import (
    IdempotencyError,
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
)
from optimist.httpx._problems import problem_of
from optimist.idempotency import HEADER, REPLAYED_HEADER, REPLAYED_VALUE, IdempotencyKey, parse

__all__ = ["KEY_BYTES", "error", "in_flight", "key_of", "new_key", "replayed", "stamp"]

#: The random bytes in a key the client makes: 192 bits, 32 URL-safe characters, so
#: that two attempts anywhere never share a key by chance.
KEY_BYTES = 24


def new_key() -> IdempotencyKey:
    """A fresh random key for one attempt (``secrets``: a key guessed by another client
    would let it read this client's stored answer on a server that scopes keys loosely)."""
    return IdempotencyKey(secrets.token_urlsafe(KEY_BYTES))


def stamp(request: httpx.Request, key: IdempotencyKey) -> None:
    """Put ``key`` on ``request``, replacing any key it had."""
    request.headers[HEADER] = key.serialize()


def key_of(request: httpx.Request) -> IdempotencyKey | None:
    """The key ``request`` carries, or None when it carries none (or one that does not
    parse, which no server would honour either)."""
    try:
        return parse(request.headers.get_list(HEADER))
    except ValueError:
        return None


def replayed(response: httpx.Response) -> bool:
    """Whether ``response`` is the stored answer to an earlier copy of the request."""
    value: str = response.headers.get(REPLAYED_HEADER, "")
    return value.strip().lower() == REPLAYED_VALUE


def _names_key(response: httpx.Response) -> bool:
    problem = problem_of(response)
    return problem is not None and "idempotency_key" in problem


def in_flight(response: httpx.Response) -> bool:
    """Whether ``response`` says that a copy of its keyed request is still being
    processed (the draft's 409): a resend with the same key, after a wait, gets its answer."""
    return (
        response.status_code == 409
        and key_of(response.request) is not None
        and _names_key(response)
    )


def error(response: httpx.Response) -> IdempotencyError | None:
    """The library error a response about the request's key stands for, or None.

    A 409 whose key is still in flight after the waits is
    :class:`~optimist.errors.IdempotencyKeyInFlight`; a 422 for a key first used for
    another request is :class:`~optimist.errors.IdempotencyKeyReused`, with the parts
    the server names as different; a 400 naming the field as required, on a request
    without a key, is :class:`~optimist.errors.IdempotencyKeyRequired`.
    """
    request = response.request
    key = key_of(request)
    problem = problem_of(response) or {}
    documentation = problem.get("type")
    link = (
        documentation if isinstance(documentation, str) and documentation != "about:blank" else None
    )
    if key is None:
        if response.status_code == 400 and _requires_key(problem):
            return IdempotencyKeyRequired(request.method, str(request.url), link)
        return None
    if "idempotency_key" not in problem:
        return None
    if response.status_code == 409:
        return IdempotencyKeyInFlight(key.value, link)
    if response.status_code == 422:
        differences = problem.get("differences")
        named = [str(part) for part in differences] if isinstance(differences, list) else []
        return IdempotencyKeyReused(key.value, named, link)
    return None


def _requires_key(problem: Mapping[str, Any]) -> bool:
    # RFC 9457 §3's invalid_params, as optimist.problem writes IdempotencyKeyRequired.
    params = problem.get("invalid_params")
    if not isinstance(params, list):
        return False
    return any(isinstance(p, Mapping) and p.get("name") == HEADER for p in params)

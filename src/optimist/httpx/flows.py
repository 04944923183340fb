"""What a flow is, and how a flow sends a request: the client's logic, as sans-I/O flows.

A flow is a generator that yields what to do next and returns the operation's outcome:

* it yields an :class:`httpx.Request` and is sent back the :class:`httpx.Response`,
  body read, or has the :class:`httpx.TransportError` that lost the request raised
  where it waits;
* it yields a :class:`Sleep` and is sent back None once the time has passed.

:class:`~optimist.httpx.Client` and :class:`~optimist.httpx.AsyncClient` drive the same
flows, one with blocking calls and one with awaits, the way httpx drives an
``Auth.auth_flow``; each hands every reply to :func:`advance`. Everything that decides
(preconditions, retries, resending what transport lost, merging, what a status means)
lives in the flows and is written once:

* here, :func:`send`: every request of every flow goes through it; it sends again what
  transport lost, and waits out a busy server, when that is safe (:func:`resendable`);
  :meth:`Context.write_request` builds each attempt of a write, with its own
  Idempotency-Key when the client sends keys (:mod:`~optimist.httpx.keys`);
* :mod:`~optimist.httpx.responses`: what a response means;
* :mod:`~optimist.httpx.operations`: the read, create, delete and page flows;
* :mod:`~optimist.httpx.updates`: the update flow.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, cast

import httpx

from optimist.httpx import keys
from optimist.httpx.apis import Api
from optimist.httpx.backoff import Attempts, Backoff
from optimist.httpx.cache import ETagCache
from optimist.idempotency import HEADER, IdempotencyKey

__all__ = [
    "TRANSPORT_ATTEMPTS",
    "Context",
    "Flow",
    "Reply",
    "RequestBuilder",
    "Sleep",
    "Step",
    "advance",
    "resendable",
    "send",
]

T = TypeVar("T")

#: How often a request that failed in transport (a reset, a connection the server
#: closed while idle) is sent, if it may be sent again.
TRANSPORT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before going on."""

    seconds: float


#: What a flow yields: a request to send, or a pause.
Step: TypeAlias = httpx.Request | Sleep
#: A flow returning ``T``; it is sent the response to each request, None after a pause.
Flow: TypeAlias = Generator[Step, httpx.Response | None, T]
#: What a driver has for a flow after a step: the response to its request, the
#: transport error that lost the request, or None after a pause.
Reply: TypeAlias = httpx.Response | httpx.TransportError | None


def advance(flow: Flow[T], reply: Reply) -> Step:
    """Resume ``flow`` with ``reply`` and return its next step.

    A transport error is raised inside the flow, where the request was sent, so that
    the flow decides whether to send it again; StopIteration carries the result.
    """
    if isinstance(reply, httpx.TransportError):
        return flow.throw(reply)
    return flow.send(reply)


class RequestBuilder(Protocol):
    """``httpx.Client.build_request`` or ``httpx.AsyncClient.build_request``: builds a
    request with the client's base URL, headers and cookies, without sending it."""

    def __call__(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        json: Any | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What every flow of one client shares; ``idempotency`` says whether each write
    carries an Idempotency-Key (see :meth:`write_request`)."""

    build_request: RequestBuilder
    api: Api
    backoff: Backoff
    cache: ETagCache
    idempotency: bool = False

    def attempts(self, limit: int) -> Attempts:
        """A fresh attempt budget for one operation."""
        return Attempts(self.backoff, limit)

    def write_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: Mapping[str, str],
        json: Any | None = None,
        key: IdempotencyKey | None = None,
    ) -> httpx.Request:
        """One attempt of a write: ``key`` as its Idempotency-Key, else a new key when
        the client sends keys, else none. Each call is a new attempt; :func:`send`
        sends its copies with the key it was built with."""
        request = self.build_request(method, url, json=json, headers=headers)
        if key is None and self.idempotency:
            key = keys.new_key()
        if key is not None:
            keys.stamp(request, key)
        return request


# -- sending -----------------------------------------------------------------------------------

_BUSY = frozenset({429, 503})


def resendable(request: httpx.Request) -> bool:
    """Whether ``request`` may be sent again after a transport failure or a busy answer.

    A safe method may (RFC 9110 §9.2.1), and so may a write with an Idempotency-Key:
    the server answers a second copy with the first one's stored answer
    (draft-ietf-httpapi-idempotency-key-header), so a write whose answer was lost is
    sent again and gets it, never applied twice. So may a conditional write: if the
    first copy was applied, the second finds the precondition false and is refused
    (412), which the flows then resolve. Any other write may not: it could apply twice.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or HEADER in request.headers:
        return True
    return "if-match" in request.headers or "if-none-match" in request.headers


def _exchange(request: httpx.Request) -> Flow[httpx.Response]:
    """Send ``request`` and take its response; send it again, up to
    :data:`TRANSPORT_ATTEMPTS` times in all, when transport lost it and it is
    :func:`resendable`. Otherwise the transport error goes on to the caller."""
    sent = 1
    while True:
        try:
            reply = yield request
        except httpx.TransportError:
            if sent >= TRANSPORT_ATTEMPTS or not resendable(request):
                raise
            sent += 1
        else:
            return cast(httpx.Response, reply)


def send(request: httpx.Request, attempts: Attempts) -> Flow[httpx.Response]:
    """Send ``request``, sending it again after the wait a busy server asks for.

    Busy is 429, 503, or the 409 of a key whose first copy is still being processed
    (:func:`~optimist.httpx.keys.in_flight`). Each wait uses one of ``attempts``; when
    they run out, or the server asks for longer than the backoff allows, the busy
    response is returned as it is. So is a busy answer to a request that may not be
    sent twice (:func:`resendable`): the server may have applied an unconditional
    write before it answered 503. Every copy is ``request`` itself, with its key.
    """
    while True:
        response = yield from _exchange(request)
        # RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503): the server is busy and may say,
        # with Retry-After (§10.2.3), when to come back; only what may apply twice
        # without harm comes back. The draft's 409 for a key in flight asks the same:
        # the same request again, once the first copy has been answered.
        busy = response.status_code in _BUSY or keys.in_flight(response)
        if busy and resendable(request):
            delay = attempts.next_delay(response)
            if delay is not None:
                yield Sleep(delay)
                continue
        return response

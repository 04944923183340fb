"""What caches may do with each response: ``Cache-Control``, ``Vary`` and ``Date``, decided
in one place for the whole application.

A response without ``Cache-Control`` is one a cache may keep and reuse for as long as its
own heuristic says (RFC 9111 §4.2.2): a stock Varnish keeps it 120 seconds, and, knowing
nothing of the identity header fields an API gateway adds, hands tenant 1's user to
tenant 2, and a client's old representation back to it after its own write. So every
response leaves :class:`CachingMiddleware` with its caching fields:

* a response that already has ``Cache-Control`` keeps it: the route knows better;
* an error (4xx, 5xx; problem details) is ``no-store``: it is about one request;
* a response without a validator (no ``ETag``, no ``Last-Modified``) is ``no-store``:
  ``no-cache`` would have a cache revalidate it, and without a validator it can only
  fetch it again, so keeping it serves nobody;
* a representation selected by the policy's identity header fields is
  ``private, no-cache``;
* any other representation is ``no-cache``: stored, but revalidated on every use, which
  its ETag makes a 304.

Every response to a request on the identity paths names those fields in ``Vary``, merged
with the route's own. None of this tells a 200 from a 304, so a 304 carries the fields of
the 200 it stands for (RFC 9110 §15.4.5). ``Date`` is set
from one reading of the policy's clock, when the response starts, unless the
application set it, and ``Last-Modified`` is never later than it (RFC 9110 §8.8.2.1): a
row's timestamp from another clock (the database's, another host's) cannot make a
response claim to have changed after it was sent.

:func:`install_caching` puts the middleware on an application, once;
:func:`~optimist.starlette.install_problem_handlers` installs the default policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.httpdate import http_date, parse_http_date

__all__ = [
    "NO_CACHE",
    "NO_STORE",
    "PRIVATE_NO_CACHE",
    "CachingMiddleware",
    "CachingPolicy",
    "caching_installed",
    "install_caching",
]

#: Stored, but revalidated before every reuse (RFC 9111 §5.2.2.4).
NO_CACHE: Final = "no-cache"
#: Stored by no cache at all (RFC 9111 §5.2.2.5).
NO_STORE: Final = "no-store"
#: Stored by the client's own cache only (RFC 9111 §5.2.2.7), revalidated before reuse.
PRIVATE_NO_CACHE: Final = "private, no-cache"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, segment by segment."""
    base = prefix.rstrip("/")
    return path in (prefix, base) or path.startswith(f"{base}/")


@dataclass(frozen=True, slots=True)
class CachingPolicy:
    """How an application's responses may be cached.

    ``identity`` names the request header fields that select a representation for whoever
    asks (``X-Tenant-Id``, ``X-User-Role`` set by a gateway; never ``Authorization`` or
    ``Cookie``, which caches treat as private already), for the requests whose path is
    one of ``paths`` or below it. ``clock`` (an aware datetime) stamps ``Date``.
    """

    identity: tuple[str, ...] = ()
    paths: tuple[str, ...] = ("/",)
    clock: Callable[[], datetime] = field(default=_utc_now, compare=False)

    def vary(self, path: str) -> tuple[str, ...]:
        """The identity fields a response to ``path`` varies on; none outside ``paths``."""
        if self.identity and any(_under(path, prefix) for prefix in self.paths):
            return self.identity
        return ()

    def cache_control(self, path: str, status: int, headers: Headers) -> str | None:
        """The ``Cache-Control`` a response to ``path`` gets; None keeps the route's own."""
        if "cache-control" in headers:
            return None
        if status >= 400:
            # RFC 9111 §5.2.2.5: an error answers this request only; nobody reuses it.
            return NO_STORE
        if "etag" not in headers and "last-modified" not in headers:
            # RFC 9111 §4.3.1: no validator, no revalidation; a stored copy is useless.
            return NO_STORE
        # RFC 9111 §5.2.2.7 and RFC 9110 §12.5.5: selected by who asks, so for that
        # client's cache only, and Vary names the fields.
        return PRIVATE_NO_CACHE if self.vary(path) else NO_CACHE


def _merged_vary(sent: str, identity: Iterable[str]) -> str:
    """``Vary`` naming what the route named and ``identity``, each once (RFC 9110 §12.5.5)."""
    names = [name.strip() for name in sent.split(",") if name.strip()]
    if "*" in names:
        return "*"  # varies on everything already
    seen = {name.lower() for name in names}
    names += [name for name in identity if name.lower() not in seen]
    return ", ".join(names)


class CachingMiddleware:
    """ASGI middleware giving every HTTP response the caching fields of ``policy``."""

    def __init__(self, app: ASGIApp, *, policy: CachingPolicy | None = None) -> None:
        self.app = app
        self.policy = policy or CachingPolicy()
        # The Date of the clock's current second, formatted once per second.
        self._second: datetime | None = None
        self._date = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stamp(path, message)
            await send(message)

        await self.app(scope, receive, stamped)

    def stamp(self, path: str, message: Message) -> None:
        """Give the response that ``message`` starts its Cache-Control, Vary and Date."""
        headers = MutableHeaders(scope=message)
        directives = self.policy.cache_control(path, message["status"], headers)
        if directives is not None:
            headers["Cache-Control"] = directives
        identity = self.policy.vary(path)
        if identity:
            # RFC 9110 §5.3: the route's Vary lines are one list; they become one line.
            headers["Vary"] = _merged_vary(", ".join(headers.getlist("vary")), identity)
        sent = headers.get("date")
        if sent is None:
            # RFC 9110 §6.6.1: an origin server with a clock sends Date.
            now = self.policy.clock().replace(microsecond=0)
            if now != self._second:
                self._second, self._date = now, http_date(now)
            sent = headers["Date"] = self._date
            date: datetime | None = now
        else:
            date = parse_http_date(sent)
        modified = headers.get("last-modified")
        if date is None or modified is None or modified == sent:
            return
        changed = parse_http_date(modified)
        if changed is not None and changed > date:
            # RFC 9110 §8.8.2.1: a Last-Modified later than Date is replaced by Date.
            headers["Last-Modified"] = sent


def install_caching(app: Starlette, policy: CachingPolicy | None = None) -> None:
    """Send every response of ``app`` with the caching fields of ``policy`` (by default
    :class:`CachingPolicy`'s: no identity fields).

    One policy per application: called again, the new policy replaces the old, and the
    middleware moves outside every middleware added so far, so that it sees their
    responses too. Call it before the application starts.
    """
    if app.middleware_stack is not None:
        raise RuntimeError("install_caching: the application has started already")
    app.user_middleware[:] = [entry for entry in app.user_middleware if not _is_caching(entry)]
    app.user_middleware.insert(0, Middleware(CachingMiddleware, policy=policy or CachingPolicy()))


def caching_installed(app: Starlette) -> bool:
    """Whether :func:`install_caching` has given ``app`` a policy."""
    return any(_is_caching(entry) for entry in app.user_middleware)


def _is_caching(entry: Middleware) -> bool:
    """Whether ``entry`` is the caching policy's middleware."""
    factory: object = entry.cls  # typed as a factory protocol, which a class is not
    return factory is CachingMiddleware

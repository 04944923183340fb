"""Prometheus metrics of the reference service, served at ``/metrics``.

What an operator asks of an API that never loses an update: how many requests each
route answers, with which status, and how fast; how often clients meet a precondition
(304 Not Modified, 412 Precondition Failed, 428 Precondition Required); how often a
dependency, the database, was unavailable (the 503 of
:class:`~optimist.errors.ServiceUnavailable`). :func:`install_metrics` gives an
application the families of :class:`Metrics`, the middleware that counts, and the
route that answers a scrape.

Every series is labelled by the route's template (``/projects/{project_id}``), never by
the path a client sent, and by a method from a fixed list (any other is ``other``):
whatever clients send, the number of series stays bounded. A path no route serves is
the route ``<unmatched>``.

Under ``optimist serve --workers N`` every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR``, a directory of its own that the master makes before the
workers start and removes at exit (:func:`metric_files`), and a scrape, whichever
worker answers it, adds up the files of them all (prometheus-client's multiprocess
mode). A single process keeps its values in memory, or, when it was started with the
variable set, in files of that same kind of private directory, never the one named.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.errors import ServiceUnavailable
from optimist.fastapi import every_route
from optimist.starlette import NO_STORE, error_response

__all__ = [
    "METRICS_PATH",
    "MULTIPROCESS_VARIABLE",
    "UNMATCHED",
    "Metrics",
    "MetricsMiddleware",
    "RouteTemplates",
    "in_files",
    "install_metrics",
    "metric_files",
]

#: Where a scrape is answered.
METRICS_PATH: Final = "/metrics"
#: The variable that puts prometheus-client in multiprocess mode, naming its directory.
MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
#: The route label of a request whose path no route serves.
UNMATCHED: Final = "<unmatched>"

#: The method labels; any other method is counted as ``other``.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OTHER_METHOD: Final = "other"
#: The precondition outcomes, by the status that answers them.
_OUTCOMES: Final = {
    304: "not_modified",  # RFC 9110 §15.4.5
    412: "precondition_failed",  # RFC 9110 §15.5.13
    428: "precondition_required",  # RFC 6585 §3
}
_SCOPE_KEY: Final = "optimist.metrics"  # the request's _Labels, for the 503 handler
_ROUTE: Final = ("route", "method")


class Metrics:
    """The service's metric families, registered in ``registry``; with None in none, for
    multiprocess mode, where a scrape reads the workers' files instead."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "optimist_http_requests",
            "HTTP requests answered, by route template, method and status.",
            [*_ROUTE, "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "optimist_http_request_duration_seconds",
            "Seconds from a request's arrival to the last byte of its response.",
            _ROUTE,
            registry=registry,
        )
        self.in_progress = Gauge(
            "optimist_http_requests_in_progress",
            "HTTP requests being answered now (the scrape included).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.preconditions = Counter(
            "optimist_http_precondition_outcomes",
            "Responses that are a precondition's outcome: not_modified (304), "
            "precondition_failed (412), precondition_required (428).",
            [*_ROUTE, "outcome"],
            registry=registry,
        )
        self.unavailable = Counter(
            "optimist_dependency_unavailable",
            "Requests answered 503 because a dependency (the database) was unavailable.",
            [*_ROUTE, "dependency"],
            registry=registry,
        )


class RouteTemplates:
    """The route templates of an application: what a path's series are labelled by.

    The table holds the template of every route and mount, those of included routers
    with their prefixes, in the order the application matches them. It is made once
    every route is in place: when the application starts (:meth:`prepare`), or at the
    first request. It is read from the routes, not from the OpenAPI document, whose
    generation would cost each worker's start a large part of a second.
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, path: str) -> str:
        """The template of the first route whose pattern matches ``path``, else UNMATCHED."""
        for pattern, template in self.prepare():
            if pattern.match(path):
                return template
        return UNMATCHED

    def prepare(self) -> list[tuple[re.Pattern[str], str]]:
        """The table: each route's pattern and template, made at the first call."""
        if self._table is None:
            self._table = self._build()
        return self._table

    def _build(self) -> list[tuple[re.Pattern[str], str]]:
        table = []
        for route in every_route(self._app.routes):
            if isinstance(route, Route | Mount):
                table.append((route.path_regex, route.path_format))
            elif isinstance(template := getattr(route, "path_format", None), str):
                # A route of an included router, as FastAPI matches it: its full path.
                table.append((compile_path(template)[0], template))
        return table


@dataclass(frozen=True, slots=True)
class _Labels:
    """What a request's series are labelled by, kept in its scope for the 503 handler."""

    route: str
    method: str


class MetricsMiddleware:
    """ASGI middleware: counts and times every HTTP request into ``metrics``.

    A response is counted when it starts, and timed before its last part is sent, so a
    client that has its response in full finds it in the next scrape.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: RouteTemplates) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.routes.prepare()  # now, rather than in the first request's time
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else _OTHER_METHOD
        labels = scope[_SCOPE_KEY] = _Labels(self.routes.of(scope["path"]), method)
        arrived = time.perf_counter()
        started = timed = False

        def timing() -> None:
            nonlocal timed
            if not timed:
                timed = True
                elapsed = time.perf_counter() - arrived
                self.metrics.duration.labels(labels.route, labels.method).observe(elapsed)

        async def counted(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._count(labels, message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                timing()
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not started:  # the server error handler outside answers it: a 500
                self._count(labels, 500)
            raise
        finally:
            timing()
            self.metrics.in_progress.dec()

    def _count(self, labels: _Labels, status: int) -> None:
        self.metrics.requests.labels(labels.route, labels.method, str(status)).inc()
        outcome = _OUTCOMES.get(status)
        if outcome is not None:
            self.metrics.preconditions.labels(labels.route, labels.method, outcome).inc()


def in_files() -> bool:
    """Whether prometheus-client keeps this process's values in files (multiprocess mode):
    decided once, by whether :data:`MULTIPROCESS_VARIABLE` was set when it was imported."""
    return values.ValueClass is not values.MutexValue


def install_metrics(app: FastAPI) -> Metrics:
    """Count ``app``'s requests and answer scrapes at :data:`METRICS_PATH`.

    In multiprocess mode (:func:`in_files`) a scrape adds up the files of every process
    in the directory :data:`MULTIPROCESS_VARIABLE` names; otherwise it reads this
    application's own registry. Call it before the application starts, after adding
    the middleware whose responses it should count.
    """
    exposed = CollectorRegistry()
    if in_files():
        path = os.environ.get(MULTIPROCESS_VARIABLE)
        MultiProcessCollector(exposed, path=path)  # type: ignore[no-untyped-call]
        metrics = Metrics(None)
    else:
        metrics = Metrics(exposed)

    async def scrape(request: Request) -> Response:
        """The metrics in the format the scraper asks for (Accept), never stored by a cache."""
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        # A multiprocess scrape reads every worker's files: off the event loop.
        body = await run_in_threadpool(encode, exposed)
        headers = {"Cache-Control": NO_STORE, "Vary": "Accept"}
        return Response(body, media_type=media_type, headers=headers)

    async def unavailable(request: Request, error: Exception) -> Response:
        """Count the outage against the request's route, then answer it as usual."""
        assert isinstance(error, ServiceUnavailable)
        labels = request.scope.get(_SCOPE_KEY)
        if isinstance(labels, _Labels):
            metrics.unavailable.labels(labels.route, labels.method, error.dependency).inc()
        return error_response(error, request)

    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=RouteTemplates(app))
    app.add_exception_handler(ServiceUnavailable, unavailable)
    app.add_api_route(METRICS_PATH, scrape, methods=["GET"], include_in_schema=False)
    return metrics


@contextmanager
def metric_files() -> Iterator[Path]:
    """A private directory for the metric files of this server's processes, named by
    :data:`MULTIPROCESS_VARIABLE` in this process's environment (which the workers
    started inside the block inherit), removed with its files when the block ends.

    Private, so that no file of an earlier run, or of another deployment, is added up.
    prometheus-client keeps values in files when the variable was set as it was first
    imported: in every worker, and in a single process started with the variable set,
    whose files come here too rather than to the directory it named.
    """
    with tempfile.TemporaryDirectory(prefix="optimist-metrics-") as directory:
        previous = os.environ.get(MULTIPROCESS_VARIABLE)
        os.environ[MULTIPROCESS_VARIABLE] = directory
        try:
            yield Path(directory)
        finally:
            if previous is None:
                del os.environ[MULTIPROCESS_VARIABLE]
            else:
                os.environ[MULTIPROCESS_VARIABLE] = previous

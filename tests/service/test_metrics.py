"""/metrics: requests by route template, method and status, precondition outcomes,
database outages and latency, in one process and added up across the workers of
``optimist serve --workers 2``, read with prometheus-client's own parser."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from optimist.service.app import create_app
from optimist.service.metrics import METRICS_PATH, MULTIPROCESS_VARIABLE, UNMATCHED, RouteTemplates
from optimist.sqlalchemy import create_engine
from tests.support.servers import Server, free_port, optimist_serving, wait_until
from tests.support.service import Service, settings_for

linux = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

DEMO = "/projects/proj_abc123"
ITEM = "/projects/{project_id}"
REQUESTS = "optimist_http_requests_total"
OUTCOMES = "optimist_http_precondition_outcomes_total"


def samples(text: str, name: str) -> list[Sample]:
    """The samples called ``name`` in the exposition ``text``."""
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value for sample in samples(text, name) if labels.items() <= sample.labels.items()
    )


async def scrape(service: Service) -> str:
    """The exposition the service's /metrics answers now."""
    response = await service.client.get(METRICS_PATH)
    assert response.status_code == 200, response.text
    return response.text


# -- one process -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_requests_are_counted_by_route_template(service: Service) -> None:
    """Two paths of one route are two requests of its template, by method and status."""
    for key in ("proj_absent1", "proj_absent2"):
        assert (await service.client.get(f"/projects/{key}")).status_code == 404
    text = await scrape(service)
    assert value(text, REQUESTS, route=ITEM, method="GET", status="404") == 2


def test_route_templates_are_every_route_without_the_openapi_document() -> None:
    """The table holds the template of every route, those of included routers with
    their prefixes and those left out of the document too, and is built without
    generating the OpenAPI document (which would slow every worker's start)."""
    app = create_app(settings_for("sqlite://"))
    templates = {template for _, template in RouteTemplates(app).prepare()}
    assert app.openapi_schema is None
    assert set(app.openapi()["paths"]) <= templates
    assert {METRICS_PATH, "/docs", "/ui/{path}"} <= templates
    assert RouteTemplates(app).of("/ui/app.js") == "/ui/{path}"
    assert RouteTemplates(app).of("/v1/tests/sessions/s1") == "/v1/tests/sessions/{session_id}"


@pytest.mark.anyio
async def test_no_label_repeats_the_path_a_client_sent(service: Service) -> None:
    """The project ids of the requests appear in no series."""
    for key in ("proj_absent1", "proj_absent2"):
        await service.client.get(f"/projects/{key}")
    text = await scrape(service)
    labels = {label for sample in samples(text, REQUESTS) for label in sample.labels.values()}
    assert not [label for label in labels if "proj_absent" in label]


@pytest.mark.anyio
async def test_a_path_no_route_serves_is_counted_as_unmatched(service: Service) -> None:
    """A 404 outside every route is a request of the route ``<unmatched>``."""
    assert (await service.client.get("/no/such/thing")).status_code == 404
    text = await scrape(service)
    assert value(text, REQUESTS, route=UNMATCHED, status="404") == 1
    assert value(text, REQUESTS, route="/no/such/thing") == 0


@pytest.mark.anyio
async def test_a_method_outside_the_list_is_counted_as_other(service: Service) -> None:
    """A method the APIs do not know is the method label ``other``."""
    response = await service.client.request("BREW", DEMO)
    assert response.status_code == 405
    text = await scrape(service)
    assert value(text, REQUESTS, route=ITEM, method="other", status="405") == 1


@pytest.mark.anyio
async def test_a_304_is_counted_as_not_modified_by_route(service: Service) -> None:
    """A matching If-None-Match is a not_modified outcome of the item's GET."""
    tag = (await service.client.get(DEMO)).headers["etag"]
    response = await service.client.get(DEMO, headers={"If-None-Match": tag})
    assert response.status_code == 304
    text = await scrape(service)
    assert value(text, OUTCOMES, route=ITEM, method="GET", outcome="not_modified") == 1


@pytest.mark.anyio
async def test_a_412_is_counted_as_precondition_failed_by_route(service: Service) -> None:
    """A stale If-Match is a precondition_failed outcome of the item's PUT."""
    response = await service.client.put(DEMO, json={"name": "x"}, headers={"If-Match": '"0"'})
    assert response.status_code == 412
    text = await scrape(service)
    assert value(text, OUTCOMES, route=ITEM, method="PUT", outcome="precondition_failed") == 1


@pytest.mark.anyio
async def test_a_428_is_counted_as_precondition_required_by_route(service: Service) -> None:
    """A DELETE without If-Match is a precondition_required outcome of the item's DELETE."""
    assert (await service.client.delete(DEMO)).status_code == 428
    text = await scrape(service)
    assert value(text, OUTCOMES, route=ITEM, method="DELETE", outcome="precondition_required") == 1


@pytest.mark.anyio
async def test_a_success_is_no_precondition_outcome(service: Service) -> None:
    """A 200 counts as a request and as no outcome."""
    assert (await service.client.get(DEMO)).status_code == 200
    text = await scrape(service)
    assert value(text, REQUESTS, route=ITEM, method="GET", status="200") == 1
    assert value(text, OUTCOMES) == 0


@pytest.mark.anyio
async def test_an_unexpected_error_is_counted_as_a_500(service: Service) -> None:
    """An exception no handler answers is a 500 of its route."""

    async def fail() -> None:
        raise RuntimeError("unexpected")

    service.app.add_api_route("/fail", fail)
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/fail")).status_code == 500
    text = await scrape(service)
    assert value(text, REQUESTS, route="/fail", method="GET", status="500") == 1


@pytest.mark.anyio
async def test_every_answered_request_is_timed(service: Service) -> None:
    """The latency histogram of a route counts each of its requests once."""
    for _ in range(3):
        await service.client.get(DEMO)
    text = await scrape(service)
    name = "optimist_http_request_duration_seconds"
    assert value(text, f"{name}_count", route=ITEM, method="GET") == 3
    assert value(text, f"{name}_bucket", route=ITEM, method="GET", le="+Inf") == 3
    assert value(text, f"{name}_sum", route=ITEM, method="GET") > 0


@pytest.mark.anyio
async def test_the_scrape_is_a_request_in_progress(service: Service) -> None:
    """While /metrics answers, it is the one request in progress."""
    text = await scrape(service)
    assert value(text, "optimist_http_requests_in_progress") == 1


@pytest.mark.anyio
async def test_a_scrape_is_never_stored(service: Service) -> None:
    """/metrics is answered with Cache-Control: no-store, varying on Accept."""
    response = await service.client.get(METRICS_PATH)
    assert response.headers["cache-control"] == "no-store"
    assert "Accept" in response.headers["vary"]


@pytest.mark.anyio
async def test_a_scrape_in_openmetrics_when_asked(service: Service) -> None:
    """A scraper that accepts OpenMetrics gets it."""
    accept = "application/openmetrics-text; version=1.0.0"
    response = await service.client.get(METRICS_PATH, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


@pytest.mark.anyio
async def test_metrics_are_not_in_the_openapi_document(service: Service) -> None:
    """/metrics is for operators: the API's document does not list it."""
    document = (await service.client.get("/openapi.json")).json()
    assert METRICS_PATH not in document["paths"]


@pytest.fixture
async def unreachable(service: Service) -> AsyncIterator[Service]:
    """The service, its database swapped for a PostgreSQL port that nothing listens on."""
    started = service.runtime
    engine = create_engine(f"postgresql+asyncpg://root@127.0.0.1:{free_port()}/absent")
    service.app.state.runtime = dataclasses.replace(started, engine=engine)
    try:
        yield service
    finally:
        service.app.state.runtime = started  # whose engine the lifespan disposes
        await engine.dispose()


@pytest.mark.anyio
async def test_a_database_outage_is_counted_by_route(unreachable: Service) -> None:
    """A 503 of ServiceUnavailable counts the database as unavailable for the route."""
    assert (await unreachable.client.get("/projects")).status_code == 503
    text = await scrape(unreachable)
    name = "optimist_dependency_unavailable_total"
    assert value(text, name, route="/projects", method="GET", dependency="database") == 1


@pytest.mark.anyio
async def test_an_unready_probe_is_no_database_outage(unreachable: Service) -> None:
    """/readyz's own 503 is a request, not an outage counted by a route's 503."""
    assert (await unreachable.client.get("/readyz")).status_code == 503
    text = await scrape(unreachable)
    assert value(text, REQUESTS, route="/readyz", status="503") == 1
    assert value(text, "optimist_dependency_unavailable_total") == 0


# -- real processes --------------------------------------------------------------------------


def served_by_both(server: Server) -> tuple[int, set[int]]:
    """GET /healthz on a new connection each time until both workers have answered:
    how many requests that took, and the workers' process ids."""
    sent, workers = 0, set()

    def both() -> bool:
        nonlocal sent
        response = httpx.get(f"{server.url}/healthz", timeout=60)
        assert response.status_code == 200
        sent += 1
        workers.add(response.json()["worker"])
        return len(workers) == 2

    wait_until(both, timeout=120, what="both workers answering /healthz")
    return sent, workers


def scraped(server: Server) -> str:
    """The exposition of ``server``'s /metrics, whichever worker answers."""
    response = httpx.get(f"{server.url}{METRICS_PATH}", timeout=60)
    assert response.status_code == 200, response.text
    return response.text


def metrics_directory(worker: int) -> Path:
    """The multiprocess directory that worker process ``worker`` was started with."""
    variables = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    prefix = f"{MULTIPROCESS_VARIABLE}=".encode()
    found = [entry[len(prefix) :] for entry in variables if entry.startswith(prefix)]
    assert found, f"worker {worker} has no {MULTIPROCESS_VARIABLE}"
    return Path(os.fsdecode(found[0]))


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Server]:
    """``optimist serve --workers 2`` on a SQLite file of its own."""
    with optimist_serving(tmp_path, "--workers", "2") as server:
        yield server


@pytest.mark.slow
def test_one_scrape_counts_the_requests_of_both_workers(two_workers: Server) -> None:
    """Every request either worker answered is in the scrape, whichever worker answers it."""
    sent, workers = served_by_both(two_workers)
    assert len(workers) == 2
    assert value(scraped(two_workers), REQUESTS, route="/healthz", method="GET") == sent


@linux
@pytest.mark.slow
def test_a_dead_workers_live_gauge_is_forgotten(two_workers: Server) -> None:
    """After a worker is killed, its in-progress gauge file goes; its counts stay."""
    sent, workers = served_by_both(two_workers)
    victim = min(workers)
    directory = metrics_directory(victim)
    gauge = directory / f"gauge_livesum_{victim}.db"
    assert gauge.exists()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not gauge.exists(), timeout=120, what=f"{gauge} removed")
    assert value(scraped(two_workers), REQUESTS, route="/healthz", method="GET") == sent


@linux
@pytest.mark.slow
def test_the_metrics_directory_is_removed_at_exit(tmp_path: Path) -> None:
    """The workers' directory exists while they serve and is gone once the server stops."""
    with optimist_serving(tmp_path, "--workers", "2") as server:
        _, workers = served_by_both(server)
        directory = metrics_directory(min(workers))
        assert directory.is_dir()
    assert not directory.exists()


@pytest.mark.slow
def test_one_process_removes_its_metrics_directory_at_exit(tmp_path: Path) -> None:
    """Without workers too, SIGTERM leaves no metrics directory behind, and exit 0."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with optimist_serving(tmp_path, env={"TMPDIR": str(temporary)}) as server:
        assert [path.name[:17] for path in temporary.iterdir()] == ["optimist-metrics-"]
    assert server.process.returncode == 0, server.output()
    assert list(temporary.iterdir()) == []


def healthz_counted(server: Server, times: int) -> float:
    """GET /healthz ``times`` times, then how many requests of it a scrape counts."""
    for _ in range(times):
        assert httpx.get(f"{server.url}/healthz", timeout=60).status_code == 200
    return value(scraped(server), REQUESTS, route="/healthz", method="GET")


@pytest.mark.slow
def test_one_process_serves_its_own_counts(tmp_path: Path) -> None:
    """Without workers, a scrape counts the requests this one process answered."""
    with optimist_serving(tmp_path) as server:
        assert healthz_counted(server, 3) == 3


@pytest.mark.slow
def test_one_process_ignores_a_multiprocess_directory_it_was_given(tmp_path: Path) -> None:
    """Started with PROMETHEUS_MULTIPROC_DIR naming no directory, it serves and counts."""
    absent = {MULTIPROCESS_VARIABLE: str(tmp_path / "absent")}
    with optimist_serving(tmp_path, env=absent) as server:
        assert healthz_counted(server, 3) == 3

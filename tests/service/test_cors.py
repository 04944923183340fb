"""CORS, off unless origins are configured: preflights allow the APIs' methods and the
header fields they read, responses let a script read the validators, and seed 003's
client runs cross-origin in headless Chromium, through a 412 and its retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support import browser as chromium
from tests.support.servers import Server, optimist_serving
from tests.support.service import Service, running, settings_for

ORIGIN = "http://app.example:8080"
DEMO = "/projects/proj_abc123"
#: The request header fields a browser's script sends to the APIs, spelled out again so
#: that the service's list is checked, not copied.
PRECONDITIONS = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")
IDENTITY = ("X-Tenant-Id", "X-User-Role", "X-CSRF-Token")
REQUEST_HEADERS = (*PRECONDITIONS, "Idempotency-Key", "Content-Type", *IDENTITY)
#: The response header fields a conditional client reads.
EXPOSED = ("ETag", "Last-Modified", "Location", "Retry-After")
PAGES = Path(__file__).parent / "browser"

#: A headless Chromium for the module's tests (a failure under CI when missing).
browser = chromium.browser


def names(field: str) -> set[str]:
    """The field names a comma-separated list holds, lowercased."""
    return {name.strip().lower() for name in field.split(",") if name.strip()}


def shared_with(response: httpx.Response, status: int) -> str | None:
    """The origin ``response`` (of ``status``) lets read it: Access-Control-Allow-Origin."""
    assert response.status_code == status, response.text
    origin: str | None = response.headers.get("access-control-allow-origin")
    return origin


def preflight(method: str, *headers: str, origin: str = ORIGIN) -> dict[str, str]:
    """The fields of a browser's preflight for ``method`` with ``headers`` from ``origin``."""
    fields = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        fields["Access-Control-Request-Headers"] = ", ".join(h.lower() for h in headers)
    return fields


@pytest.fixture
async def cors(service_database_url: str) -> AsyncIterator[Service]:
    """The service with CORS on for :data:`ORIGIN`."""
    async with running(settings_for(service_database_url, cors_origins=(ORIGIN,))) as started:
        yield started


# -- off by default --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_off_by_default_a_preflight_is_not_answered(service: Service) -> None:
    """Without origins, a preflight reaches the routes, which allow no OPTIONS."""
    response = await service.client.options(DEMO, headers=preflight("PUT", "If-Match"))
    assert shared_with(response, 405) is None


@pytest.mark.anyio
async def test_off_by_default_a_response_has_no_cors_fields(service: Service) -> None:
    """Without origins, a request with Origin gets no Access-Control field."""
    response = await service.client.get(DEMO, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]


# -- preflights ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_preflight_allows_every_method_the_document_lists(cors: Service) -> None:
    """Each method of the OpenAPI document's paths, and HEAD, passes a preflight."""
    document = (await cors.client.get("/openapi.json")).json()
    methods = {method.upper() for item in document["paths"].values() for method in item}
    for method in sorted(methods | {"HEAD"}):
        response = await cors.client.options(DEMO, headers=preflight(method))
        assert response.status_code == 200, method
        assert method.lower() in names(response.headers["access-control-allow-methods"])


@pytest.mark.parametrize("header", REQUEST_HEADERS)
@pytest.mark.anyio
async def test_a_preflight_allows_each_field_the_apis_read(cors: Service, header: str) -> None:
    """A preflight asking for one of the APIs' request fields is allowed, for the origin."""
    response = await cors.client.options(DEMO, headers=preflight("PUT", header))
    assert shared_with(response, 200) == ORIGIN
    assert header.lower() in names(response.headers["access-control-allow-headers"])


@pytest.mark.anyio
async def test_a_preflight_with_a_field_the_apis_do_not_read_is_refused(
    cors: Service,
) -> None:
    """A request field outside the list fails the preflight."""
    response = await cors.client.options(DEMO, headers=preflight("PUT", "X-Unknown"))
    assert response.status_code == 400


@pytest.mark.anyio
async def test_a_preflight_from_another_origin_is_refused(cors: Service) -> None:
    """An origin not configured gets no Access-Control-Allow-Origin."""
    headers = preflight("PUT", "If-Match", origin="http://elsewhere.example")
    response = await cors.client.options(DEMO, headers=headers)
    assert shared_with(response, 400) is None


@pytest.mark.anyio
async def test_a_preflight_is_counted_by_route(cors: Service) -> None:
    """/metrics counts an answered preflight as an OPTIONS of the route's template."""
    await cors.client.options(DEMO, headers=preflight("PUT", "If-Match"))
    text = (await cors.client.get("/metrics")).text
    counted = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "optimist_http_requests_total"
        and sample.labels
        == {"route": "/projects/{project_id}", "method": "OPTIONS", "status": "200"}
    ]
    assert counted == [1]


# -- responses -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_response_lets_the_origin_read_the_validators(cors: Service) -> None:
    """A read from the origin exposes ETag, Last-Modified, Location and Retry-After."""
    response = await cors.client.get(DEMO, headers={"Origin": ORIGIN})
    assert shared_with(response, 200) == ORIGIN
    assert names(response.headers["access-control-expose-headers"]) >= names(", ".join(EXPOSED))


@pytest.mark.anyio
async def test_a_412_carries_the_cors_fields(cors: Service) -> None:
    """A stale write's problem is readable by the origin's script, current ETag included."""
    headers = {"Origin": ORIGIN, "If-Match": '"stale"'}
    response = await cors.client.put(DEMO, json={"name": "x"}, headers=headers)
    assert shared_with(response, 412) == ORIGIN
    assert "etag" in names(response.headers["access-control-expose-headers"])
    assert "etag" in response.headers


@pytest.mark.anyio
async def test_a_response_to_another_origin_is_not_shared(cors: Service) -> None:
    """A request from an origin not configured gets no Access-Control-Allow-Origin."""
    response = await cors.client.get(DEMO, headers={"Origin": "http://elsewhere.example"})
    assert shared_with(response, 200) is None


@pytest.mark.parametrize("origin", [ORIGIN, "http://elsewhere.example", None])
@pytest.mark.anyio
async def test_every_response_varies_on_origin(cors: Service, origin: str | None) -> None:
    """With or without Origin, allowed or not, a cache is told the answer depends on it."""
    headers = {"Origin": origin} if origin else {}
    response = await cors.client.get(DEMO, headers=headers)
    assert "origin" in names(response.headers["vary"])


@pytest.mark.anyio
async def test_an_admin_response_varies_on_origin_and_identity(cors: Service) -> None:
    """The caching policy's identity fields and CORS's Origin are all in Vary."""
    headers = {"Origin": ORIGIN, "X-Tenant-Id": "t1", "X-User-Role": "viewer"}
    response = await cors.client.get("/admin/users", headers=headers)
    assert names(response.headers["vary"]) >= {"origin", "x-tenant-id", "x-user-role"}


# -- seed 003's client in Chromium -----------------------------------------------------------


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The origin of a static server of tests/service/browser on a port of its own."""
    with chromium.static_origin(PAGES) as origin:
        yield origin


@pytest.fixture(scope="module")
def api(page_origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on another port, with CORS on for the page's origin."""
    directory = tmp_path_factory.mktemp("cors")
    with optimist_serving(directory, "--cors-origin", page_origin) as server:
        yield server


def new_project(server: Server) -> dict[str, Any]:
    """A project created on ``server``, as its 201 represents it."""
    response = httpx.post(f"{server.url}/projects", json={"name": "Main Street Sign"}, timeout=60)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["result"]
    return created


def open_scenario(browser: WebDriver, page_origin: str, api: Server, project: str) -> None:
    """Load the scenario page for ``project`` on ``api``; it renames it to "From Chromium"."""
    query = httpx.QueryParams({"api": api.url, "project": project, "name": "From Chromium"})
    browser.get(f"{page_origin}/index.html?{query}")


def state_after(browser: WebDriver, step: str) -> dict[str, Any]:
    """``window.scenario`` once it has left ``step``."""
    script = f"const s = window.scenario; return s && s.state !== {step!r} ? s : null;"
    found: dict[str, Any] = chromium.wait_for(browser, lambda driver: driver.execute_script(script))
    return found


@pytest.fixture(scope="module")
def conflict(browser: WebDriver, page_origin: str, api: Server) -> dict[str, Any]:
    """The scenario run once: the client reads, the project changes behind its back, the
    client writes. Its final state, with the project as the server has it at the end."""
    project = new_project(api)
    url = f"{api.url}/projects/{project['project_id']}"
    open_scenario(browser, page_origin, api, project["project_id"])
    read = state_after(browser, "reading")
    assert read["state"] == "read", read
    changed = httpx.put(
        url,
        json={"description": "Changed elsewhere"},
        headers={"If-Match": read["read"]},
        timeout=60,
    )
    assert changed.status_code == 200, changed.text
    browser.execute_script("window.proceed();")
    final = state_after(browser, "read")
    final["created"] = project
    final["server"] = httpx.get(url, timeout=60).json()["result"]
    return final


@pytest.mark.slow
def test_the_client_reads_the_etag_across_origins(conflict: dict[str, Any]) -> None:
    """The ETag the script read is the project's, from the header the service exposes."""
    assert conflict["read"] == f'"{conflict["created"]["etag"]}"'


@pytest.mark.slow
def test_a_forced_412_is_refetched_and_retried(conflict: dict[str, Any]) -> None:
    """The write with the old ETag is a 412; the client reads again and its retry succeeds."""
    assert conflict["state"] == "done", conflict.get("error")
    assert conflict["seen"] == ["GET 200", "PUT 412", "GET 200", "PUT 200"]


@pytest.mark.slow
def test_the_retry_keeps_the_change_made_behind_its_back(conflict: dict[str, Any]) -> None:
    """After the retry the project has the client's name and the other writer's description."""
    assert conflict["server"]["name"] == "From Chromium"
    assert conflict["server"]["description"] == "Changed elsewhere"


@pytest.fixture
def api_without_cors(tmp_path: Path) -> Iterator[Server]:
    """``optimist serve`` without --cors-origin."""
    with optimist_serving(tmp_path) as server:
        yield server


@pytest.mark.slow
def test_without_cors_the_browser_refuses_the_read(
    browser: WebDriver, page_origin: str, api_without_cors: Server
) -> None:
    """The same page against a service without CORS cannot read the project."""
    project = new_project(api_without_cors)
    open_scenario(browser, page_origin, api_without_cors, project["project_id"])
    outcome = state_after(browser, "reading")
    assert outcome["state"] == "failed"
    assert outcome["seen"] == []


@pytest.mark.anyio
async def test_an_unexpected_error_is_a_500_the_origin_may_read(cors: Service) -> None:
    """An exception no handler answers is a 500 problem with the CORS fields and a Date,
    so a script sees the 500 rather than a network error."""

    async def fail() -> None:
        raise RuntimeError("unexpected")

    cors.app.add_api_route("/fail", fail)
    transport = httpx.ASGITransport(app=cors.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/fail", headers={"Origin": ORIGIN})
    assert shared_with(response, 500) == ORIGIN
    assert response.headers["content-type"] == "application/problem+json"
    assert "date" in response.headers
    assert "unexpected" not in response.text

"""``/docs`` and ``/redoc`` render offline: a real ``optimist serve`` and a real Chromium.

The browser can reach this machine only (:mod:`tests.support.browser`). Each page must
render every operation of the service's OpenAPI document, as ``/openapi.json`` lists
them, and must have sent no request anywhere but to the service.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.browser import Traffic, browser, wait_for
from tests.support.servers import Server, optimist_serving

#: The fixtures this module uses from tests.support.
__all__ = ["browser"]

pytestmark = pytest.mark.slow

T = TypeVar("T")

_METHODS: Final = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

#: Swagger UI: each operation is an ``.opblock`` whose id is operations-TAG-OPERATIONID.
_SWAGGER: Final = """
return Array.from(document.querySelectorAll('.opblock')).map(block => [
    block.id,
    block.querySelector('.opblock-summary-method')?.textContent ?? '',
    block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '',
    block.querySelector('.opblock-summary-description')?.textContent ?? '',
]);
"""

#: ReDoc: each operation is a section whose id ends in operation/OPERATIONID, titled h2.
_REDOC: Final = """
return Array.from(document.querySelectorAll('[data-section-id*="operation/"]')).map(
    section => [section.getAttribute('data-section-id'),
                section.querySelector('h2')?.textContent ?? ''],
);
"""
_REDOC_OPERATION: Final = re.compile(r"(?:^|/)operation/(?P<id>.+)")
# Swagger UI writes a tag's white space as _ in element ids.
_SPACE: Final = re.compile(r"\s")


@dataclass(frozen=True, order=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str
    path: str
    operation_id: str
    summary: str
    tags: tuple[str, ...]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on a free port, on a SQLite database of its own."""
    with optimist_serving(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.fixture(scope="module")
def operations(service: Server) -> list[Operation]:
    """Every operation of the service's ``/openapi.json``."""
    document: dict[str, Any] = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    found = sorted(
        Operation(
            method.upper(),
            path,
            operation["operationId"],
            operation.get("summary", ""),
            tuple(operation.get("tags") or ["default"]),
        )
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    )
    assert found, "the OpenAPI document lists no operation"
    return found


def settled(driver: WebDriver, read: Callable[[WebDriver], T], expected: T) -> T:
    """What ``read`` gives once it gives ``expected``, or at the deadline (then the test's
    assertion shows the difference)."""
    with contextlib.suppress(TimeoutException):
        wait_for(driver, lambda current: read(current) == expected)
    return read(driver)


def swagger_operations(driver: WebDriver) -> list[tuple[str, str, str, str]]:
    """Swagger UI's rendered operations: (element id, method, path, summary), sorted."""
    rows: list[list[str]] = driver.execute_script(_SWAGGER)
    return sorted((row[0], row[1].upper(), row[2], row[3].strip()) for row in rows)


def redoc_operations(driver: WebDriver) -> set[tuple[str, str]]:
    """ReDoc's rendered operations: (operationId, title)."""
    rows: list[list[str]] = driver.execute_script(_REDOC)
    found = ((_REDOC_OPERATION.search(section), title) for section, title in rows)
    return {(match["id"], title.strip()) for match, title in found if match}


def open_page(driver: WebDriver, url: str) -> Traffic:
    """Open ``url``; the page's requests from now on."""
    traffic = Traffic(driver)
    driver.get(url)
    return traffic


def test_swagger_ui_renders_every_operation(
    browser: WebDriver, service: Server, operations: list[Operation]
) -> None:
    """/docs shows each operation, under each of its tags, with its method, path and summary."""
    open_page(browser, f"{service.url}/docs")
    expected = sorted(
        (
            f"operations-{_SPACE.sub('_', tag)}-{operation.operation_id}",
            operation.method,
            operation.path,
            operation.summary,
        )
        for operation in operations
        for tag in operation.tags
    )
    assert settled(browser, swagger_operations, expected) == expected


def test_redoc_renders_every_operation(
    browser: WebDriver, service: Server, operations: list[Operation]
) -> None:
    """/redoc shows each operation, by its operationId, titled with its summary."""
    open_page(browser, f"{service.url}/redoc")
    expected = {(operation.operation_id, operation.summary) for operation in operations}
    assert settled(browser, redoc_operations, expected) == expected


def test_swagger_ui_requests_nothing_but_the_service(
    browser: WebDriver, service: Server, operations: list[Operation]
) -> None:
    """/docs, rendered, sent no request anywhere but to the service."""
    traffic = open_page(browser, f"{service.url}/docs")
    wait_for(browser, lambda driver: len(swagger_operations(driver)) >= len(operations))
    wait_for(browser, lambda _: traffic.settled())
    assert traffic.elsewhere(service.url) == []


def test_redoc_requests_nothing_but_the_service(
    browser: WebDriver, service: Server, operations: list[Operation]
) -> None:
    """/redoc, rendered, sent no request anywhere but to the service."""
    traffic = open_page(browser, f"{service.url}/redoc")
    ids = {operation.operation_id for operation in operations}
    wait_for(browser, lambda driver: {i for i, _ in redoc_operations(driver)} >= ids)
    wait_for(browser, lambda _: traffic.settled())
    assert traffic.elsewhere(service.url) == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_documentation_pages_carry_a_policy_keeping_them_on_the_service(
    service: Server, path: str
) -> None:
    """/docs and /redoc are sent with a Content-Security-Policy whose default is 'self' and
    whose scripts are the service's own, inline ones by hash only."""
    policy = httpx.get(f"{service.url}{path}").headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"][0] == "'self'"
    assert all(source.startswith("'sha256-") for source in directives["script-src"][1:])


def test_the_api_is_sent_without_the_documentation_policy(service: Server) -> None:
    """A response of the APIs carries no Content-Security-Policy of the documentation's."""
    assert "content-security-policy" not in httpx.get(f"{service.url}/projects").headers

"""Driving ``/ui`` in Chromium: windows, the app's state, its fields, its dialog.

The app says where it is in ``<html data-state>`` (loading, ready, saving, conflict,
saved, cancelled, refused, failed); every wait polls for a state or an element, never
for a length of time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from tests.support.browser import wait_for
from tests.support.servers import ROOT, Server

__all__ = [
    "DONE",
    "PNG",
    "Window",
    "conflict_rows",
    "dialog_open",
    "held",
    "new_item",
    "new_project",
    "new_session",
    "pick",
    "project",
    "screenshots",
    "session",
    "set_field",
    "settle",
    "state",
    "two_windows",
    "wait_state",
]

#: The states a save ends in.
DONE: Final = ("saved", "refused", "failed", "cancelled", "conflict")
#: The signature every PNG file starts with.
PNG: Final = b"\x89PNG\r\n\x1a\n"


def new_project(server: Server, **fields: Any) -> dict[str, Any]:
    """A project created on ``server``, as its 201 shows it."""
    body = {"name": "Main Street Sign", **fields}
    response = httpx.post(f"{server.url}/projects", json=body, timeout=60)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["result"]
    return created


def project(server: Server, project_id: str) -> dict[str, Any]:
    """The project as the server holds it now."""
    response = httpx.get(f"{server.url}/projects/{project_id}", timeout=60)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["result"]
    return found


def new_session(server: Server, **fields: Any) -> dict[str, Any]:
    """A test session created on ``server``, as its 201 shows it."""
    body = {"building_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", **fields}
    response = httpx.post(f"{server.url}/v1/tests/sessions", json=body, timeout=60)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def session(server: Server, session_id: str) -> dict[str, Any]:
    """The test session as the server holds it now."""
    response = httpx.get(f"{server.url}/v1/tests/sessions/{session_id}", timeout=60)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def new_item(server: Server, kind: str) -> str:
    """The id of a new project or test session (``kind``: projects or sessions)."""
    if kind == "projects":
        project_id: str = new_project(server)["project_id"]
        return project_id
    session_id: str = new_session(server)["id"]
    return session_id


def held(server: Server, kind: str, item_id: str) -> dict[str, Any]:
    """The project or test session as the server holds it now."""
    return project(server, item_id) if kind == "projects" else session(server, item_id)


class Window:
    """One browser window of ``driver``, with a page state of its own."""

    def __init__(self, driver: WebDriver, handle: str) -> None:
        self.driver = driver
        self.handle = handle

    def __enter__(self) -> WebDriver:
        self.driver.switch_to.window(self.handle)
        return self.driver

    def __exit__(self, *_: object) -> None:
        return None

    def open(self, url: str) -> WebDriver:
        """Load ``url`` as a new document in this window; return once the app is ready."""
        with self as driver:
            driver.get("about:blank")
            driver.get(url)
            wait_state(driver, "ready", "failed")
            return driver


@contextmanager
def two_windows(driver: WebDriver) -> Iterator[tuple[Window, Window]]:
    """Two windows of ``driver``: two people's pages, each with its own state."""
    first = driver.current_window_handle
    driver.switch_to.new_window("window")
    second = driver.current_window_handle
    try:
        yield Window(driver, first), Window(driver, second)
    finally:
        driver.switch_to.window(second)
        driver.close()
        driver.switch_to.window(first)


def state(driver: WebDriver) -> str | None:
    """Where the app is (``<html data-state>``)."""
    found: str | None = driver.execute_script("return document.documentElement.dataset.state")
    return found


def wait_state(driver: WebDriver, *states: str) -> str:
    """The app's state once it is one of ``states``."""

    def reached(current: WebDriver) -> str:
        found = state(current)
        return found if found is not None and found in states else ""

    return wait_for(driver, reached)


def settle(driver: WebDriver, act: Callable[[], object]) -> str:
    """Do ``act`` (a click, a key) and return the state the app's work ends in.

    The state is cleared first, so that the one left by earlier work is never taken
    for the outcome of this one.
    """
    driver.execute_script("document.documentElement.dataset.state = 'acting'")
    act()
    return wait_state(driver, *DONE)


def set_field(driver: WebDriver, name: str, value: str) -> None:
    """Type ``value`` into the editor's field ``name`` (a select: choose it)."""
    element = driver.find_element(By.ID, f"field-{name}")
    if element.tag_name == "select":
        Select(element).select_by_value(value)
        return
    element.clear()
    element.send_keys(value)


def dialog_open(driver: WebDriver) -> bool:
    """Whether the conflict dialog is showing."""
    shown: bool = driver.execute_script("return document.getElementById('conflict').open")
    return shown


def conflict_rows(driver: WebDriver) -> dict[str, dict[str, Any]]:
    """The dialog's rows by field: whether marked as a conflict, each column's text."""
    rows: list[dict[str, Any]] = driver.execute_script(
        """return Array.from(document.querySelectorAll('#conflict-rows tr')).map(row => ({
            field: row.dataset.field,
            conflict: row.classList.contains('conflict'),
            base: row.querySelector('td.base pre').textContent,
            theirs: row.querySelector('td.theirs pre').textContent,
            mine: row.querySelector('td.mine pre').textContent,
            result: row.querySelector('td.result [name]').value,
        }));"""
    )
    return {row["field"]: row for row in rows}


def pick(driver: WebDriver, field: str, side: str) -> WebElement:
    """Choose ``side`` (theirs or mine) for ``field`` in the dialog, as a click would."""
    radio = driver.find_element(By.CSS_SELECTOR, f'input[name="pick-{field}"][value="{side}"]')
    radio.click()
    return radio


def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$OPTIMIST_SCREENSHOTS`` (relative to the repository) when
    set, e.g. docs/images to make the README's, otherwise ``tmp_path``."""
    configured = os.environ.get("OPTIMIST_SCREENSHOTS")
    if not configured:
        return tmp_path
    directory = ROOT / configured
    directory.mkdir(parents=True, exist_ok=True)
    return directory

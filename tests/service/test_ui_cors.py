"""``/ui``'s files served from another origin drive a service started with
``--cors-origin`` for it: the page reads the ETag, writes with If-Match, and merges a
412 across origins. The API's base URL is the page's ``api`` query parameter."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from optimist.service.ui import STATIC
from tests.service.ui.pages import Window, new_project, project, set_field, settle
from tests.support.browser import Traffic, browser, static_origin, wait_for
from tests.support.servers import Server, optimist_serving

#: The fixtures this module uses from tests.support.
__all__ = ["browser"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The origin of a static server of the app's files, on a port of its own."""
    with static_origin(STATIC) as origin:
        yield origin


@pytest.fixture(scope="module")
def api(page_origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on another port, with CORS on for the page's origin."""
    directory = tmp_path_factory.mktemp("ui-cors")
    with optimist_serving(directory, "--cors-origin", page_origin) as server:
        yield server


def editor(page_origin: str, api: Server, project_id: str) -> str:
    """The editor of ``project_id`` on ``api``, from the page's own origin."""
    query = httpx.QueryParams({"api": api.url})
    return f"{page_origin}/index.html?{query}#projects/{project_id}"


def test_a_412_merges_across_origins(browser: WebDriver, page_origin: str, api: Server) -> None:
    """The description changes behind the page's back; its rename meets 412, reads the
    project again, merges, and saves with the new ETag: both changes are held."""
    created = new_project(api)
    driver = Window(browser, browser.current_window_handle).open(
        editor(page_origin, api, created["project_id"])
    )
    changed = httpx.put(
        f"{api.url}/projects/{created['project_id']}",
        json={"description": "Changed elsewhere"},
        headers={"If-Match": f'"{created["etag"]}"'},
        timeout=60,
    )
    assert changed.status_code == 200, changed.text
    set_field(driver, "name", "From another origin")
    assert settle(driver, driver.find_element("id", "save").click) == "saved"
    held = project(api, created["project_id"])
    assert (held["name"], held["description"]) == ("From another origin", "Changed elsewhere")


def test_the_page_asks_only_its_origin_and_the_service(
    browser: WebDriver, page_origin: str, api: Server
) -> None:
    """Across origins, every request went to the page's origin or to the service."""
    created = new_project(api)
    traffic = Traffic(browser)
    Window(browser, browser.current_window_handle).open(
        editor(page_origin, api, created["project_id"])
    )
    wait_for(browser, lambda _: traffic.settled())
    assert [
        url for url in traffic.elsewhere(api.url) if not url.startswith(f"{page_origin}/")
    ] == []
    assert any(url.startswith(f"{api.url}/projects/") for url in traffic.elsewhere(page_origin))

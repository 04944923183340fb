"""``/ui`` in a real Chromium against a real ``optimist serve``: two people edit one
project or test session; a 412 is merged, or resolved in the conflict dialog, with the
mouse or with the keyboard alone; a refusal is shown; the page asks nothing of any host
but the service.

Two people are two windows of one browser, each page with its own state
(:mod:`tests.service.ui.pages`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.service.ui.pages import (
    PNG,
    Window,
    conflict_rows,
    dialog_open,
    held,
    new_item,
    new_project,
    new_session,
    pick,
    project,
    screenshots,
    session,
    set_field,
    settle,
    two_windows,
    wait_state,
)
from tests.support.browser import Traffic, browser, wait_for
from tests.support.servers import Server, optimist_serving

#: The fixtures this module uses from tests.support.
__all__ = ["browser"]

pytestmark = pytest.mark.slow

#: The size of the window the screenshots show.
WINDOW = (1280, 1000)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on a free port, on a SQLite database of its own."""
    with optimist_serving(tmp_path_factory.mktemp("ui")) as server:
        yield server


@pytest.fixture
def people(browser: WebDriver) -> Iterator[tuple[Window, Window]]:
    """Two windows of the browser, sized for the screenshots."""
    browser.set_window_size(*WINDOW)
    with two_windows(browser) as windows:
        yield windows


def editor_url(server: Server, kind: str, item_id: str) -> str:
    """The app's editor of one item (``kind``: projects or sessions)."""
    return f"{server.url}/ui/#{kind}/{item_id}"


def save(driver: WebDriver) -> str:
    """Press Save; the state the save ends in."""
    return settle(driver, driver.find_element(By.ID, "save").click)


def submit_dialog(driver: WebDriver) -> str:
    """Press the dialog's save button; the state the save ends in."""
    button = driver.find_element(By.CSS_SELECTOR, "#conflict-form button[type=submit]")
    return settle(driver, button.click)


def problem_text(driver: WebDriver) -> str:
    """What the editor's alert says."""
    text: str = driver.find_element(By.ID, "problem").text
    return text


def same_field_conflict(server: Server, people: tuple[Window, Window]) -> str:
    """Ann changes the name and the customer and saves; Bob, who opened the project
    before, changes the name and the description and saves: the dialog opens for him.
    The project's id."""
    created = new_project(server, customer="ACME", description="A sign")
    ann, bob = people
    url = editor_url(server, "projects", created["project_id"])
    ann.open(url)
    bob.open(url)
    with ann as driver:
        set_field(driver, "name", "Ann's name")
        set_field(driver, "customer", "Ann's customer")
        assert save(driver) == "saved"
    with bob as driver:
        set_field(driver, "name", "Bob's name")
        set_field(driver, "description", "Bob's description")
        assert save(driver) == "conflict"
        assert dialog_open(driver)
    project_id: str = created["project_id"]
    return project_id


# -- lists and one writer ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["projects", "sessions"])
def test_the_list_links_each_item_to_its_editor(
    browser: WebDriver, served: Server, kind: str
) -> None:
    """The list of projects or of test sessions has a link to the editor of each item."""
    item_id = new_item(served, kind)
    Window(browser, browser.current_window_handle).open(f"{served.url}/ui/#{kind}")
    links = [
        link.get_attribute("href")
        for link in browser.find_elements(By.CSS_SELECTOR, "#list-rows a")
    ]
    assert editor_url(served, kind, item_id) in links


def test_a_project_edit_is_saved(browser: WebDriver, served: Server) -> None:
    """A changed name is written, and the editor shows the project's new ETag."""
    created = new_project(served)
    driver = Window(browser, browser.current_window_handle).open(
        editor_url(served, "projects", created["project_id"])
    )
    set_field(driver, "name", "Renamed")
    assert save(driver) == "saved"
    held = project(served, created["project_id"])
    assert held["name"] == "Renamed"
    assert f'"{held["etag"]}"' in driver.find_element(By.ID, "editor-meta").text


def test_a_session_edit_is_saved_under_its_clock(browser: WebDriver, served: Server) -> None:
    """Changed notes are written with the session's clock; its counter moves on."""
    created = new_session(served, notes="first")
    driver = Window(browser, browser.current_window_handle).open(
        editor_url(served, "sessions", created["id"])
    )
    set_field(driver, "notes", "second")
    assert save(driver) == "saved"
    held = session(served, created["id"])
    assert held["notes"] == "second"
    assert held["vector_clock"] == {"test-node": created["vector_clock"]["test-node"] + 1}


def test_a_refused_transition_is_shown_as_such(browser: WebDriver, served: Server) -> None:
    """draft → accepted is a 422 the editor shows, with the statuses allowed; nothing is
    written."""
    created = new_project(served)
    driver = Window(browser, browser.current_window_handle).open(
        editor_url(served, "projects", created["project_id"])
    )
    set_field(driver, "status", "accepted")
    assert save(driver) == "refused"
    text = problem_text(driver)
    assert "Invalid transition: draft → accepted" in text
    assert "From draft the status may become: estimating." in text
    assert project(served, created["project_id"])["etag"] == created["etag"]


def test_a_refused_session_change_names_the_field(browser: WebDriver, served: Server) -> None:
    """A building id that is no UUID is a 422 the editor shows, naming the field."""
    created = new_session(served)
    driver = Window(browser, browser.current_window_handle).open(
        editor_url(served, "sessions", created["id"])
    )
    set_field(driver, "building_id", "building 7")
    assert save(driver) == "refused"
    assert "building_id" in problem_text(driver)
    assert session(served, created["id"])["building_id"] == created["building_id"]


# -- two writers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("projects", ("name", "Ann's name"), ("description", "Bob's description")),
        ("sessions", ("notes", "Ann's notes"), ("status", "in_progress")),
    ],
    ids=["project", "session"],
)
def test_edits_of_different_fields_merge_without_a_dialog(
    served: Server,
    people: tuple[Window, Window],
    kind: str,
    first: tuple[str, str],
    second: tuple[str, str],
) -> None:
    """The second save meets 412, merges, and saves again: no dialog, both changes held."""
    item_id = new_item(served, kind)
    ann, bob = people
    ann.open(editor_url(served, kind, item_id))
    bob.open(editor_url(served, kind, item_id))
    with ann as driver:
        set_field(driver, *first)
        assert save(driver) == "saved"
    with bob as driver:
        set_field(driver, *second)
        assert save(driver) == "saved"
        assert (
            driver.execute_script("return document.getElementById('conflict').dataset.round")
            is None
        )
    now = held(served, kind, item_id)
    assert (now[first[0]], now[second[0]]) == (first[1], second[1])


def test_the_dialog_marks_only_the_field_changed_on_both_sides(
    served: Server, people: tuple[Window, Window]
) -> None:
    """Name is marked; customer holds theirs and description mine, merged already."""
    same_field_conflict(served, people)
    with people[1] as driver:
        rows = conflict_rows(driver)
    assert [field for field, row in rows.items() if row["conflict"]] == ["name"]
    assert (rows["name"]["base"], rows["name"]["theirs"], rows["name"]["mine"]) == (
        "Main Street Sign",
        "Ann's name",
        "Bob's name",
    )
    assert rows["customer"]["result"] == "Ann's customer"
    assert rows["description"]["result"] == "Bob's description"


def test_the_choice_is_saved_with_the_other_changes(
    served: Server, people: tuple[Window, Window]
) -> None:
    """Bob uses his name: the project has it, Ann's customer and Bob's description."""
    project_id = same_field_conflict(served, people)
    with people[1] as driver:
        pick(driver, "name", "mine")
        assert submit_dialog(driver) == "saved"
        assert not dialog_open(driver)
    held = project(served, project_id)
    assert (held["name"], held["customer"], held["description"]) == (
        "Bob's name",
        "Ann's customer",
        "Bob's description",
    )


def test_an_edited_result_is_saved(served: Server, people: tuple[Window, Window]) -> None:
    """Bob writes a name of his own in the result column: the project has it."""
    project_id = same_field_conflict(served, people)
    with people[1] as driver:
        result = driver.find_element(By.ID, "result-name")
        result.clear()
        result.send_keys("Both names")
        assert submit_dialog(driver) == "saved"
    assert project(served, project_id)["name"] == "Both names"


def test_saving_without_a_choice_asks_for_one(
    served: Server, people: tuple[Window, Window]
) -> None:
    """Save with the conflict unresolved keeps the dialog open, says so, and focuses it."""
    same_field_conflict(served, people)
    with people[1] as driver:
        driver.find_element(By.CSS_SELECTOR, "#conflict-form button[type=submit]").click()
        error = driver.find_element(By.ID, "conflict-error")
        assert "Choose theirs or mine, or edit the result, for: Name." in error.text
        assert dialog_open(driver)
        assert driver.switch_to.active_element.get_attribute("name") == "pick-name"


def test_a_second_412_shows_the_dialog_again(served: Server, people: tuple[Window, Window]) -> None:
    """Ann renames again while Bob chooses: his save meets 412 and the dialog returns,
    with her newest name as theirs and his choice as mine."""
    project_id = same_field_conflict(served, people)
    ann, bob = people
    with ann as driver:
        set_field(driver, "name", "Ann's second name")
        assert save(driver) == "saved"
    with bob as driver:
        pick(driver, "name", "mine")
        assert submit_dialog(driver) == "conflict"
        wait_for(
            driver, lambda d: d.find_element(By.ID, "conflict").get_attribute("data-round") == "2"
        )
        assert dialog_open(driver)
        assert driver.find_element(By.ID, "conflict-round").is_displayed()
        rows = conflict_rows(driver)
        assert (rows["name"]["base"], rows["name"]["theirs"], rows["name"]["mine"]) == (
            "Ann's name",
            "Ann's second name",
            "Bob's name",
        )
        pick(driver, "name", "mine")
        assert submit_dialog(driver) == "saved"
    assert project(served, project_id)["name"] == "Bob's name"


def test_the_keyboard_alone_resolves_a_conflict(
    served: Server, people: tuple[Window, Window]
) -> None:
    """Type, Enter to save; the dialog opens focused on the conflict's first choice; an
    arrow key takes mine; Enter saves it."""
    created = new_project(served)
    ann, bob = people
    url = editor_url(served, "projects", created["project_id"])
    ann.open(url)
    bob.open(url)
    with ann as driver:
        set_field(driver, "name", "Ann's name")
        assert save(driver) == "saved"
    with bob as driver:
        driver.find_element(By.ID, "field-name").click()
        active = driver.switch_to.active_element
        active.send_keys(Keys.END, " by Bob")
        assert settle(driver, lambda: active.send_keys(Keys.ENTER)) == "conflict"
        focused = driver.switch_to.active_element
        assert (focused.get_attribute("name"), focused.get_attribute("value")) == (
            "pick-name",
            "theirs",
        )
        focused.send_keys(Keys.ARROW_RIGHT)
        chosen = driver.switch_to.active_element
        assert settle(driver, lambda: chosen.send_keys(Keys.ENTER)) == "saved"
    assert project(served, created["project_id"])["name"] == "Main Street Sign by Bob"


def test_escape_closes_the_dialog_without_saving(
    served: Server, people: tuple[Window, Window]
) -> None:
    """Escape cancels: nothing is written, Bob's edit stays in the form, Save has focus."""
    project_id = same_field_conflict(served, people)
    with people[1] as driver:
        focused = driver.switch_to.active_element
        assert settle(driver, lambda: focused.send_keys(Keys.ESCAPE)) == "cancelled"
        assert not dialog_open(driver)
        assert driver.switch_to.active_element.get_attribute("id") == "save"
        assert driver.find_element(By.ID, "field-name").get_attribute("value") == "Bob's name"
    assert project(served, project_id)["name"] == "Ann's name"


# -- where the page goes ----------------------------------------------------------------------


def test_the_app_requests_nothing_but_the_service(browser: WebDriver, served: Server) -> None:
    """The list, an editor and a save sent no request anywhere but to the service."""
    created = new_project(served)
    window = Window(browser, browser.current_window_handle)
    traffic = Traffic(browser)
    window.open(f"{served.url}/ui/")
    driver = window.open(editor_url(served, "projects", created["project_id"]))
    set_field(driver, "customer", "Someone")
    assert save(driver) == "saved"
    wait_for(driver, lambda _: traffic.settled())
    assert traffic.elsewhere(served.url) == []
    assert traffic.requests


def test_a_page_of_the_service_talks_to_no_other_host(browser: WebDriver, served: Server) -> None:
    """?api= naming another origin is refused by the page's policy (connect-src 'self')
    before anything is sent: the list says the service could not be reached."""
    traffic = Traffic(browser)
    driver = Window(browser, browser.current_window_handle).open(
        f"{served.url}/ui/?api=http://127.0.0.1:9#projects"
    )
    assert wait_state(driver, "failed") == "failed"
    wait_for(driver, lambda _: traffic.settled())
    assert traffic.elsewhere(served.url) == []
    assert "could not be reached" in driver.find_element(By.ID, "list-problem").text


# -- screenshots ------------------------------------------------------------------------------


def test_a_screenshot_of_the_editor(browser: WebDriver, served: Server, tmp_path: Path) -> None:
    """The editor of a project, as a PNG (docs/images/ui-editor.png when asked for)."""
    browser.set_window_size(*WINDOW)
    created = new_project(
        served,
        name="Main Street Sign",
        customer="City of Springfield",
        description="Illuminated sign over the main entrance, 4 × 1.2 m.",
        metadata={"site": "12 Main Street", "priority": "high"},
    )
    driver = Window(browser, browser.current_window_handle).open(
        editor_url(served, "projects", created["project_id"])
    )
    set_field(driver, "description", "Illuminated sign over the main entrance, 4.5 × 1.2 m.")
    image = driver.get_screenshot_as_png()
    assert image.startswith(PNG)
    assert len(image) > 20_000
    (screenshots(tmp_path) / "ui-editor.png").write_bytes(image)


def test_a_screenshot_of_the_conflict_dialog(
    served: Server, people: tuple[Window, Window], tmp_path: Path
) -> None:
    """The dialog of :func:`same_field_conflict`, as a PNG (docs/images/ui-conflict.png
    when asked for)."""
    same_field_conflict(served, people)
    with people[1] as driver:
        image = driver.get_screenshot_as_png()
    assert image.startswith(PNG)
    assert len(image) > 20_000
    (screenshots(tmp_path) / "ui-conflict.png").write_bytes(image)

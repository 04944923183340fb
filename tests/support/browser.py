"""A real headless Chromium (Debian's ``chromium`` and ``chromedriver``) driven by
selenium, for the tests of what a person sees in a browser.

The browser may reach this machine only: every other host name resolves to nothing
(``--host-resolver-rules``), so a page that would load an asset from a CDN fails to
render, as it would on a machine without internet. Outside CI a missing Chromium skips
the test, saying so; under CI it fails.

:class:`Traffic` reads what the pages asked the network for from Chromium's own log
(the DevTools protocol's ``Network`` events): every request the page made, whether it
was answered, failed or refused by the browser itself (a Content-Security-Policy), so
that a test can say where a page went, not only what it managed to load.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

__all__ = ["FLAGS", "Request", "Traffic", "browser", "static_origin", "wait_for"]

#: Headless, no sandbox (CI runs as root), and nothing that talks to the internet.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """A headless Chromium with a profile of its own, closed after the module's tests."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        reason = "Debian's chromium and chromium-driver are not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run installs them", pytrace=False)
        pytest.skip(f"{reason} (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    # The DevTools protocol's Network events, read by Traffic.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


class _Quiet(SimpleHTTPRequestHandler):
    """Serves files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def static_origin(directory: Path) -> Iterator[str]:
    """The origin of a static server of ``directory`` on a port of its own: pages whose
    origin is not the service's, for cross-origin tests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 60) -> T:
    """What ``condition`` returns once it is truthy; a generous bound, never a measure."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


@dataclass
class Request:
    """One request of a page: its URL, whether it ended, and why the browser refused it."""

    url: str
    ended: bool = False
    #: The DevTools protocol's ``blockedReason`` (``csp``, ...): never sent.
    blocked: str | None = None

    @property
    def in_the_page(self) -> bool:
        """A ``data:`` or ``blob:`` URL: read from the page's memory, no network involved
        (Chromium reports no end of a ``blob:`` worker script to the page)."""
        return self.url.startswith(("data:", "blob:"))


@dataclass
class Traffic:
    """The requests pages of ``driver`` made, from Chromium's performance log.

    Reading the log empties it: make one Traffic before the page is opened (it forgets
    what came before) and read it after.
    """

    driver: WebDriver
    requests: dict[str, Request] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._read()
        self.requests.clear()

    def _read(self) -> None:
        entries: list[dict[str, Any]] = self.driver.get_log("performance")  # type: ignore[attr-defined]
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            if method == "Network.requestWillBeSent":
                # A redirect reuses the id: the URL the request went on to replaces it.
                self.requests[params["requestId"]] = Request(params["request"]["url"])
            elif method in {"Network.loadingFinished", "Network.loadingFailed"}:
                request = self.requests.get(params["requestId"])
                if request is not None:
                    request.ended = True
                    request.blocked = params.get("blockedReason")

    def settled(self) -> bool:
        """Whether every request made so far has ended (answered, failed or refused)."""
        self._read()
        return all(request.ended or request.in_the_page for request in self.requests.values())

    def elsewhere(self, origin: str) -> list[str]:
        """The URLs of requests sent anywhere but ``origin`` (a request the browser
        refused went nowhere, nor did one :attr:`~Request.in_the_page`)."""
        self._read()
        return sorted(
            request.url
            for request in self.requests.values()
            if request.blocked is None
            and not request.in_the_page
            and not request.url.startswith(f"{origin}/")
        )

"""``/ui``'s files as the service sends them: with validators, under a policy that keeps
the page on the service, with nothing inline and no other host named."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import pytest

from optimist.service.ui import STATIC
from tests.support.service import Service

#: Every file of the app, by its name under /ui/.
FILES: Final = sorted(path.name for path in STATIC.iterdir() if path.is_file())
#: The media type each kind of file is sent as.
TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
#: A URL with a scheme or a network path: somewhere other than the service.
_ELSEWHERE: Final = re.compile(r"\b[a-z][a-z0-9+.-]*://|[\"'(]//[^/]", re.IGNORECASE)


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy's directives: name → sources."""
    parts = (directive.split() for directive in policy.split(";") if directive.strip())
    return {name: sources for name, *sources in parts}


class _Inline(HTMLParser):
    """Collects what a page would run or style inline."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        self.found += [
            f"{tag} {name}=" for name in names if name == "style" or name.startswith("on")
        ]


@pytest.mark.anyio
async def test_the_app_is_index_html_under_its_policy(service: Service) -> None:
    """/ui/ is the page, sent with a policy allowing the service's own origin only and
    nothing inline."""
    response = await service.client.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (STATIC / "index.html").read_text(encoding="utf-8")
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    for name in ("script-src", "style-src", "connect-src"):
        assert policy[name] == ["'self'"], name
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.anyio
async def test_ui_without_a_slash_leads_to_the_app(service: Service) -> None:
    """/ui redirects to /ui/."""
    response = await service.client.get("/ui")
    assert response.status_code in {307, 308}
    assert response.headers["location"].endswith("/ui/")


@pytest.mark.parametrize("name", FILES)
@pytest.mark.anyio
async def test_each_file_is_sent_with_an_etag_and_its_type(service: Service, name: str) -> None:
    """Every file of the app is a 200 with an ETag, its media type and nosniff."""
    response = await service.client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert "etag" in response.headers
    assert response.headers["content-type"].startswith(TYPES[Path(name).suffix])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", FILES)
@pytest.mark.anyio
async def test_each_file_revalidates_to_a_304(service: Service, name: str) -> None:
    """RFC 9110 §13.1.2: a file's own ETag in If-None-Match is a 304."""
    etag = (await service.client.get(f"/ui/{name}")).headers["etag"]
    response = await service.client.get(f"/ui/{name}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["etag"] == etag


@pytest.mark.anyio
async def test_a_missing_file_is_a_404(service: Service) -> None:
    """A name the app does not have is a 404, not the page."""
    response = await service.client.get("/ui/missing.js")
    assert response.status_code == 404


@pytest.mark.anyio
async def test_the_api_is_sent_without_the_apps_policy(service: Service) -> None:
    """A response of the APIs carries no Content-Security-Policy of the app's."""
    response = await service.client.get("/projects")
    assert "content-security-policy" not in response.headers


def test_the_page_has_nothing_inline() -> None:
    """index.html has no inline script, style element, style attribute or event handler,
    which the policy would refuse."""
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert parser.found == []


@pytest.mark.parametrize("name", FILES)
def test_no_file_names_another_host(name: str) -> None:
    """No file of the app holds an absolute URL: it loads nothing from a CDN."""
    text = (STATIC / name).read_text(encoding="utf-8")
    assert _ELSEWHERE.findall(text) == []

"""The app's three-way merge (``/ui/merge.js``) follows :func:`optimist.merge.merge`:
each case runs in Chromium and in Python, and both must give the same value, or the
same conflicting paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from optimist.errors import MergeConflict
from optimist.merge import merge
from optimist.service.ui import STATIC
from tests.support.browser import browser, static_origin

#: The fixtures this module uses from tests.support.
__all__ = ["browser"]

pytestmark = pytest.mark.slow

#: Merges the arguments with merge.js; calls back with [value, conflicts] as JSON text.
_MERGE = """
const [base, theirs, mine, done] = arguments;
import('/merge.js').then(({ merge }) => {
  const { value, conflicts } = merge(base, theirs, mine);
  done(JSON.stringify([value, conflicts]));
}, (error) => done(String(error)));
"""

CASES = [
    ({"a": 1}, {"a": 1}, {"a": 1}, "nothing-changed"),
    ({"a": 1}, {"a": 2}, {"a": 1}, "theirs-only"),
    ({"a": 1}, {"a": 1}, {"a": 2}, "mine-only"),
    ({"a": 1}, {"a": 2}, {"a": 2}, "same-change"),
    ({"a": 1}, {"a": 2}, {"a": 3}, "both-changed"),
    ({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 2}, "different-members"),
    ({"a": 1}, {}, {"a": 1}, "deleted-by-them"),
    ({"a": 1}, {}, {"a": 2}, "deleted-and-changed"),
    ({}, {"a": 1}, {"a": 2}, "added-on-both-differently"),
    ({}, {"a": 1}, {"b": 2}, "added-on-both-apart"),
    ({"o": {"x": 1, "y": 1}}, {"o": {"x": 2, "y": 1}}, {"o": {"x": 1, "y": 2}}, "nested-apart"),
    ({"o": {"x": 1}}, {"o": {"x": 2}}, {"o": {"x": 3}}, "nested-conflict"),
    ({"o": 1}, {"o": {"x": 1}}, {"o": {"y": 2}}, "base-not-an-object"),
    ({"l": [1]}, {"l": [1, 2]}, {"l": [0, 1]}, "lists-are-values"),
    ({"v": 1}, {"v": True}, {"v": 2}, "true-is-not-one"),
    ({"v": None}, {"v": "x"}, {"v": None}, "null-is-a-value"),
    ({"a": 1, "b": 1}, {"a": 2, "b": 2}, {"a": 3, "b": 3}, "every-conflict-reported"),
    ("s", "t", "u", "scalar-documents"),
]


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """The origin of a static server of the app's files."""
    with static_origin(STATIC) as origin:
        yield origin


def expected(base: Any, theirs: Any, mine: Any) -> list[Any]:
    """optimist.merge's answer as merge.js shapes it: [value, []] or [None, paths]."""
    try:
        return [merge(base, theirs, mine), []]
    except MergeConflict as conflict:
        return [None, [list(path) for path in conflict.paths]]


@pytest.mark.parametrize(
    ("base", "theirs", "mine"), [c[:3] for c in CASES], ids=[c[3] for c in CASES]
)
def test_merge_js_agrees_with_optimist_merge(
    browser: WebDriver, origin: str, base: Any, theirs: Any, mine: Any
) -> None:
    """merge.js gives optimist.merge's value, or its conflicting paths."""
    if not browser.current_url.startswith(origin):
        browser.get(f"{origin}/merge.js")
    answer = browser.execute_async_script(_MERGE, base, theirs, mine)
    value, conflicts = json.loads(answer)
    want_value, want_conflicts = expected(base, theirs, mine)
    assert conflicts == want_conflicts
    if not want_conflicts:
        assert value == want_value

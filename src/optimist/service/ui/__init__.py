"""The browser app at ``/ui``: list projects and test sessions, edit one, and resolve a
lost compare-and-set race (412) field by field, with base, theirs and mine side by side.

The app is plain HTML, CSS and JavaScript modules shipped in the package
(:data:`~optimist.service.ui.assets.STATIC`): no build step and nothing loaded from
elsewhere. :func:`~optimist.service.ui.assets.ui_app` serves them with validators and a
Content-Security-Policy that keeps the page on the service; docs/ui.md is the guide.
"""

from optimist.service.ui.assets import POLICY, STATIC, UI_URL, UIPolicy, ui_app

__all__ = ["POLICY", "STATIC", "UI_URL", "UIPolicy", "ui_app"]

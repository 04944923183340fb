"""The httpx client's tests share one fake API (tests/support/fake_api.py)."""

from __future__ import annotations

from tests.support.fake_api import rig

__all__ = ["rig"]

"""The problem details a response carries (RFC 9457), read leniently: the JSON object of
its body, or None when the body is no JSON object. Callers decide what the members mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["problem_of"]


def problem_of(response: httpx.Response) -> Mapping[str, Any] | None:
    """The members of ``response``'s problem details; None when its body is no object."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, Mapping) else None

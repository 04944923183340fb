"""Hostile input repeated in a message, at a bounded size.

Error messages and problem details repeat what a client sent (a key in a path, an
If-Match, a clock's node name) so that the client can see what was wrong. A client
can send megabytes; :func:`shorten` is the one place that bounds what comes back.
:mod:`optimist.problem` exports it for the integrations and applications.
"""

from __future__ import annotations

__all__ = ["shorten"]


def shorten(value: str, limit: int = 80) -> str:
    """``value`` cut to ``limit`` characters and an ellipsis, if it is longer."""
    return value if len(value) <= limit else value[:limit] + "…"

"""A condition that recurs many times a second, logged twice: when it begins, when it ends.

A server out of file descriptors fails every accept, a full server refuses every new
connection, an unreachable database fails every readiness probe. Logging each
occurrence floods the log exactly when an operator needs to read it (a stock uvicorn
wrote 82 MB in 25 seconds of "Too many open files"), so each such condition is an
:class:`Episode`: one WARNING line when it begins, one INFO line with the count when
it is over, nothing in between.
"""

from __future__ import annotations

import logging

__all__ = ["Episode"]


class Episode:
    """A recurring condition of one process, logged once as it begins and once as it ends.

    ``begins`` is the WARNING's message; ``ends`` is the INFO's, formatted with
    ``count``, the occurrences it saw. Both are %-style templates, so ``begins`` may
    take the first occurrence's own arguments.
    """

    __slots__ = ("_begins", "_ends", "_logger", "count")

    def __init__(self, logger: logging.Logger, *, begins: str, ends: str) -> None:
        self._logger = logger
        self._begins = begins
        self._ends = ends
        #: Occurrences since the episode began; 0 while the condition does not hold.
        self.count = 0

    @property
    def ongoing(self) -> bool:
        """Whether the condition holds now."""
        return self.count > 0

    def occurred(self, *arguments: object) -> None:
        """One more occurrence; the first of an episode is logged with ``arguments``."""
        self.count += 1
        if self.count == 1:
            self._logger.warning(self._begins, *arguments)

    def over(self) -> None:
        """The condition no longer holds: log how often it occurred, if it ever did."""
        if self.count:
            self._logger.info(self._ends, self.count)
            self.count = 0

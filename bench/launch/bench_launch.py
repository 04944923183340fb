"""The factory every benchmarked ASGI server builds its application with.

It builds the subject's own application (``BENCH_FACTORY``, ``module:function``) and then
freezes what the process holds after that out of the garbage collector
(:func:`gc.freeze`), as ``optimist serve`` does (:func:`optimist.service.server.served_app`):
what a server builds at startup (the modules it imported, the application, its tables)
lives as long as the process, and a full collection that walks all of it pauses every
request in flight. Every subject that uvicorn or granian builds from a factory starts
here, the raw driver's apps as much as optimist's, so that none is measured with pauses
the others do not have.

A module of its own, outside the ``bench`` package: the directory it lives in is on
every server's import path, and a subject served from another commit
(:mod:`bench.baseline`) finds it there whatever that commit's ``bench`` holds.
"""

from __future__ import annotations

import gc
import importlib
import os
from typing import Any

__all__ = ["create_app"]


def create_app() -> Any:
    """The application of ``BENCH_FACTORY``, what it holds frozen out of the collector."""
    module, _, name = os.environ["BENCH_FACTORY"].partition(":")
    app = getattr(importlib.import_module(module), name)()
    gc.collect()
    gc.freeze()
    return app

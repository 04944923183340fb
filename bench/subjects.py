"""The servers under test, and how each one spells the same requests.

Every subject serves items with a counter; they differ in paths, envelopes and the
form of their list pages. A :class:`Subject` holds those differences, so that the
scenarios (:mod:`bench.scenarios`) are written once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from optimist.cursor import Cursor, CursorCodec
from optimist.tokens import TokenSigner

__all__ = [
    "COMPARED",
    "KINTO",
    "OPTIMIST",
    "OPTIMIST_GRANIAN",
    "OPTIMIST_STARLETTE",
    "PAGE_SIZE",
    "RAW",
    "RAW_FASTAPI",
    "RAW_ON",
    "SECRET",
    "SEED",
    "SUBJECTS",
    "UNDER_TEST",
    "Subject",
    "current",
    "twin",
]

#: The key that signs the optimist apps' cursors; the harness makes deep cursors with it.
SECRET: Final = "benchmark cursors are signed with this key"
PAGE_SIZE: Final = 20


@dataclass(frozen=True, slots=True)
class Subject:
    """One server under test.

    ``target`` is what uvicorn serves (``module:factory``); ``item_prefix`` + key is an
    item's path; a write's body is ``{"counter": n}`` wrapped in ``request_envelope``,
    and a document comes back wrapped in ``response_envelope``. ``deep_page(after,
    watermark)`` is the path of the list page after position ``after`` (None: no list),
    and ``list_members`` lead to a page's items. ``connections`` is the most PostgreSQL
    connections one of its worker processes opens (its pool's size and overflow), which
    an idle server keeps open while the others are measured. ``idempotency_keys``: its
    PATCH honours an Idempotency-Key (the keyed scenario is measured on it alone).
    ``path`` goes ahead of this checkout on the server's import path, and ``cwd`` is
    where it runs (None: this checkout). ``server`` is the ASGI server that serves it:
    uvicorn, or granian. ``scenarios`` limits the scenarios it is measured in (None:
    every one it can serve).
    """

    name: str
    label: str
    target: str
    item_prefix: str
    request_envelope: str | None = None
    response_envelope: str | None = None
    deep_page: Callable[[int, int], str] | None = None
    interface: str = "asgi3"
    factory: bool = True
    list_members: tuple[str, ...] = ("data",)
    connections: int = 10
    idempotency_keys: bool = False
    ready_path: str = "/items/1"
    python: str = sys.executable
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    path: tuple[Path, ...] = ()
    server: str = "uvicorn"
    scenarios: frozenset[str] | None = None

    def item(self, key: int) -> str:
        """The path of item ``key``."""
        return f"{self.item_prefix}{key}"

    def write_body(self, counter: int) -> str:
        """The JSON body of a write that sets the counter to ``counter``."""
        document: dict[str, Any] = {"counter": counter}
        if self.request_envelope is not None:
            document = {self.request_envelope: document}
        return json.dumps(document)

    def document(self, body: Any) -> Mapping[str, Any]:
        """The item in a response body."""
        inner = body if self.response_envelope is None else body[self.response_envelope]
        if not isinstance(inner, Mapping):
            raise TypeError(f"{self.name} answered {body!r}, not a document")
        return inner

    @property
    def first_page(self) -> str:
        """The path of a list's first page."""
        return f"/items?limit={PAGE_SIZE}"

    def listed(self, body: Any) -> list[Mapping[str, Any]]:
        """The items of a list page's body."""
        for member in self.list_members:
            body = body[member]
        if not isinstance(body, list):
            raise TypeError(f"{self.name} listed {body!r}, not a list")
        return body

    def counter(self, body: Any) -> int:
        """The counter of the item in a response body."""
        return int(self.document(body)["counter"])


def _optimist_page(after: int, watermark: int) -> str:
    # The cursor the server itself hands out after `after` items of a traversal that
    # began now: the harness skips the 5 000 pages before it, nothing else.
    codec = CursorCodec(TokenSigner([SECRET]))
    cursor = Cursor((after,), watermark, datetime.now(UTC))
    return f"/items?limit={PAGE_SIZE}&cursor={codec.encode(cursor, query='GET /items')}"


OPTIMIST: Final = Subject(
    name="optimist",
    label="optimist",
    target="bench.apps.optimist_app:create_app",
    item_prefix="/items/",
    deep_page=_optimist_page,
    connections=20,  # optimist.sqlalchemy.POSTGRES_POOL: 20, no overflow
    idempotency_keys=True,
)
# The same paths, cursors, keys and engine (so connections) as optimist's, another framework.
OPTIMIST_STARLETTE: Final = replace(
    OPTIMIST,
    name="optimist-starlette",
    label="optimist on Starlette",
    target="bench.apps.optimist_starlette_app:create_app",
)
RAW: Final = Subject(
    name="raw",
    label="raw driver",
    target="bench.apps.raw_app:create_app",
    item_prefix="/items/",
    deep_page=lambda after, _watermark: f"/items?limit={PAGE_SIZE}&after={after}",
    connections=10,  # asyncpg's pool, max_size 10
    idempotency_keys=True,
)
# The same app and library under another ASGI server: which one `optimist serve` runs.
# One read, one write and one page tell the servers apart; the rest would only lengthen
# the run.
OPTIMIST_GRANIAN: Final = replace(
    OPTIMIST,
    name="optimist-granian",
    label="optimist under granian",
    server="granian",
    idempotency_keys=False,
    scenarios=frozenset({"get", "patch_if_match", "page_first"}),
)
# The raw driver's SQL served as a FastAPI user serves it: optimist's baseline there.
RAW_FASTAPI: Final = replace(
    RAW,
    name="raw-fastapi",
    label="raw driver on FastAPI",
    target="bench.apps.raw_fastapi_app:create_app",
)
SEED: Final = Subject(
    name="seed",
    label="seed 003 pattern",
    target="bench.apps.seed_app:create_app",
    item_prefix="/items/",
    response_envelope="result",
    deep_page=lambda after, _watermark: f"/items?limit={PAGE_SIZE}&offset={after}",
    list_members=("result", "items"),
    connections=15,  # SQLAlchemy's default pool: 5 and 10 overflow
)
KINTO: Final = Subject(
    name="kinto",
    label="Kinto",
    target="kinto_wsgi:application",
    item_prefix="/v1/buckets/bench/collections/items/records/",
    request_envelope="data",
    response_envelope="data",
    interface="wsgi",
    factory=False,
    ready_path="/v1/",
    connections=10,  # one per thread of uvicorn's WSGI pool
)


def twin(subject: Subject, rev: str, checkout: Path) -> Subject:
    """``subject`` as commit ``rev`` wrote it, from that commit's tree in ``checkout``.

    Named ``<name>@<rev>``, it serves the commit's own app module and ``src`` package:
    both directories come before this checkout on its import path, and it runs in
    ``checkout`` (uvicorn puts its working directory first on the path).
    """
    return replace(
        subject,
        name=f"{subject.name}@{rev}",
        label=f"{subject.label} @ {rev}",
        path=(checkout / "src", checkout),
        cwd=checkout,
    )


def current(name: str) -> str:
    """The subject whose twin ``name`` is (a subject that is no twin: its own name)."""
    return name.partition("@")[0]


#: Every subject, in the order of the report.
SUBJECTS: Final = (OPTIMIST, OPTIMIST_STARLETTE, OPTIMIST_GRANIAN, RAW, RAW_FASTAPI, SEED, KINTO)
#: The subjects the targets judge, each against the others: the library, as a user of
#: FastAPI and as a user of plain Starlette writes it.
UNDER_TEST: Final = (OPTIMIST.name, OPTIMIST_STARLETTE.name)
#: The raw driver on the framework of each subject under test: what the library's own
#: cost is measured against, the framework's share taken out.
RAW_ON: Final = {OPTIMIST.name: RAW_FASTAPI.name, OPTIMIST_STARLETTE.name: RAW.name}
#: Servers measured for what sets them apart from another: the same app under another
#: server, and the server it is compared with.
COMPARED: Final = {OPTIMIST_GRANIAN.name: OPTIMIST.name}

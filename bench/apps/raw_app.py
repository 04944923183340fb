"""The raw-driver baseline: the same compare-and-set written by hand, without SQLAlchemy.

A Starlette app on asyncpg (PostgreSQL) or aiosqlite (SQLite, a small pool of
autocommit connections). A conditional PATCH is one statement::

    UPDATE items SET counter = COALESCE($2, counter), text = COALESCE($3, text),
                     etag = $4, updated_at = $5
     WHERE id = $1 AND etag = $6 RETURNING id, counter, text, etag

and, only when no row comes back, one SELECT to tell 404 from 412. It understands just
what the benchmark sends (one strong entity-tag, or none) and validates the body by
hand: the least Python a correct endpoint can run, the limit for this stack.

With an ``Idempotency-Key``, the PATCH is the least a correct keyed write can do: one
transaction that claims the key (an insert into ``optimist_idempotency`` that does
nothing when the key has a record), runs the same UPDATE and keeps the answer on the
claim, so that write and record commit together::

    BEGIN (IMMEDIATE on SQLite)
    INSERT INTO optimist_idempotency … ON CONFLICT (scope, key) DO NOTHING RETURNING key
    UPDATE items … RETURNING …
    UPDATE optimist_idempotency SET response = … WHERE scope = … AND key = …
    COMMIT

A key that has a record is answered from it: its answer replayed, a 409 while it is in
flight, a 422 for another request. The fingerprint is a hash of the method, the path,
If-Match and the body; keys never expire here (the benchmark's are all new). It gives
the keyed target its raw driver's own ratio: what the extra statements cost with no
library at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.apps.raw_stores import (
    Answer,
    KeyedWrite,
    Store,
    document,
    open_store,
    problem_body,
)

__all__ = ["PROBLEM", "create_app", "problem", "write_item"]

PROBLEM = "application/problem+json"


def problem(status: int, detail: str, etag: str | None = None) -> Response:
    headers = {"ETag": f'"{etag}"'} if etag is not None else None
    return Response(problem_body(status, detail), status, headers, media_type=PROBLEM)


def _keyed_response(answer: Answer) -> Response:
    status, etag, body, replayed = answer
    headers = {} if etag is None else {"ETag": etag}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    media = "application/json" if status == 200 else PROBLEM
    return Response(body, status, headers, media_type=media)


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.headers.get("if-match", "")):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _expected(if_match: str) -> str | None:
    """The opaque-tag of a single strong entity-tag, or None for anything else."""
    if len(if_match) >= 2 and if_match[0] == '"' and if_match[-1] == '"':
        return if_match[1:-1]
    return None


async def write_item(
    store: Store, request: Request, key: int, *, counter: int | None, text: str | None, sent: bytes
) -> Response:
    """The PATCH of item ``key`` once its body is valid: If-Match and Idempotency-Key
    read by hand, one statement (or the keyed transaction), the answer."""
    if_match = request.headers.get("if-match")
    expected = None if if_match is None else _expected(if_match)
    if if_match is not None and expected is None:
        current = await store.read(key)
        if current is None:
            return problem(404, "no such item")
        return problem(412, "If-Match is not one strong entity-tag", current["etag"])
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None:
        keyed = KeyedWrite(
            item_id=key,
            counter=counter,
            text=text,
            expected=expected,
            key=idempotency_key,
            fingerprint=_fingerprint(request, sent),
        )
        return _keyed_response(await store.write_keyed(keyed))
    row = await store.write(key, counter, text, expected)
    if row is None:
        current = await store.read(key)
        if current is None:
            return problem(404, "no such item")
        return problem(412, "the item has changed", current["etag"])
    return JSONResponse(document(row), headers={"ETag": f'"{row["etag"]}"'})


def create_app() -> Starlette:
    """The baseline on ``BENCH_DATABASE_URL``."""
    state: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["store"] = await open_store(os.environ["BENCH_DATABASE_URL"])
        yield
        await state["store"].close()

    def item_id(request: Request) -> int | None:
        raw = request.path_params["item_id"]
        return int(raw) if raw.isdigit() else None

    async def read(request: Request) -> Response:
        key = item_id(request)
        row = None if key is None else await state["store"].read(key)
        if row is None:
            return problem(404, "no such item")
        etag = f'"{row["etag"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(document(row), headers={"ETag": etag})

    async def patch(request: Request) -> Response:
        key = item_id(request)
        if key is None:
            return problem(404, "no such item")
        sent = await request.body()
        try:
            body = json.loads(sent)
        except ValueError:
            return problem(422, "the body is not JSON")
        if not isinstance(body, dict):
            return problem(422, "the body is a JSON object")
        counter, text = body.get("counter"), body.get("text")
        if isinstance(counter, bool) or not isinstance(counter, int | None):
            return problem(422, "counter must be an integer")
        if not isinstance(text, str | None):
            return problem(422, "text must be a string")
        return await write_item(state["store"], request, key, counter=counter, text=text, sent=sent)

    async def listing(request: Request) -> Response:
        after = request.query_params.get("after", "0")
        limit = request.query_params.get("limit", "20")
        if not (after.isdigit() and limit.isdigit() and 1 <= int(limit) <= 100):
            return problem(422, "after and limit are positive integers, limit at most 100")
        rows = await state["store"].after(int(after), int(limit) + 1)
        following = rows[-2]["created_seq"] if len(rows) > int(limit) else None
        data = [document(row) for row in rows[: int(limit)]]
        return JSONResponse({"data": data, "next_after": following})

    return Starlette(
        routes=[
            Route("/items/{item_id}", read, methods=["GET"]),
            Route("/items/{item_id}", patch, methods=["PATCH"]),
            Route("/items", listing, methods=["GET"]),
        ],
        lifespan=lifespan,
    )

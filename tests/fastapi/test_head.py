"""optimist.fastapi.head: HEAD wherever GET is answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import Message

from optimist.fastapi import HeadMiddleware
from tests.fastapi.items import client_for, items_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the items app in-process."""
    async with client_for(items_app()) as client:
        yield client


async def test_head_answers_like_get_without_body(client: httpx.AsyncClient) -> None:
    """HEAD on a GET route answers GET's status and headers (FastAPI alone says 405)."""
    get = await client.get("/projects/1")
    head = await client.head("/projects/1")
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == b""


# -- HeadMiddleware --------------------------------------------------------------------


def fastapi_app() -> FastAPI:
    """A FastAPI app whose GET routes answer HEAD through the middleware."""
    app = FastAPI()
    app.add_middleware(HeadMiddleware)

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("hello", headers={"X-Route": "get"})

    @app.head("/own")
    async def own_head() -> Response:
        return Response(headers={"X-Route": "head"})

    @app.get("/own")
    async def own_get() -> PlainTextResponse:
        return PlainTextResponse("hello", headers={"X-Route": "get"})

    @app.post("/post-only")
    async def post_only() -> None:
        return None

    return app


async def call(app: Any, method: str, path: str) -> list[Message]:
    """The ASGI messages ``app`` sends for a request without a body."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    return sent


async def test_head_sends_get_headers_and_no_body() -> None:
    """HEAD on a GET route sends GET's status and headers and an empty body."""
    start, *bodies = await call(fastapi_app(), "HEAD", "/text")
    assert start["status"] == 200
    headers = Headers(raw=start["headers"])
    assert headers["x-route"] == "get"
    assert headers["content-length"] == "5"
    assert all(message["body"] == b"" for message in bodies)


async def test_declared_head_route_is_kept() -> None:
    """A route that declares HEAD answers it itself."""
    start, *_ = await call(fastapi_app(), "HEAD", "/own")
    assert Headers(raw=start["headers"])["x-route"] == "head"


async def test_head_without_get_stays_405() -> None:
    """HEAD where GET is not served either is still 405."""
    start, *_ = await call(fastapi_app(), "HEAD", "/post-only")
    assert start["status"] == 405


async def test_405_allow_lists_head_where_get_is_served() -> None:
    """With HEAD served wherever GET is, a 405's Allow names HEAD beside GET."""
    start, *_ = await call(fastapi_app(), "DELETE", "/text")
    assert start["status"] == 405
    allowed = {m.strip() for m in Headers(raw=start["headers"])["allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed


async def test_other_methods_pass_through() -> None:
    """Non-HEAD requests are untouched, body included."""
    start, body = await call(fastapi_app(), "GET", "/text")
    assert (start["status"], body["body"]) == (200, b"hello")

"""A request the service could not finish gets a problem, not a bare 500: a cancelled one
a 503 with Retry-After, one that raised a 500; the application's in-process and CORS's
from the service itself."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimist.service.failures import Unfinished


async def cancelled(app: ASGIApp) -> list[Message]:
    """What ``app`` under :class:`Unfinished` sends for a GET that the server cancels
    once it is running (as uvicorn does at the graceful limit)."""
    sent: list[Message] = []
    running = asyncio.Event()

    async def receive() -> Message:
        running.set()
        await asyncio.Event().wait()  # never: only a cancellation ends it
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    task = asyncio.create_task(Unfinished(app)(scope, receive, send))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return sent


async def waits_for_the_body(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the request's body before it answers."""
    await receive()


async def answers_then_waits(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that starts its response, then waits."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await receive()


@pytest.mark.anyio
async def test_a_request_cancelled_before_its_response_gets_503() -> None:
    """A request the server cancels before it answered is a 503 problem with Retry-After
    and Connection: close, not uvicorn's 500."""
    start, body = await cancelled(waits_for_the_body)
    headers = dict(start["headers"])
    assert (start["status"], headers[b"retry-after"]) == (503, b"1")
    assert (headers[b"connection"], headers[b"content-type"]) == (
        b"close",
        b"application/problem+json",
    )
    assert b"shutting down" in body["body"]


@pytest.mark.anyio
async def test_a_request_cancelled_after_its_response_began_adds_nothing() -> None:
    """Once the response has begun, the cancellation goes on with nothing more sent."""
    sent = await cancelled(answers_then_waits)
    assert [message["status"] for message in sent] == [200]


async def raises(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that fails before it answers."""
    raise RuntimeError("a bug, with a secret in it")


@pytest.mark.anyio
async def test_a_request_that_raised_gets_a_500_problem_and_the_error_goes_on() -> None:
    """An exception no handler answered is a 500 problem saying nothing of the cause;
    the exception is raised on, to be logged."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with pytest.raises(RuntimeError):
        await Unfinished(raises)(scope, receive, send)
    start, body = sent
    assert (start["status"], dict(start["headers"])[b"content-type"]) == (
        500,
        b"application/problem+json",
    )
    assert b"secret" not in body["body"]

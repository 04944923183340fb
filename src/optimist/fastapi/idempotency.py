"""Idempotency-Key on FastAPI routes: a dependency that claims the key, and its document.

:func:`idempotency` makes the dependency of an :class:`~optimist.starlette.Idempotency`
(the application's store, bind, scope and rule): the route takes the request's
:class:`~optimist.starlette.IdempotentWrite`, writes through its ``connection`` and
answers through its ``keep``::

    keys = Idempotency[Bind](engine, idempotent, scope=lambda request: request.state.tenant)
    Write = Annotated[IdempotentWrite[Bind], idempotency(keys)]

    @router.patch("/counters/{key}")
    async def increment(key: str, pre: Pre, write: Write) -> Response:
        record = await update(write.connection, counters, key, ..., condition=...)
        return await write.keep(JSONResponse(...))

Per route, or for a whole application or router (``FastAPI(dependencies=[idempotency(keys)])``;
FastAPI solves the same dependency once per request, so a route that takes it gets the
same write). A request with a key claims it in a transaction that is entered on
FastAPI's stack of ``scope="function"`` dependencies: it commits, answer and claim
together, when the route returns and before the response is sent, so a client never
holds an answer whose write could still be rolled back. A request without one claims
nothing and enters nothing, so the dependency costs it what a plain one does (a
dependency that yields costs every request an exit stack and a shielded exit, whether
it holds anything or not). A route under it that writes
with a key must answer through ``keep``: one that does not is rolled back (a 500), as a
resend would apply it again.

Dependencies run in the order they are declared: declare identity (which the scope
reads) and :func:`~optimist.fastapi.lookup` before it, and their 401/403/404 come before
the key's 400. The key is checked before FastAPI validates the body.

:func:`install_idempotency` answers a resend with its first answer (the dependency
raises :class:`~optimist.starlette.Replayed`, so that the route never runs) and
documents the ``Idempotency-Key`` header and the 400/409/422 of each operation that
depends on it.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Final

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from starlette.responses import Response

from optimist.fastapi.openapi import _documented_operations, _sections, problem_responses
from optimist.idempotency import DEFAULT_TTL, HEADER, MAX_KEY_LENGTH
from optimist.starlette import SAFE_METHODS, Idempotency, IdempotentWrite, Replayed

__all__ = ["idempotency", "install_idempotency"]

#: Each dependency :func:`idempotency` made, with whether it requires a key.
_REQUIRED: Final[weakref.WeakKeyDictionary[Callable[..., Any], bool]] = weakref.WeakKeyDictionary()
#: The dependencies already made for an Idempotency, by the ``required`` asked for. Held
#: weakly, by the routes that use them: a dependency refers to its Idempotency, which as
#: a weak key would otherwise never die, nor the app and database behind it.
_MADE: Final[
    weakref.WeakKeyDictionary[Idempotency[Any], weakref.WeakValueDictionary[bool | None, Any]]
] = weakref.WeakKeyDictionary()

#: Where FastAPI keeps the exit stack it closes when the route returns, before the
#: response is sent (the stack of dependencies with ``scope="function"``).
_FUNCTION_STACK: Final = "fastapi_function_astack"

_DESCRIPTION: Final = (
    "A key for this request, an sf-string of 1 to {length} characters (a UUID): the "
    "same key on a resend gets the first answer, marked `Idempotent-Replayed: true`; "
    "a new request needs a new key. Keys are kept for {hours} hours."
)
_ANSWERS: Final = {
    400: "Bad Request: malformed input, a malformed Idempotency-Key, or a required one missing",
    409: "Conflict: the resource already exists, the changes collide, or a request with "
    "this Idempotency-Key is still being processed (resend it unchanged)",
    422: "Unprocessable Content: the body or a parameter is invalid, or the "
    "Idempotency-Key was used for another request",
}


def idempotency(keys: Idempotency[Any], *, required: bool | None = None) -> Any:
    """The dependency giving a route its :class:`~optimist.starlette.IdempotentWrite`.

    ``required`` overrides ``keys.required`` for the routes using this one. The same
    arguments give the same dependency, so that FastAPI solves it once per request.
    """
    made = _MADE.setdefault(keys, weakref.WeakValueDictionary())
    dependency = made.get(required)
    if dependency is None:

        async def idempotent_write(request: Request) -> IdempotentWrite[Any]:
            if Replayed not in getattr(request.app, "exception_handlers", {}):
                raise RuntimeError("call install_idempotency(app) to answer resent requests")
            stack = request.scope.get(_FUNCTION_STACK)
            if not isinstance(stack, AsyncExitStack):
                raise RuntimeError(f"FastAPI gave no {_FUNCTION_STACK!r}: FastAPI ≥ 0.121 needed")

            def enter(attempt: AbstractAsyncContextManager[IdempotentWrite[Any]]) -> Any:
                return stack.enter_async_context(_shielded_exit(attempt))

            return await keys.attempt_on(request, enter, required=required)

        _REQUIRED[idempotent_write] = keys.required if required is None else required
        dependency = made[required] = Depends(idempotent_write)
    return dependency


@asynccontextmanager
async def _shielded_exit(
    attempt: AbstractAsyncContextManager[IdempotentWrite[Any]],
) -> AsyncIterator[IdempotentWrite[Any]]:
    """``attempt``, its exit (the commit or the rollback) shielded from cancellation,
    as FastAPI shields the exit of a dependency that yields."""
    write = await attempt.__aenter__()
    try:
        yield write
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            if not await attempt.__aexit__(type(error), error, error.__traceback__):
                raise
    else:
        with anyio.CancelScope(shield=True):
            await attempt.__aexit__(None, None, None)


async def _replayed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replayed)
    return exc.response()


def _requirement(dependant: Dependant) -> bool | None:
    """Whether ``dependant`` requires a key (True), takes one (False), or neither (None)."""
    found: bool | None = None
    for sub in dependant.dependencies:
        own = _REQUIRED.get(sub.call) if sub.call is not None else None
        deeper = _requirement(sub)
        for candidate in (own, deeper):
            if candidate is not None:
                found = candidate or bool(found)
    return found


def _document(operation: dict[str, Any], required: bool) -> None:
    """Add the header and the key's problems to ``operation``."""
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    if not any(str(p.get("name", "")).lower() == HEADER.lower() for p in parameters):
        hours = int(DEFAULT_TTL.total_seconds() // 3600)
        parameters.append(
            {
                "name": HEADER,
                "in": "header",
                "required": required,
                "description": _DESCRIPTION.format(length=MAX_KEY_LENGTH, hours=hours),
                "schema": {"type": "string"},
            }
        )
    responses = operation.setdefault("responses", {})
    for status, declared in problem_responses(400, 409, 422).items():
        response = responses.setdefault(str(status), declared)
        response["description"] = _ANSWERS[int(status)]
        response["content"] = declared["content"]


def install_idempotency(app: FastAPI) -> None:
    """Answer a resent request with its first answer, and document the key in
    ``/openapi.json`` for every unsafe operation that depends on :func:`idempotency`."""
    app.add_exception_handler(Replayed, _replayed)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations, routes in _sections(schema, app):
                for (path, method), dependant in _documented_operations(routes).items():
                    required = _requirement(dependant)
                    operation = operations.get(path, {}).get(method)
                    if required is None or method.upper() in SAFE_METHODS or not operation:
                        continue
                    _document(operation, required)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

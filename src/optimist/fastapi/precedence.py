"""RFC 9110 §13.2.1's precedence on FastAPI: 401/403, then 404, then a refused body,
then the preconditions, with no lookup of the resource on the happy path.

FastAPI decodes the JSON body before it solves the dependencies, and solves them
before it validates the body; the endpoint's one conditional write is what finds out
whether the resource exists. So:

* identity (401/403) belongs in dependencies, which run before the body is validated;
* :func:`lookup` makes a dependency that resolves the arguments of the route's lookup
  (path parameters, other dependencies) and remembers the call on the request, without
  making it;
* :class:`PrecedenceRoute` answers a refusal that ranks below 404 (a refused body,
  FastAPI's RequestValidationError included, a missing precondition, a 412 without the
  current ETag) only after awaiting that lookup
  (:func:`optimist.starlette.missing_first`): a missing resource is a 404 first. A body
  refused before the dependencies ran (undecodable, or by :meth:`PrecedenceRoute.prepare`)
  waits for them to run on an empty body.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar, get_type_hints

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from optimist.fastapi._body import empty_body, undecodable
from optimist.starlette import Tagged, missing_first, remember_lookup, yields_to_lookup

__all__ = ["PrecedenceRoute", "lookup"]

T = TypeVar("T", bound=Tagged)

#: The request parameter :func:`lookup` adds to the dependency it makes, unless the
#: lookup has one of its own.
_REQUEST: Final = "optimist_lookup_request"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_request(annotation: Any) -> bool:
    """Whether FastAPI gives a parameter annotated ``annotation`` the request."""
    return isinstance(annotation, type) and issubclass(annotation, Request)


def lookup(
    find: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[Callable[[], Awaitable[T]]]]:
    """A dependency that remembers ``find`` for :class:`PrecedenceRoute`, without calling it.

    ``find`` is an async function whose parameters FastAPI resolves like any
    dependency's (path parameters, ``Depends``…); it returns the current resource
    (anything with an ``etag``, e.g. an ``optimist.sqlalchemy.Record``) or raises
    :class:`~optimist.errors.ResourceNotFound`. The dependency binds ``find`` to its
    resolved arguments, remembers the call on the request and gives it to the route:
    awaiting it is the lookup. Annotations are resolved in ``find``'s own module, so
    ``from __future__ import annotations`` there is fine.
    """
    hints = get_type_hints(find, include_extras=True)
    parameters = [
        parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
        for parameter in inspect.signature(find).parameters.values()
    ]
    # FastAPI gives the request to one parameter only: find's own, if it has one.
    own = next((p.name for p in parameters if _is_request(p.annotation)), None)
    if own is None:
        parameters.append(
            inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )

    async def remember(**arguments: Any) -> Callable[[], Awaitable[T]]:
        connection: Request = arguments[own] if own is not None else arguments.pop(_REQUEST)
        call = functools.partial(find, **arguments)
        remember_lookup(connection, call)
        return call

    # FastAPI reads the parameters from the signature: find's, types already resolved.
    remember.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    remember.__name__ = remember.__qualname__ = f"lookup_{getattr(find, '__name__', 'find')}"
    return remember


class PrecedenceRoute(APIRoute):
    """An APIRoute whose refusals that rank below 404 wait for the route's :func:`lookup`.

    A RequestValidationError, an HTTPException 400/413/415/422, a PreconditionRequired
    (400/428) or a PreconditionFailed without a current ETag first awaits the lookup
    the route's dependencies remembered: a missing resource raises its 404 instead, and
    a 412 gets the current ETag (:func:`optimist.starlette.missing_first`). A route
    without a lookup answers them as they are.

    FastAPI decodes the JSON body before it solves dependencies, so malformed JSON would
    answer 422 before an identity dependency's 401 or a lookup's 404. When a required
    body cannot be decoded, or :meth:`prepare` refuses it, this route first solves the
    dependencies on an empty body (which cannot reach the endpoint: the body is
    required), letting them raise, and then raises the refusal. Use it with
    ``APIRouter(route_class=PrecedenceRoute)``.
    """

    async def prepare(self, request: Request) -> Request:
        """The request FastAPI's handler is given; by default ``request`` itself.

        A subclass may read and check the body here (its size, its media type) and
        return a request that replays it. A refusal it raises (413, 415…) is answered
        after the route's dependencies ran on an empty body, like a body FastAPI cannot
        decode.
        """
        return request

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        field = self.body_field
        replayable = field is not None and field.field_info.is_required()

        async def dependencies_first(request: Request) -> None:
            # On an empty body, a required body is missing: a RequestValidationError here
            # says the dependencies passed.
            if replayable:
                with contextlib.suppress(RequestValidationError):
                    await handler(Request(request.scope, empty_body(request.receive)))

        async def ordered(request: Request) -> Response:
            async with missing_first(request, refusals=(RequestValidationError,)):
                try:
                    prepared = await self.prepare(request)
                except Exception as error:
                    if yields_to_lookup(error) or isinstance(error, RequestValidationError):
                        await dependencies_first(request)
                    raise
                try:
                    return await handler(prepared)
                except Exception as error:
                    if undecodable(error):
                        await dependencies_first(request)
                    raise

        return ordered

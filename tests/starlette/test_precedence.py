"""optimist.starlette.precedence: a refusal that ranks below 404 looks the resource up
first (RFC 9110 §13.2.1), and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from optimist.conditions import ResourceState
from optimist.errors import (
    PreconditionFailed,
    PreconditionRequired,
    ResourceExists,
    ResourceNotFound,
    VersionConflict,
)
from optimist.etag import EntityTag
from optimist.starlette import (
    install_problem_handlers,
    missing_first,
    remember_lookup,
    remembered_lookup,
    yields_to_lookup,
)
from optimist.vclock import VectorClock
from tests.starlette.support import assert_problem, client_for

pytestmark = pytest.mark.anyio

TAG = EntityTag("v1")
STORED = VectorClock({"node-a": 1})

#: What the endpoint raises, by name, and the status it is answered with.
REFUSALS: dict[str, tuple[Exception, int]] = {
    "undecodable-400": (HTTPException(400, "There was an error parsing the body"), 400),
    "too-large-413": (HTTPException(413, "too large"), 413),
    "not-json-415": (HTTPException(415, "not JSON"), 415),
    "invalid-422": (HTTPException(422, "invalid"), 422),
    "required-428": (PreconditionRequired("PUT", "If-Match"), 428),
    "required-400": (PreconditionRequired("PUT", "If-Match", status=400), 400),
    "failed-without-etag": (PreconditionFailed(None), 412),
}


class Items:
    """Stored entity-tags by key, and how often they were looked up."""

    def __init__(self) -> None:
        self.tags = {"1": TAG}
        self.lookups = 0

    async def find(self, key: str) -> ResourceState:
        """The current state of ``key``, or its 404."""
        self.lookups += 1
        if key not in self.tags:
            raise ResourceNotFound("item", key)
        return ResourceState(exists=True, etag=self.tags[key])


async def put_item(request: Request) -> Response:
    """Raises the refusal the query names, inside missing_first; 204 otherwise."""
    items: Items = request.app.state.items
    key = request.path_params["key"]
    async with missing_first(request, lambda: items.find(key)):
        refusal = request.query_params.get("refuse")
        if refusal is not None:
            raise REFUSALS[refusal][0]
        return Response(status_code=204)


async def put_remembered(request: Request) -> Response:
    """Like put_item, with the lookup remembered on the request beforehand."""
    items: Items = request.app.state.items
    key = request.path_params["key"]
    remember_lookup(request, lambda: items.find(key))
    async with missing_first(request):
        raise REFUSALS[request.query_params["refuse"]][0]


@pytest.fixture
def items() -> Items:
    """One item, "1"."""
    return Items()


@pytest.fixture
async def client(items: Items) -> AsyncIterator[httpx.AsyncClient]:
    """A plain Starlette app whose writes keep the precedence with missing_first."""
    app = Starlette(
        routes=[
            Route("/items/{key}", put_item, methods=["PUT"]),
            Route("/remembered/{key}", put_remembered, methods=["PUT"]),
        ]
    )
    app.state.items = items
    install_problem_handlers(app)
    async with client_for(app) as client:
        yield client


@pytest.mark.parametrize("refusal", list(REFUSALS), ids=list(REFUSALS))
async def test_refusal_on_a_missing_resource_is_404(
    client: httpx.AsyncClient, items: Items, refusal: str
) -> None:
    """Each refusal that ranks below 404 is a 404 when the resource does not exist."""
    response = await client.put("/items/2", params={"refuse": refusal})
    assert_problem(response, 404)
    assert items.lookups == 1


@pytest.mark.parametrize("refusal", list(REFUSALS), ids=list(REFUSALS))
async def test_refusal_on_an_existing_resource_keeps_its_status(
    client: httpx.AsyncClient, items: Items, refusal: str
) -> None:
    """Each refusal keeps its own status when the resource exists."""
    response = await client.put("/items/1", params={"refuse": refusal})
    assert_problem(response, REFUSALS[refusal][1])
    assert items.lookups == 1


async def test_success_looks_nothing_up(client: httpx.AsyncClient, items: Items) -> None:
    """A request that is not refused never awaits the lookup."""
    assert (await client.put("/items/2")).status_code == 204
    assert items.lookups == 0


async def test_412_without_etag_gets_the_current_one(client: httpx.AsyncClient) -> None:
    """A 412 that named no current ETag names the one the lookup found (SPEC §2)."""
    response = await client.put("/items/1", params={"refuse": "failed-without-etag"})
    problem = assert_problem(response, 412)
    assert response.headers["etag"] == problem["current_etag"] == '"v1"'


async def test_remembered_lookup_is_awaited(client: httpx.AsyncClient, items: Items) -> None:
    """Without a lookup of its own, missing_first awaits the one remembered on the request."""
    response = await client.put("/remembered/2", params={"refuse": "invalid-422"})
    assert_problem(response, 404)
    assert items.lookups == 1


def test_remembered_lookup_is_none_until_one_is_remembered() -> None:
    """A request has no remembered lookup until remember_lookup is called."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    assert remembered_lookup(request) is None


async def test_without_a_lookup_the_refusal_stands() -> None:
    """With no lookup given or remembered, the refusal propagates as it was."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    with pytest.raises(HTTPException) as caught:
        async with missing_first(request):
            raise HTTPException(422, "invalid")
    assert caught.value.status_code == 422


async def test_other_refusals_can_be_named(items: Items) -> None:
    """An exception type named in ``refusals`` waits for the lookup too."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    with pytest.raises(ResourceNotFound):
        async with missing_first(request, lambda: items.find("2"), refusals=(LookupError,)):
            raise KeyError("body.name")


async def test_an_error_that_outranks_404_is_not_delayed(items: Items) -> None:
    """A 401 propagates without a lookup, even on a missing resource."""
    request = Request({"type": "http", "method": "PUT", "headers": []})
    with pytest.raises(HTTPException) as caught:
        async with missing_first(request, lambda: items.find("2")):
            raise HTTPException(401, "who are you?")
    assert (caught.value.status_code, items.lookups) == (401, 0)


@pytest.mark.parametrize(
    ("error", "yields"),
    [
        (HTTPException(400), True),
        (HTTPException(413), True),
        (HTTPException(415), True),
        (HTTPException(422), True),
        (PreconditionRequired("DELETE", "If-Match"), True),
        (PreconditionFailed(None), True),
        (HTTPException(401), False),
        (HTTPException(403), False),
        (HTTPException(409), False),
        (PreconditionFailed(TAG), False),
        (VersionConflict(STORED.to_etag(), VectorClock().compare(STORED), STORED), False),
        (ResourceExists("item", "1"), False),
        (ValueError("bug"), False),
    ],
    ids=[
        "undecodable",
        "too-large",
        "not-json",
        "invalid",
        "precondition-required",
        "412-without-etag",
        "unauthorized",
        "forbidden",
        "conflict",
        "412-with-etag",
        "version-conflict",
        "resource-exists",
        "other",
    ],
)
def test_yields_to_lookup(error: Exception, yields: bool) -> None:
    """Refused bodies, missing preconditions and 412s without an ETag rank below 404."""
    assert yields_to_lookup(error) is yields

"""What the client makes of a response, through both clients: each failure is the error
of optimist.errors that stands for it.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from optimist.errors import (
    PreconditionFailed,
    PreconditionRequired,
    ResourceNotFound,
    ResponseError,
)
from optimist.etag import EntityTag
from optimist.httpx import JsonApi
from tests.support.fake_api import Enveloped, Rig, problem, setting


@pytest.mark.anyio
async def test_missing_resource_raises_resource_not_found(rig: Rig) -> None:
    """A 404 is ResourceNotFound."""
    with pytest.raises(ResourceNotFound):
        await rig.client().get("/items/nope")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("respond", "error"),
    [
        (lambda: problem(404, "gone"), ResourceNotFound),
        (lambda: problem(412, "no"), PreconditionFailed),
        (lambda: problem(428, "say which version"), PreconditionRequired),
        (lambda: problem(500, "boom"), ResponseError),
        (lambda: httpx.Response(200, text="<html>"), ResponseError),
        (lambda: httpx.Response(200, json=[1, 2]), ResponseError),
    ],
    ids=["404", "412", "428", "500", "not-json", "no-document"],
)
async def test_read_failures_are_optimist_errors(
    rig: Rig, respond: Callable[[], httpx.Response], error: type[Exception]
) -> None:
    """Each way a read can fail raises the error of optimist.errors that stands for it."""
    rig.server.queued.append(respond())
    with pytest.raises(error):
        await rig.client(api=Enveloped()).get("/items/a")


@pytest.mark.anyio
async def test_unexpected_status_raises_response_error_with_the_problem(rig: Rig) -> None:
    """A 422 is a ResponseError carrying its status and problem details."""
    rig.server.store("a", {"size": 1})
    with pytest.raises(ResponseError) as raised:
        await rig.client(api=JsonApi()).update("/items/a", setting(version=7))
    assert raised.value.status == 422
    assert raised.value.problem is not None
    assert raised.value.problem["detail"] == "id and version belong to the server"


@pytest.mark.anyio
async def test_412_reports_the_current_etag_from_the_body(rig: Rig) -> None:
    """Without an ETag header, a 412's ``current_etag`` member names the current version."""
    rig.server.store("a", {"size": 1})
    rig.server.queued.append(problem(412, "changed", current_etag='"v42"'))
    with pytest.raises(PreconditionFailed) as raised:
        await rig.client().delete("/items/a", etag='"v1"')
    assert raised.value.current_etag == EntityTag("v42")

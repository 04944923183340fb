"""Property-based requests from the service's own OpenAPI document: never a 5xx.

Schemathesis generates requests for every operation (valid and invalid bodies,
parameters and headers) against ``optimist serve`` in a real process, with the admin
identity headers and a CSRF token, so the generated bodies reach the admin writes.
Bounded: a few dozen examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from optimist.service.app import create_app
from optimist.service.settings import Settings
from tests.support.admin import identity
from tests.support.servers import Server, free_port, optimist_command, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``optimist serve`` on a fresh SQLite database, demo data loaded."""
    directory = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    with serving(
        optimist_command("serve", "--port", str(port)),
        port=port,
        log=directory / "serve.log",
        ready="/healthz",
        env={"OPTIMIST_DATABASE_URL": "", "OPTIMIST_SECRET_KEY": "fuzz", "OPTIMIST_DEMO_DATA": "1"},
        cwd=directory,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def headers(server: Server) -> dict[str, str]:
    """The gateway's admin identity and a CSRF token, sent with every generated request."""
    token = httpx.get(f"{server.url}/admin/csrf-token", headers=identity()).json()
    return {**identity(), "X-CSRF-Token": token["csrf_token"]}


# The document is the application's own; building it needs no database.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite://", node_id="fuzz")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case[Any], server: Server, headers: dict[str, str]
) -> None:
    """Whatever the document allows or forbids, the service answers below 500."""
    case.call_and_validate(
        base_url=server.url, headers={**dict(case.headers or {}), **headers},
        checks=[not_a_server_error],
    )  # fmt: skip

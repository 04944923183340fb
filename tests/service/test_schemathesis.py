"""Property-based requests from the service's own OpenAPI document: never a 5xx.

Schemathesis generates requests for every operation (valid and invalid bodies,
parameters and headers) against ``optimist serve`` in a real process, with the admin
identity headers and a CSRF token, so the generated bodies reach the admin writes.
Bounded: a few dozen examples per operation.

The stateful run follows the document's links: from a create or a read to the
conditional writes of the same resource, with its id and ``If-Match`` set to the ETag
just received, so that writes reach the database under a precondition that holds (and,
a step later, one that no longer does). Bounded: a few dozen scenarios of a few steps.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar, Final

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput

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
DOCUMENT = create_app(Settings(database_url="sqlite+aiosqlite://", node_id="fuzz")).openapi()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))


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


class Served(APIStateMachine):
    """Steps sent to the server under test as the admin of a tenant of their own, each
    response checked for a 5xx, and what the run did recorded: the 5xx answers, and the
    steps taken along the document's own links (not those Schemathesis infers) with
    whether If-Match was the ETag just received.

    A fresh tenant per scenario keeps the admin API's answers to a scenario independent
    of the scenarios before it (an email taken earlier would be a 409 instead of a 201),
    as Hypothesis expects of a test it replays.
    """

    url: ClassVar[str]
    server_errors: ClassVar[list[str]]
    followed: ClassVar[list[bool]]

    def setup(self) -> None:
        tenant = identity(tenant=uuid.uuid4().hex)
        token = httpx.get(f"{self.url}/admin/csrf-token", headers=tenant).json()["csrf_token"]
        self.headers = {**tenant, "X-CSRF-Token": token}

    def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
        return {"base_url": self.url, "headers": self.headers}

    def validate_response(
        self,
        response: Any,
        case: schemathesis.Case[Any],
        additional_checks: Any = None,
        **kwargs: Any,
    ) -> None:
        if response.status_code >= 500:
            self.server_errors.append(f"{case.method} {case.formatted_path} {response.status_code}")
        case.validate_response(response, checks=[not_a_server_error], transport_kwargs=kwargs)

    def step(self, input: StepInput) -> StepOutput:
        output = super().step(input)
        if input.transition is not None and not input.transition.is_inferred:
            self.followed.append(any(name == "If-Match" for _, name in input.applied_parameters))
        return output


#: The resources, each run on its own. Schemathesis starts a scenario from operations
#: it deems likely to succeed, and takes the admin API's required X-Tenant-Id for a
#: reference to a resource no operation creates: with the admin API in one run, it
#: would start anywhere in it (mostly a 404 on a made-up id), and in a run of all three
#: only from the other APIs' creates.
RESOURCES = {
    "users": "^/admin/users",
    "roles": "^/admin/roles",
    "feature-flags": "^/admin/feature-flags",
    "projects": "^/projects",
    "sessions": "^/v1/tests/sessions",
}


#: Runs of a resource's scenarios at most, until one follows a link with its ETag.
RUNS: Final = 5


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_following_the_links_gets_no_server_error(server: Server, resource: str) -> None:
    """Creates and reads chained to If-Match writes along the links: never a 5xx."""
    server_errors: list[str] = []
    followed: list[bool] = []
    chosen = (
        schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))
        .include(path_regex=RESOURCES[resource])
        # Lists answer what earlier scenarios left, which Hypothesis cannot replay.
        .exclude(method="GET", path_regex=r"^[^{]*$")
    )
    # Valid requests only: a removed identity header (401) would end a chain at its
    # first step; the run above sends invalid ones.
    chosen.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    attributes = {"url": server.url, "server_errors": server_errors, "followed": followed}
    workflow: type[APIStateMachine] = type(
        "Workflow", (Served, chosen.as_state_machine()), attributes
    )
    # A run is a draw: it may follow no link with the ETag just received. Runs are
    # repeated, a bounded number of times, until one has (every 5xx of every run counts).
    for _ in range(RUNS):
        try:
            # A server keeps state between scenarios, so a replayed prefix can take
            # another turn; Schemathesis' own runner ends such a run the same way.
            workflow.run(
                settings=settings(
                    max_examples=30,
                    stateful_step_count=8,
                    deadline=None,
                    phases=[Phase.generate],
                    # A fresh draw each run, also where Hypothesis would derandomize (CI).
                    derandomize=False,
                    suppress_health_check=list(HealthCheck),
                )
            )
        except FlakyStrategyDefinition:
            print("FLAKY", resource, len(followed))
        if any(followed):
            break
    print(resource, len(followed), sum(followed))
    assert not server_errors
    # The run proves something only if it went along the document's links.
    assert any(followed), followed

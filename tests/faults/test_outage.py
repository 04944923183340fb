"""A 10 s database outage: the PostgreSQL cluster stopped, then started again.

``optimist serve --workers 2`` runs on a private cluster (:mod:`tests.support.clusters`),
never the shared server. :func:`outage` stops it (``pg_ctl stop -m fast``, which ends
every session) while sixteen read-modify-write clients run, keeps it down for
:data:`OUTAGE` seconds while it sends requests that need the database, ``/healthz`` and
``/readyz``, each on a connection of its own so that either worker may answer, and
starts it again; then it sends the same requests once more. The service is never
restarted. Then it stops the cluster once more and kills a worker, to see its
replacement start while the database is down. The run happens once per session; each
test checks one behaviour against its record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.support.clusters import Cluster, private_cluster
from tests.support.deployments import PATIENCE, Deployment, deployment
from tests.support.load import (
    Answer,
    Load,
    counting,
    new_project,
    since,
    tally,
    unacceptable,
)
from tests.support.probes import Probe, database_probes, send
from tests.support.servers import wait_until
from tests.support.shared import once

pytestmark = pytest.mark.slow

#: Seconds the cluster stays down: the fault's length, not a bound on anything.
OUTAGE = 10.0
#: Acknowledged writes awaited before the outage and after it.
WRITES = 20
#: How many times the requests that need the database are sent after the outage.
ROUNDS = 3
#: Probes of the process itself.
HEALTHZ, READYZ = Probe("GET", "/healthz"), Probe("GET", "/readyz")


@dataclass(frozen=True)
class Outage:
    """What the clients and the probes saw during the outage and after it."""

    load: Load
    #: Answers to requests that need the database, /healthz and /readyz, while it was down.
    during: list[Answer]
    #: The same after the cluster accepted connections again.
    after: list[Answer]
    #: When the cluster accepted connections again (``time.monotonic()``).
    back: float
    #: A worker killed during a second outage: None if its replacement served once the
    #: database was back, else what happened instead.
    replaced: str | None


def outage_under_load(cluster: Cluster, service: Deployment) -> Outage:
    """The outage under load, with the requests during and after it, then the second
    outage with a worker killed."""
    path = new_project(service.url)
    probes = [*database_probes(service.url), HEALTHZ, READYZ]
    during: list[Answer] = []
    with counting(service.url, path) as load:
        load.progress(WRITES)
        cluster.stop("fast")
        try:
            down = time.monotonic()
            while time.monotonic() - down < OUTAGE:
                during += send(service.url, probes)
        finally:
            cluster.start()
        back = time.monotonic()
        after = [answer for _ in range(ROUNDS) for answer in send(service.url, probes)]
        load.progress(WRITES)
    served = [answer for answer in _but(after, HEALTHZ, READYZ) if answer.ok]
    first = min((answer.started + answer.seconds for answer in served), default=back)
    print(f"outage: during {dict(tally(during))}, slowest {max(a.seconds for a in during):.3f} s; "
          f"after {dict(tally(after))}, first 2xx {first - back:.3f} s after the restart; "
          f"clients {dict(tally(load.answers()))}")  # fmt: skip
    return Outage(load, during, after, back, replace_a_worker_during_an_outage(cluster, service))


def replace_a_worker_during_an_outage(cluster: Cluster, service: Deployment) -> str | None:
    """Kill a worker while the cluster is down; None once its replacement serves after the
    cluster is back, else why it did not."""
    before = service.worker_ids()
    cluster.stop("fast")
    try:
        service.kill_worker(min(before))
        try:
            wait_until(
                lambda: not service.running() or "Start waits" in service.current_output(),
                timeout=PATIENCE,
                what="the new worker waiting for the database",
            )
        except AssertionError as error:
            return str(error)
    finally:
        cluster.start()
    if not service.running():
        return f"the deployment stopped:\n{service.current_output()}"
    try:
        wait_until(
            lambda: bool(service.worker_ids() - before), timeout=PATIENCE, what="a new worker"
        )
    except AssertionError as error:
        return str(error)
    return None


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Outage:
    """The run, once per session, on a private cluster of its own."""

    def run() -> Outage:
        with (
            private_cluster() as cluster,
            deployment(tmp_path_factory.mktemp("outage"), database_url=cluster.url()) as service,
        ):
            return outage_under_load(cluster, service)

    return once(tmp_path_factory, "outage", run)


def _of(answers: list[Answer], *probes: Probe) -> list[Answer]:
    """The answers to ``probes`` (by path)."""
    paths = {probe.path for probe in probes}
    return [answer for answer in answers if answer.path in paths]


def _but(answers: list[Answer], *probes: Probe) -> list[Answer]:
    """The answers to anything but ``probes`` (by path)."""
    paths = {probe.path for probe in probes}
    return [answer for answer in answers if answer.path not in paths]


def test_requests_needing_the_database_get_503_with_retry_after_throughout(
    outage: Outage,
) -> None:
    """While the cluster is down, each request that needs it is a 503 problem with
    Retry-After: never a 500, a dropped connection or a request left hanging."""
    answers = _but(outage.during, HEALTHZ, READYZ)
    assert answers
    assert [answer for answer in answers if not answer.unavailable] == []


def test_clients_see_only_2xx_412_or_503_with_retry_after(outage: Outage) -> None:
    """The read-modify-write clients, through the outage and after it, get a 2xx, a 412
    or a 503 problem with Retry-After, nothing else."""
    assert unacceptable(outage.load.answers()) == []


def test_healthz_answers_200_throughout(outage: Outage) -> None:
    """Liveness asks no database: /healthz is 200 while the cluster is down."""
    answers = _of(outage.during, HEALTHZ)
    assert answers
    assert [answer.status for answer in answers] == [200] * len(answers)


def test_readyz_answers_503_with_retry_after_throughout(outage: Outage) -> None:
    """Readiness follows the database: /readyz is a 503 problem with Retry-After while
    the cluster is down."""
    answers = _of(outage.during, READYZ)
    assert answers
    assert [answer for answer in answers if not answer.unavailable] == []


def test_every_request_after_the_outage_succeeds(outage: Outage) -> None:
    """Once the cluster accepts connections again, without a restart of the service, every
    probe (/readyz included) is a 2xx, and every client request sent since is a 2xx or a
    412 for a client that lost a race."""
    assert [answer for answer in outage.after if not answer.ok] == []
    later = since(outage.load.answers(), outage.back)
    assert later
    assert [answer for answer in later if not (answer.ok or answer.status == 412)] == []


def test_a_worker_that_starts_during_an_outage_serves_once_it_ends(outage: Outage) -> None:
    """A worker killed while the database is down is started again by the master, waits
    for the database instead of failing its start (which would stop the deployment), and
    answers once the database is back."""
    assert outage.replaced is None, outage.replaced

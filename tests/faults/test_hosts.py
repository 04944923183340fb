"""Three app hosts against one PostgreSQL through PgBouncer, and one host cut off mid-run.

Each host is a network namespace of its own (:mod:`tests.support.hosts`) running
``optimist serve``, which reaches the database through a PgBouncer in transaction
pooling mode listening on this machine's end of every host's link. Sixteen
read-modify-write clients (:mod:`tests.support.load`) count on one project, spread over
the three hosts, with If-Match. Once every host has acknowledged writes, the third
host's link is taken down (no reset: its packets just stop), and the run goes on until
the other two have acknowledged more; then the link comes back and the load stops.

The bouncer ends a transaction whose client stays silent inside it
(``idle_transaction_timeout``): a host cut off between its UPDATE and its COMMIT would
otherwise hold the project's row, and every other host's write to it would wait for the
link to come back. The run happens once per session (:func:`cut_off`); each test checks
one behaviour against its record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy.engine import make_url

from tests.support.deployments import PATIENCE
from tests.support.hosts import Host, network_hosts, serve_on
from tests.support.load import (
    Answer,
    Load,
    counting,
    final_counts,
    new_project,
    server_errors,
    since,
)
from tests.support.pgbouncer import private_bouncer
from tests.support.servers import wait_until
from tests.support.shared import once

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: App hosts, and the one whose link is cut.
HOSTS: Final = 3
CUT: Final = 2
#: Acknowledged writes awaited before the cut, and after it.
WRITES: Final = 30
#: Seconds a client waits for an answer: a cut host never sends one.
CLIENT_TIMEOUT: Final = 10.0
#: What the bouncer allows a client inside a transaction to stay silent, in seconds.
IDLE_IN_TRANSACTION: Final = 5


@dataclass(frozen=True)
class CutOff:
    """What the run saw."""

    load: Load
    final: dict[str, int]
    #: The cut host's base URL, and when its link went down (``time.monotonic()``).
    cut_url: str
    cut_at: float
    #: Whether the other hosts acknowledged :data:`WRITES` more writes after the cut.
    went_on: bool


def every_host_acknowledged(load: Load, urls: list[str]) -> bool:
    """Whether the clients of each host have had a write acknowledged."""
    load.check()
    return {client.base_url for client in load.clients if client.acknowledged} == set(urls)


def unanswered(load: Load, url: str, moment: float) -> list[Answer]:
    """The requests to the host at ``url`` sent since ``moment`` that got no answer."""
    load.check()
    return [
        answer
        for client in load.clients
        if client.base_url == url
        for answer in since(list(client.answers), moment)
        if answer.status is None
    ]


def run(directory: Path, server_url: str, database_url: str) -> CutOff:
    """The deployment, the load, the cut; the record."""
    settings = {"idle_transaction_timeout": str(IDLE_IN_TRANSACTION), "default_pool_size": "8"}
    with network_hosts(HOSTS) as hosts:
        gateways = [host.gateway for host in hosts]
        with private_bouncer(server_url, listen=gateways, settings=settings) as bouncer:

            def through_own_link(host: Host) -> str:
                """The bouncer, as the host reaches it: on this machine's end of its link."""
                url = make_url(bouncer.url(database_url)).set(host=host.gateway)
                return url.render_as_string(hide_password=False)

            with serve_on(hosts, through_own_link, directory) as apps:
                base = [app.url for app in apps]
                path = new_project(base[0], "hosts")
                went_on = False
                with counting(base, path, timeout=CLIENT_TIMEOUT) as load:
                    load.progress(WRITES)
                    wait_until(
                        lambda: every_host_acknowledged(load, base),
                        timeout=PATIENCE,
                        what="a write acknowledged by every host",
                    )
                    cut_at = time.monotonic()
                    hosts[CUT].cut()
                    try:
                        load.progress(WRITES)
                        went_on = True
                        # Until a client of the cut host has given up on an answer.
                        wait_until(
                            lambda: bool(unanswered(load, base[CUT], cut_at)),
                            timeout=PATIENCE,
                            what="a request to the cut host lost",
                        )
                    finally:
                        hosts[CUT].mend()
                final = final_counts(base[0], path)
    print(f"three hosts, one cut: {load.summary(final)}")
    return CutOff(load, final, base[CUT], cut_at, went_on)


@pytest.fixture(scope="module")
def cut_off(
    postgres_server_url: str, fault_database: str, tmp_path_factory: pytest.TempPathFactory
) -> CutOff:
    """The run, once per session."""
    return once(
        tmp_path_factory,
        "hosts",
        lambda: run(tmp_path_factory.mktemp("hosts"), postgres_server_url, fault_database),
    )


def test_every_host_served_writes(cut_off: CutOff) -> None:
    """The clients of each of the three hosts had writes acknowledged."""
    served = {client.base_url for client in cut_off.load.clients if client.acknowledged}
    assert len(served) == HOSTS


def test_the_other_hosts_went_on(cut_off: CutOff) -> None:
    """With one host cut off, the two others kept acknowledging writes."""
    assert cut_off.went_on
    after = [
        answer
        for client in cut_off.load.clients
        if client.base_url != cut_off.cut_url
        for answer in since(list(client.answers), cut_off.cut_at)
        if answer.method == "PUT" and answer.ok
    ]
    assert len(after) >= WRITES


def test_the_cut_host_was_cut_off(cut_off: CutOff) -> None:
    """Requests to the cut host went unanswered while its link was down."""
    assert unanswered(cut_off.load, cut_off.cut_url, cut_off.cut_at)


def test_no_acknowledged_write_is_lost(cut_off: CutOff) -> None:
    """Each member counts every write acknowledged to its client, and at most those
    whose answer its client never got besides."""
    assert cut_off.load.miscounted(cut_off.final) == [], cut_off.load.summary(cut_off.final)


def test_no_host_answered_a_server_error(cut_off: CutOff) -> None:
    """No answer was a 5xx other than a 503 with Retry-After."""
    answers: list[Answer] = cut_off.load.answers()
    assert server_errors(answers) == []

"""``kill -9`` of the master of ``optimist serve --workers 2`` under load, three times.

Sixteen read-modify-write clients (:mod:`tests.support.load`) count on one project,
each on its own member of its metadata, through If-Match. The master gets SIGKILL while
they run; its workers must follow it (``PR_SET_PDEATHSIG``), so that a new ``optimist
serve`` on the same port and database starts; three times. The clients resend what is
safe to resend. The run happens once per backend and session (:func:`killed`); each test
checks one behaviour against its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deployments import deployment
from tests.support.load import Load, counting, final_counts, new_project, server_errors, tally
from tests.support.shared import once

pytestmark = pytest.mark.slow

#: How many times the master is killed.
KILLS = 3
#: Acknowledged writes awaited before each kill and after the last restart.
WRITES = 10


@dataclass(frozen=True)
class Killed:
    """What a run saw: the clients, the final counts, and what each kill left behind."""

    load: Load
    final: dict[str, int]
    #: Per kill, the processes of the killed master's group still alive after the wait.
    survivors: list[list[int]]
    #: Per restart on the same port, None if it started, else why not.
    restarts: list[str | None]


def kill_three_times(directory: Path, database_url: str | None) -> Killed:
    """Load, then :data:`KILLS` times kill -9 of the master and a restart on its port."""
    survivors: list[list[int]] = []
    restarts: list[str | None] = []
    with deployment(directory, database_url=database_url) as running:
        path = new_project(running.url)
        with counting(running.url, path) as load:
            for _ in range(KILLS):
                load.progress(WRITES)
                survivors.append(running.kill_master())
                try:
                    running.start()
                except AssertionError as error:
                    restarts.append(str(error))
                    break
                restarts.append(None)
            else:
                load.progress(WRITES)
        final = final_counts(running.url, path) if restarts[-1] is None else {}
    print(f"kill -9 ×{KILLS} ({directory.name}): {load.summary(final)}")
    return Killed(load, final, survivors, restarts)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def killed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Killed:
    """The run on one backend, once per session."""
    url = request.getfixturevalue("fault_database") if request.param == "postgres" else None
    name = f"killed-{request.param}"
    return once(
        tmp_path_factory, name, lambda: kill_three_times(tmp_path_factory.mktemp(name), url)
    )


def test_every_acknowledged_write_is_in_the_final_state(killed: Killed) -> None:
    """Each member counts every write acknowledged to its client (and at most the ones
    whose answer its client never got besides): no update is lost."""
    assert killed.restarts == [None] * KILLS, killed.restarts
    assert killed.load.miscounted(killed.final) == [], killed.load.summary(killed.final)


def test_no_answer_is_a_server_error(killed: Killed) -> None:
    """Through the kills and restarts, no request is answered 500 (or any 5xx but a 503
    with Retry-After); a request cut off by the kill has no answer at all."""
    answers = killed.load.answers()
    assert server_errors(answers) == [], dict(tally(answers))


def test_the_workers_die_with_their_master(killed: Killed) -> None:
    """After kill -9 of the master, none of its workers is left running."""
    assert killed.survivors == [[]] * len(killed.survivors)


def test_a_new_serve_starts_on_the_same_port_after_each_kill(killed: Killed) -> None:
    """No orphan holds the port: each restart binds it and serves."""
    assert killed.restarts == [None] * KILLS

"""The service behind PgBouncer in transaction pooling mode: ``?pooler=transaction``.

What the URL parameter may say; migrations through the bouncer (several servers that
start at once take turns on a transaction-level advisory lock, which ends with the
transaction); ``optimist migrate`` without the parameter, a mistake that names it; and
the race of tests/service/test_clients.py, 16 clients × 12 increments against
``optimist serve --workers 2``, through the bouncer: no update lost, no 5xx. The
service's API tests run through the bouncer too (tests/service/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from optimist.service.runtime import prepare
from optimist.service.settings import ENVIRONMENT, POOLERS, InvalidSetting, Settings
from optimist.sqlalchemy import engine
from tests.service import test_clients
from tests.support.databases import scratch_database
from tests.support.pgbouncer import Bouncer
from tests.support.servers import optimist_command
from tests.support.service import settings_for

pytestmark = pytest.mark.anyio

#: The fix the command line prints for statements mixed up by an unnamed pooler.
NAME_THE_POOLER = "add ?pooler=transaction to --database-url"
#: A status line of uvicorn's access log that reports a server error.
SERVER_ERROR = re.compile(r'" 5\d\d ')


@pytest.fixture
def fresh_database(postgres_server_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of the test's own (its own pool in the bouncer)."""
    yield from scratch_database(postgres_server_url, "optimist_bounced")


def test_the_service_knows_the_library_s_pooling_modes() -> None:
    """The modes the settings accept are the ones the library's engine knows."""
    assert engine.POOLERS == POOLERS


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://root@db/app?pooler=statement", "pooler=statement is not a pooling mode"),
        ("postgresql://root@db/app?pooler=transaction&pooler=session", "more than once"),
        ("sqlite:///optimist.db?pooler=transaction", "applies to PostgreSQL only"),
    ],
    ids=["unknown-mode", "named-twice", "sqlite"],
)
def test_a_pooler_the_service_cannot_use_is_refused(url: str, problem: str) -> None:
    """A mode the library does not know, or one for SQLite, is an invalid database_url."""
    with pytest.raises(InvalidSetting) as refused:
        Settings(database_url=url, node_id="n")
    assert refused.value.name == "database_url"
    assert problem in refused.value.problem


def test_the_pooler_stays_in_the_url_the_workers_read() -> None:
    """``?pooler=transaction`` is kept in the URL every worker builds its engine from."""
    settings = Settings(
        database_url="postgresql://root@db:6432/app?pooler=transaction", node_id="n"
    )
    assert settings.to_environment()[ENVIRONMENT["database_url"]].endswith("?pooler=transaction")


@pytest.mark.postgres
async def test_servers_starting_at_once_migrate_once(
    pgbouncer: Bouncer, fresh_database: str
) -> None:
    """Four servers migrating one empty database through the bouncer: one finds it empty."""
    settings = settings_for(pgbouncer.url(fresh_database), demo_data=False)
    fresh = await asyncio.gather(*(prepare(settings) for _ in range(4)))
    assert sorted(fresh) == [False, False, False, True]


@pytest.mark.postgres
async def test_no_advisory_lock_outlives_a_migration(
    pgbouncer: Bouncer, fresh_database: str
) -> None:
    """The migration lock is a transaction's: none is held once the schema is there."""
    await prepare(settings_for(pgbouncer.url(fresh_database)))
    direct = make_url(fresh_database).set(drivername="postgresql")
    connection = await asyncpg.connect(direct.render_as_string(hide_password=False), timeout=5)
    try:
        held = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await connection.close()
    assert held == 0


@pytest.mark.postgres
def test_without_the_pooler_migrate_says_to_name_it(
    pgbouncer: Bouncer, fresh_database: str, tmp_path: Path
) -> None:
    """Three ``optimist migrate`` through the bouncer without ``?pooler=``: the named
    statements of their processes meet, and the mistake names the parameter."""
    url = pgbouncer.url(fresh_database, pooler=None)
    environment = {**os.environ, **dict.fromkeys(ENVIRONMENT.values(), "")}
    runs = [
        subprocess.run(
            optimist_command("migrate", "--database-url", url),
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(3)
    ]
    assert all("Traceback" not in run.stderr for run in runs), [run.stderr for run in runs]
    assert any(run.returncode == 2 and NAME_THE_POOLER in run.stderr for run in runs), [
        run.stderr for run in runs
    ]


@pytest.mark.slow
@pytest.mark.postgres
async def test_sixteen_clients_through_pgbouncer_keep_every_change(
    pgbouncer: Bouncer, fresh_database: str, tmp_path: Path
) -> None:
    """test_clients' race, 16 clients × 12 increments, through the bouncer: all kept, no 5xx."""
    race = test_clients.test_sixteen_clients_increment_their_own_fields_and_keep_every_change
    await race(pgbouncer.url(fresh_database), tmp_path)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert SERVER_ERROR.search(log) is None, log[-4000:]

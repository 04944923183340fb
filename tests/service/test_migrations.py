"""Migrations carry existing data forward: a database of an earlier revision upgrades."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from optimist.service.migrate import alembic_config, upgrade
from optimist.sqlalchemy import create_engine

pytestmark = pytest.mark.anyio

USER_AT_0001 = text(
    "INSERT INTO admin_users (id, tenant_id, email, name, role, created_at, etag,"
    " updated_at, created_seq) VALUES (:id, '1', :email, '', 'viewer', :now, 'e', :now, :seq)"
)


async def at_revision(database_url: str, revision: str) -> None:
    """Migrate the empty database at ``database_url`` to ``revision`` only."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    finally:
        await engine.dispose()


async def add_users(database_url: str, *emails: str) -> None:
    """Users of tenant 1 with ``emails``, written as revision 0001 stored them."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            for seq, email in enumerate(emails, start=1):
                parameters = {"id": f"u{seq}", "email": email, "now": now, "seq": seq}
                await connection.execute(USER_AT_0001, parameters)
    finally:
        await engine.dispose()


async def test_email_keys_are_filled_in_for_existing_users(database_url: str) -> None:
    """0002 gives every existing user the lower-case key of its email."""
    await at_revision(database_url, "0001")
    await add_users(database_url, "Ada@Example.com", "bob@example.com")
    engine = create_engine(database_url)
    try:
        assert await upgrade(engine) is False
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT email, email_key FROM admin_users"))
            keys = {row.email: row.email_key for row in rows}
    finally:
        await engine.dispose()
    assert keys == {"Ada@Example.com": "ada@example.com", "bob@example.com": "bob@example.com"}


async def test_emails_differing_only_in_case_stop_the_upgrade(database_url: str) -> None:
    """Two existing addresses equal but for case cannot both keep a unique key: 0002 refuses."""
    await at_revision(database_url, "0001")
    await add_users(database_url, "ada@example.com", "ADA@example.com")
    engine = create_engine(database_url)
    try:
        with pytest.raises(IntegrityError):
            await upgrade(engine)
    finally:
        await engine.dispose()

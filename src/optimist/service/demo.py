"""The demo data of SPEC §4.1, so that the seeds' requests work as written on a fresh start.

Tenant ``1`` has user ``123`` (``user@example.com``, an editor), a role and two feature
flags; the projects API has ``proj_abc123`` ("Main Street Sign"), the project seed 003
fetches.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from optimist.service import schema
from optimist.sqlalchemy import create

__all__ = ["DEMO_TENANT", "DEMO_USER", "load"]

DEMO_TENANT = "1"
DEMO_USER = "123"


async def load(engine: AsyncEngine) -> None:
    """Insert the demo rows (once, into a freshly migrated database)."""
    now = datetime.now(UTC)
    tenant = {"tenant_id": DEMO_TENANT}
    async with engine.begin() as connection:
        await create(
            connection,
            schema.users,
            {
                "id": DEMO_USER,
                "email": "user@example.com",
                "email_key": "user@example.com",
                "name": "Demo User",
                "role": "editor",
                "created_at": now,
            },
            scope=tenant,
        )
        await create(
            connection,
            schema.roles,
            {"id": "1", "name": "editor", "permissions": ["feature-flags:write", "users:read"]},
            scope=tenant,
        )
        for key, enabled, rollout, description in (
            ("new-dashboard", True, 50, "The redesigned dashboard"),
            ("beta-exports", False, 0, "CSV and PDF exports"),
        ):
            await create(
                connection,
                schema.feature_flags,
                {
                    "key": key,
                    "enabled": enabled,
                    "description": description,
                    "rollout_percentage": rollout,
                },
                scope=tenant,
            )
        await create(
            connection,
            schema.projects,
            {
                "project_id": "proj_abc123",
                "name": "Main Street Sign",
                "customer": None,
                "description": None,
                "status": "draft",
                "metadata": {},
                "created_at": now,
            },
        )

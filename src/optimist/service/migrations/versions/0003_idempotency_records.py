"""Idempotency-Key records: optimist_idempotency, the answers a resent write gets again.

Each row is one key of one scope (the admin API's tenant and role, or the whole
service), the fingerprint of the request that claimed it, and its answer once the write
committed; ``expires_at`` is 24 hours after the claim (``optimist.sqlalchemy.idempotency``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optimist.sqlalchemy import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "optimist_idempotency",
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_optimist_idempotency")),
    )
    with op.batch_alter_table("optimist_idempotency", schema=None) as batch_op:
        batch_op.create_index("ix_optimist_idempotency_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("optimist_idempotency", schema=None) as batch_op:
        batch_op.drop_index("ix_optimist_idempotency_expires_at")
    op.drop_table("optimist_idempotency")

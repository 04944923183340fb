"""Emails are unique per tenant whatever their case: admin_users.email_key.

``USER@example.com`` beside ``user@example.com`` was accepted; now the tenant's
uniqueness compares a lower-case key, kept beside the address as it was given.
A database that already holds two addresses differing only in case stops here with a
unique violation, naming them: merge or rename one, then migrate again.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
    op.execute("UPDATE admin_users SET email_key = lower(email)")
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.alter_column("email_key", existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_admin_users_tenant_id_email"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_admin_users_tenant_id_email_key"), ["tenant_id", "email_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_admin_users_tenant_id_email_key"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_admin_users_tenant_id_email"), ["tenant_id", "email"]
        )
        batch_op.drop_column("email_key")

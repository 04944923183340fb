"""The initial schema: admin, projects and test-sessions tables, secrets, write sequences.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optimist.sqlalchemy import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_feature_flags",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("rollout_percentage", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "rollout_percentage BETWEEN 0 AND 100",
            name=op.f("ck_admin_feature_flags_rollout_percentage"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_admin_feature_flags")),
        sa.UniqueConstraint("created_seq", name=op.f("uq_admin_feature_flags_created_seq")),
    )
    with op.batch_alter_table("admin_feature_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_feature_flags_etag"), ["etag"], unique=False)
        batch_op.create_index(
            "ix_admin_feature_flags_scope_created_seq", ["tenant_id", "created_seq"], unique=False
        )

    op.create_table(
        "admin_roles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_roles")),
        sa.UniqueConstraint("created_seq", name=op.f("uq_admin_roles_created_seq")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_admin_roles_tenant_id_name")),
    )
    with op.batch_alter_table("admin_roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_roles_etag"), ["etag"], unique=False)
        batch_op.create_index(
            "ix_admin_roles_scope_created_seq", ["tenant_id", "created_seq"], unique=False
        )

    op.create_table(
        "admin_users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'editor', 'viewer')", name=op.f("ck_admin_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("created_seq", name=op.f("uq_admin_users_created_seq")),
        sa.UniqueConstraint("tenant_id", "email", name=op.f("uq_admin_users_tenant_id_email")),
    )
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_users_etag"), ["etag"], unique=False)
        batch_op.create_index(
            "ix_admin_users_scope_created_seq", ["tenant_id", "created_seq"], unique=False
        )

    op.create_table(
        "optimist_sequences",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_optimist_sequences")),
    )
    op.create_table(
        "projects",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("customer", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'estimating', 'submitted', 'accepted', 'rejected')",
            name=op.f("ck_projects_status"),
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_projects")),
        sa.UniqueConstraint("created_seq", name=op.f("uq_projects_created_seq")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_projects_etag"), ["etag"], unique=False)

    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )
    op.create_table(
        "test_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("building_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.Column("vector_clock", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'in_progress', 'completed', 'cancelled')",
            name=op.f("ck_test_sessions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sessions")),
        sa.UniqueConstraint("created_seq", name=op.f("uq_test_sessions_created_seq")),
    )
    with op.batch_alter_table("test_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_sessions_etag"), ["etag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_sessions_etag"))

    op.drop_table("test_sessions")
    op.drop_table("service_secrets")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_etag"))

    op.drop_table("projects")
    op.drop_table("optimist_sequences")
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_index("ix_admin_users_scope_created_seq")
        batch_op.drop_index(batch_op.f("ix_admin_users_etag"))

    op.drop_table("admin_users")
    with op.batch_alter_table("admin_roles", schema=None) as batch_op:
        batch_op.drop_index("ix_admin_roles_scope_created_seq")
        batch_op.drop_index(batch_op.f("ix_admin_roles_etag"))

    op.drop_table("admin_roles")
    with op.batch_alter_table("admin_feature_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_admin_feature_flags_scope_created_seq")
        batch_op.drop_index(batch_op.f("ix_admin_feature_flags_etag"))

    op.drop_table("admin_feature_flags")

"""The reference service's tables, declared with :func:`optimist.sqlalchemy.versioned_table`.

Every resource table is versioned (``etag``, ``updated_at``, ``created_seq``); the
admin tables are scoped by ``tenant_id`` so another tenant's row is a 404 for every
method. The migrations in ``migrations/versions`` create exactly these tables; a test
compares the migrated schema with this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from optimist.sqlalchemy import UTCDateTime, sha256_tag, versioned_table
from optimist.sqlalchemy.idempotency import idempotency_records

__all__ = [
    "PROJECT_STATUSES",
    "SESSION_STATUSES",
    "USER_ROLES",
    "feature_flags",
    "idempotency",
    "metadata",
    "projects",
    "roles",
    "secrets",
    "test_sessions",
    "users",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

USER_ROLES = ("admin", "editor", "viewer")
PROJECT_STATUSES = ("draft", "estimating", "submitted", "accepted", "rejected")
SESSION_STATUSES = ("scheduled", "in_progress", "completed", "cancelled")

#: Secrets shared by every worker and host of a deployment (the signing key).
secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Idempotency-Key records: the answer a resent write gets again, kept in the write's
#: transaction for 24 hours (docs/service.md "Idempotency-Key").
idempotency = idempotency_records(metadata)

# -- admin API (seed 002): weak ETags, tenant-scoped -----------------------------------

users = versioned_table(
    "admin_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    # The email as the tenant's uniqueness sees it: one address, whatever its case.
    Column("email_key", String(320), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "email_key"),
    CheckConstraint("role IN ('admin', 'editor', 'viewer')", name="role"),
    weak=True,
    resource="user",
    scope=("tenant_id",),
)

roles = versioned_table(
    "admin_roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("permissions", JSON, nullable=False),
    UniqueConstraint("tenant_id", "name"),
    weak=True,
    resource="role",
    scope=("tenant_id",),
)

feature_flags = versioned_table(
    "admin_feature_flags",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("rollout_percentage", Integer, nullable=False),
    CheckConstraint("rollout_percentage BETWEEN 0 AND 100", name="rollout_percentage"),
    weak=True,
    resource="feature flag",
    scope=("tenant_id",),
)

# -- projects API (seed 003): strong 16-hex SHA-256 ETags -------------------------------

projects = versioned_table(
    "projects",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("customer", String(200), nullable=True),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "status IN ('draft', 'estimating', 'submitted', 'accepted', 'rejected')", name="status"
    ),
    recipe=sha256_tag(16),
    resource="project",
)

# -- test sessions API (seed 000): vector-clock versions --------------------------------

test_sessions = versioned_table(
    "test_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("building_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("notes", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "status IN ('scheduled', 'in_progress', 'completed', 'cancelled')", name="status"
    ),
    resource="test session",
    clock=True,
)
